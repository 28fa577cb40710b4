/**
 * The encode-images job goes through each family's own input path (Qwen2-VL grids, Idefics3 tiles
 * and pixel_attention_mask, fp16 pixel_values for fp16 vision encoders): its stored image features
 * equal the features the VLM forward pass computes for the same image (which the family tests
 * check against PyTorch).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { ModelVariant } from '../../src-shared/jobs/variant.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { relativeError } from '../helpers/reference.ts';

const FIXTURES = join(REPO_ROOT, 'tests', 'fixtures');
const CASES: { name: string; folder: string; variant?: ModelVariant }[] = [
  { name: 'qwen2-vl', folder: 'hf-qwen2-vl/model' },
  { name: 'qwen2.5-vl', folder: 'hf-qwen2_5-vl/model' },
  { name: 'idefics3', folder: 'hf-idefics3/model' },
  { name: 'llava fp16', folder: 'hf-llava/model', variant: 'fp16' },
];

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

describe('encode-images through the family adapters', () => {
  for (const c of CASES) {
    it(`${c.name}: stored image_features = the forward pass's`, async () => {
      const path = join(FIXTURES, c.folder);
      const modelId = engine.importModel(path).id;
      const run = await callEngine<{ id: string }>(engine, 'jobs/start', { kind: 'encode-images', modelId, datasetId: 'colour-at-point', spec: { limit: 2, storeDtype: 'float32', ...(c.variant && { variant: c.variant }) } });
      await engine.queue.drained();
      expect(engine.store.runs.get(run.id), JSON.stringify(engine.store.runs.get(run.id))).toMatchObject({ status: 'done', failed: 0 });
      const dataset = engine.store.datasets.get('colour-at-point');
      const vlm = await Vlm.open(openModelFolder(path, c.variant), engine.compute, `encode-check-${c.name}`);
      for (const result of engine.store.runs.results(run.id)) {
        const stored = engine.store.blobs.getTensors(result.tensors.find((t) => t.name === 'image_features')!.blob).image_features!;
        const item = engine.store.datasets.item('colour-at-point', result.itemId);
        const res = await vlm.forward('', { kind: 'files', paths: [join(dataset.path, item.images[0]!)] });
        const err = relativeError(toFloat32(stored), toFloat32(res.imageFeatures!));
        expect(err, result.itemId).toBe(0);
      }
    });
  }
});
