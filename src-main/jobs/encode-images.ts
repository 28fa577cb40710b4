/**
 * Job kind `encode-images`: runs the model's vision encoder (tower + projector) on every
 * item's first image and keeps the image features the LLM would receive.
 */
import { basename, join } from 'node:path';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { EncodeImagesSpec } from '../../src-shared/jobs/specs.ts';
import { type HostTensor, float32ToFloat16, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { ComputeClient } from '../compute/compute-client.ts';
import { openModelFolder } from '../engine/model-folder.ts';
import { VlmProcessing } from '../engine/vlm/processing.ts';
import { familyFor } from '../engine/vlm/families.ts';
import { imageTokenOf } from '../engine/vlm/vlm.ts';
import { visionInputName } from '../compute/vlm/vision-inputs.ts';
import type { Store } from '../store/store.ts';
import type { ItemOutput, JobRunner, PreparedRun } from './job-runner.ts';

export function toStoreDtype(t: HostTensor, dtype: 'float32' | 'float16'): HostTensor {
  const f32 = toFloat32(t);
  if (dtype === 'float32') return { dtype, shape: t.shape, data: f32 };
  const half = new Uint16Array(f32.length);
  for (let i = 0; i < f32.length; i++) half[i] = float32ToFloat16(f32[i]!);
  return { dtype, shape: t.shape, data: half };
}

export class EncodeImagesRunner implements JobRunner {
  private readonly store: Store;
  private readonly compute: ComputeClient;
  constructor(store: Store, compute: ComputeClient) {
    this.store = store;
    this.compute = compute;
  }

  async prepare(run: RunInfo): Promise<PreparedRun> {
    const spec = EncodeImagesSpec.parse(run.spec);
    const model = openModelFolder(this.store.models.get(run.modelId).path, spec.variant);
    const dataset = this.store.datasets.get(run.datasetId);
    const key = `${run.modelId}:${basename(model.files.vision_encoder)}`;
    const session = await this.compute.load(key, model.files.vision_encoder);
    // The family's own input path (tiles, grids, masks), as the VLM forward builds it: one preprocessing path.
    const processing = await VlmProcessing.load(model.path, model.preprocessor, model.family);
    const image = imageTokenOf(model, processing);
    const family = familyFor(model, processing, image.id, image.token);
    const names = session.inputs.map((i) => i.name);
    const pixelType = session.inputs.find((i) => i.name === 'pixel_values')?.dtype;
    return {
      processItem: async (itemId): Promise<ItemOutput> => {
        const item = this.store.datasets.item(run.datasetId, itemId);
        const first = item.images[0];
        if (!first) throw new Error(`item ${itemId} has no image`);
        const inputs = await family.encode('', { kind: 'files', paths: [join(dataset.path, first)] });
        if (!inputs.pixelValues) throw new Error(`the ${model.family} processor produced no pixel_values for ${first}`);
        const feeds: Record<string, HostTensor> = { pixel_values: pixelType === 'float16' ? toStoreDtype(inputs.pixelValues, 'float16') : inputs.pixelValues };
        for (const [name, t] of Object.entries(inputs.visionExtras ?? {})) {
          const target = visionInputName(names, name);
          if (target) feeds[target] = t;
        }
        const missing = names.filter((n) => !(n in feeds));
        if (missing.length) throw new Error(`vision encoder needs inputs the ${model.family} processor did not produce: ${missing.join(', ')}`);
        const { image_features } = await this.compute.run(key, feeds, ['image_features']);
        if (!image_features) throw new Error('vision encoder returned no image_features');
        const f = toFloat32(image_features);
        const [, tokens = 0, dim = 0] = image_features.shape;
        let normSum = 0;
        for (let t = 0; t < tokens; t++) {
          let s = 0;
          for (let d = 0; d < dim; d++) s += f[t * dim + d]! ** 2;
          normSum += Math.sqrt(s);
        }
        return {
          metrics: { tokens, dim, meanTokenNorm: tokens ? normSum / tokens : 0 },
          values: { image: first },
          tensors: spec.storeFeatures ? { image_features: toStoreDtype(image_features, spec.storeDtype) } : {},
        };
      },
    };
  }
}
