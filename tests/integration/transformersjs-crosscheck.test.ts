/**
 * A second, independent runner on the same files: transformers.js (its own model classes,
 * sessions, feature merge and decoder call) against Loupe's engine, on the family fixtures built
 * from the Hugging Face modeling code. Both get Loupe's input_ids and pixel_values (which the
 * per-family tests check against the Python processors), so this compares the forward passes:
 * image features and prefill logits, ≤ 1e-4 relative — and each against PyTorch's reference.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tjs from '@huggingface/transformers';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { relativeError } from '../helpers/reference.ts';

interface Fixture {
  /** Folder under tests/fixtures. */
  dir: string;
  /** Model folders inside it (exporter styles). */
  styles: string[];
  /** transformers.js model class. */
  model: keyof typeof tjs;
  /**
   * transformers.js 4.3.1 reads Qwen2.5-VL's decoder settings from `text_config`, which Qwen2_5_VLConfig writes
   * only from transformers 4.50 on (4.49's is flat); given to it in memory, config.json unchanged.
   */
  nestTextConfig?: boolean;
}

const FIXTURES: Fixture[] = [
  { dir: 'hf-llava', styles: ['model', 'model-ort-fused', 'model-optimum-merged'], model: 'LlavaForConditionalGeneration' },
  { dir: 'hf-idefics3', styles: ['model', 'model-ort-fused'], model: 'Idefics3ForConditionalGeneration' },
  { dir: 'hf-qwen2-vl', styles: ['model', 'model-ort-fused'], model: 'Qwen2VLForConditionalGeneration' },
  { dir: 'hf-qwen2_5-vl', styles: ['model', 'model-ort-fused'], model: 'Qwen2_5_VLForConditionalGeneration', nestTextConfig: true },
  { dir: 'hf-paligemma', styles: ['model', 'model-ort-fused'], model: 'PaliGemmaForConditionalGeneration' },
  { dir: 'hf-llava-onevision', styles: ['model', 'model-ort-fused'], model: 'LlavaOnevisionForConditionalGeneration' },
];

let compute: ComputeClient;
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
});
afterAll(() => compute?.close());

const toTjs = (t: HostTensor) => new tjs.Tensor(t.dtype === 'int64' || t.dtype === 'bool' ? t.dtype : 'float32', t.data as never, t.shape);

for (const f of FIXTURES) {
  const root = join(REPO_ROOT, 'tests', 'fixtures', f.dir);
  const index = JSON.parse(readFileSync(join(root, 'reference.json'), 'utf8')) as { cases: { name: string; question: string; image: string | null }[] };
  const bytes = readFileSync(join(root, 'reference.safetensors'));
  const ref = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;

  for (const style of f.styles) {
    describe(`${f.dir}/${style}: Loupe = transformers.js ${tjs.env.version} = PyTorch`, () => {
      const dir = join(root, style);
      let vlm: Vlm;
      let model: { encode_image?: (o: Record<string, unknown>) => Promise<{ dims: number[]; data: Float32Array }>; dispose: () => Promise<unknown> } & ((inputs: Record<string, unknown>) => Promise<{ logits: { data: Float32Array; dims: number[] } }>);
      beforeAll(async () => {
        vlm = await Vlm.open(openModelFolder(dir), compute, `tjs-${f.dir}-${style}`);
        const cls = tjs[f.model] as unknown as { from_pretrained: (p: string, o: object) => Promise<typeof model> };
        const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
        const config = f.nestTextConfig ? new tjs.PretrainedConfig({ ...json, text_config: { ...json, model_type: 'qwen2_5_vl_text' } }) : undefined;
        model = await cls.from_pretrained(dir, { dtype: 'fp32', device: 'cpu', local_files_only: true, ...(config && { config }) });
      });
      afterAll(() => model?.dispose());

      for (const c of index.cases) {
        it(c.name, async () => {
          const image = c.image ? { kind: 'files' as const, paths: [join(root, c.image)] } : { kind: 'none' as const };
          const enc = await vlm.family.encode(c.question, image);
          const ours = await vlm.forward(c.question, image, { fullLogits: true });
          expect(ours.inputIds).toEqual(Array.from(enc.inputIds.data as BigInt64Array, Number));
          const ones = BigInt64Array.from(enc.inputIds.data as BigInt64Array, () => 1n);
          // The vision encoder's extra inputs as the family adapter made them (Idefics3's pixel_attention_mask).
          const vision = enc.pixelValues ? { pixel_values: toTjs(enc.pixelValues), ...Object.fromEntries(Object.entries(enc.visionExtras ?? {}).map(([k, t]) => [k, toTjs(t)])) } : {};
          const theirs = await model({ input_ids: toTjs(enc.inputIds), attention_mask: new tjs.Tensor('int64', ones, enc.inputIds.shape), ...vision });
          const theirLogits: HostTensor = { dtype: 'float32', shape: theirs.logits.dims, data: theirs.logits.data };
          const errs: Record<string, number> = { 'logits Loupe vs transformers.js': relativeError(ours.fullLogits!, theirLogits) };
          // Against PyTorch where the reference was made from the same prompt (Idefics3's image-single used do_image_splitting=false).
          const refIds = ref[`${c.name}/input_ids`];
          if (refIds && Array.from(refIds.data as BigInt64Array, Number).join() === ours.inputIds.join()) errs['logits transformers.js vs PyTorch'] = relativeError(theirLogits, ref[`${c.name}/logits`]!);
          if (enc.pixelValues && model.encode_image) {
            const feats = await model.encode_image(vision);
            errs['image_features Loupe vs transformers.js'] = relativeError(ours.imageFeatures!, { dtype: 'float32', shape: feats.dims, data: feats.data });
          }
          console.log(`${f.dir}/${style} ${c.name}: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
          for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
        });
      }
    });
  }
}
