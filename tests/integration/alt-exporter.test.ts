/**
 * The engine on a model it did not export: tests/fixtures/alt-llava/model, written and exported by
 * tests/models/build_alt_llava.py independently of tools/micro-vlm (other module/node names, fused
 * QKV, GQA by 5-D broadcast MatMul, nn.TransformerEncoderLayer vision tower, opset 14, other
 * dynamic-axis names and input order, another tokenizer/chat template, image mean/std 0.5).
 * Everything goes through the engine's own path: tokenizer + chat template, transformers.js
 * preprocessing of the PNG, then the ORT forward pass, compared with the PyTorch reference.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { llavaGrid } from '../../src-main/engine/vlm/token-map.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { relativeError } from '../helpers/reference.ts';

const DIR = join(REPO_ROOT, 'tests', 'fixtures', 'alt-llava');

interface AltCase {
  name: string;
  question: string;
  prompt: string;
  image: string | null;
  num_images: number;
  input_ids: number[];
  image_token_positions: number[];
  greedy_tokens: number[];
}
interface AltIndex {
  max_new_tokens: number;
  text_layers: number;
  image_token_index: number;
  cases: AltCase[];
}

const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as AltIndex;
const bytes = readFileSync(join(DIR, 'reference.safetensors'));
const all = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
const ref = (c: AltCase, name: string): HostTensor => {
  const t = all[`${c.name}/${name}`];
  if (!t) throw new Error(`reference.safetensors has no ${c.name}/${name}`);
  return t;
};
const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
const imageCase = index.cases.find((c) => c.image !== null)!;
const textCase = index.cases.find((c) => c.image === null)!;

let compute: ComputeClient;
let vlm: Vlm;

beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
  vlm = await Vlm.open(openModelFolder(join(DIR, 'model')), compute, 'alt-llava');
});
afterAll(() => compute?.close());

describe('alt-llava folder (independent exporter) opens', () => {
  it('reads the image token, grid and eos from a config it did not write', () => {
    expect(vlm.folder.family).toBe('llava');
    expect(vlm.imageTokenId).toBe(index.image_token_index);
    expect(vlm.imageToken).toBe('<image>');
    expect(llavaGrid(vlm.folder.config)).toEqual({ rows: 8, cols: 8, prefix: 0 });
  });
});

describe('image case through the engine (tokenizer, transformers.js preprocessing, ORT)', () => {
  it('tokenizes with the folder\'s own chat template exactly as the reference', async () => {
    const enc = await vlm.processing.encode(imageCase.question, { kind: 'files', paths: [join(DIR, imageCase.image!)] }, { imageToken: vlm.imageToken, tokensPerImage: 64 });
    expect(enc.prompt).toBe(imageCase.prompt);
    expect(Array.from(enc.inputIds.data as BigInt64Array, Number)).toEqual(imageCase.input_ids);
    expect(Array.from(ref(imageCase, 'input_ids').data as BigInt64Array, Number)).toEqual(imageCase.input_ids);
  });

  it('preprocesses the PNG (mean/std 0.5) to the reference pixel_values', async () => {
    const enc = await vlm.processing.encode(imageCase.question, { kind: 'files', paths: [join(DIR, imageCase.image!)] }, { imageToken: vlm.imageToken, tokensPerImage: 64 });
    expect(enc.pixelValues!.shape).toEqual(ref(imageCase, 'pixel_values').shape);
    const err = relativeError(enc.pixelValues!, ref(imageCase, 'pixel_values'));
    console.log(`alt-llava pixel_values: max rel diff ${err.toExponential(2)} (transformers.js vs numpy)`);
    expect(err).toBeLessThan(1e-6);
  });

  it('forward reproduces image features, logits, K/V and greedy tokens', async () => {
    const res = await vlm.forward(imageCase.question, { kind: 'files', paths: [join(DIR, imageCase.image!)] }, { fullLogits: true, decoderTaps: presentNames, maxNewTokens: index.max_new_tokens });
    expect(res.prompt).toBe(imageCase.prompt);
    expect(res.inputIds).toEqual(imageCase.input_ids);
    expect(res.imageTokens.map((t) => t.position)).toEqual(imageCase.image_token_positions);
    const errs: Record<string, number> = {
      image_features: relativeError(res.imageFeatures!, ref(imageCase, 'image_features')),
      logits: relativeError(res.fullLogits!, ref(imageCase, 'logits')),
    };
    for (const n of presentNames) {
      expect(res.taps[n]!.shape).toEqual(ref(imageCase, n).shape);
      errs[n] = relativeError(res.taps[n]!, ref(imageCase, n));
    }
    console.log(`alt-llava image case: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
    for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
    expect(res.generated).toEqual(imageCase.greedy_tokens);
  });
});

describe('text-only case ({kind: none})', () => {
  it('forward reproduces input_ids, logits, K/V and greedy tokens with no image tokens', async () => {
    const res = await vlm.forward(textCase.question, { kind: 'none' }, { fullLogits: true, decoderTaps: presentNames, maxNewTokens: index.max_new_tokens });
    expect(res.prompt).toBe(textCase.prompt);
    expect(res.inputIds).toEqual(textCase.input_ids);
    expect(res.imageTokens).toEqual([]);
    expect(res.imageFeatures).toBeUndefined();
    const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(textCase, 'logits')) };
    for (const n of presentNames) errs[n] = relativeError(res.taps[n]!, ref(textCase, n));
    console.log(`alt-llava text-only case: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
    for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
    expect(res.generated).toEqual(textCase.greedy_tokens);
  });
});
