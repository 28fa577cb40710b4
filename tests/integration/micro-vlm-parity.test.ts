/**
 * ONNX (onnxruntime-node, CPU) vs PyTorch parity for the shipped micro-llava.
 *
 * Drives the three files the way transformers.js does — embed_tokens → vision_encoder →
 * masked scatter of image features into the `<image>` rows → decoder with zero-length past →
 * greedy steps with the KV cache — and compares with the fixtures that
 * tools/micro-vlm/fixtures.py wrote from the PyTorch model. It feeds the fixtures'
 * `pixel_values` and `input_ids` as is: preprocessing is not under test here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { relativeError } from '../helpers/reference.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MODEL = join(ROOT, 'resources', 'models', 'micro-llava');
const FIXTURES = join(ROOT, 'tests', 'fixtures', 'micro-llava');
const TOLERANCE = 1e-4;

interface Case {
  name: string;
  file: string;
  num_images: number;
  greedy_tokens: number[];
}
interface Cases {
  max_new_tokens: number;
  text_layers: number;
  image_token_index: number;
  eos_token_id: number;
  cases: Case[];
}

const cases: Cases = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8'));
const config = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8'));
const kvHeads: number = config.text_config.num_key_value_heads;
const headDim: number = config.text_config.head_dim;

let vision: ort.InferenceSession;
let embed: ort.InferenceSession;
let decoder: ort.InferenceSession;

function load(name: string): Record<string, HostTensor> {
  return decodeSafetensors(new Uint8Array(readFileSync(join(FIXTURES, name)))).tensors;
}

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype === 'int64' ? 'int64' : 'float32', t.data as Float32Array | BigInt64Array, t.shape);
}

function argmaxLast(logits: ort.Tensor): number {
  const [, s, v] = logits.dims as number[];
  const data = logits.data as Float32Array;
  let best = 0;
  for (let j = 1; j < v!; j++) if (data[(s! - 1) * v! + j]! > data[(s! - 1) * v! + best]!) best = j;
  return best;
}

function emptyPast(): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (let i = 0; i < cases.text_layers; i++) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  }
  return feeds;
}

/** embed_tokens → vision_encoder → scatter (transformers.js' default merge) → decoder prefill. */
async function prefill(inputIds: HostTensor, pixelValues: HostTensor | undefined) {
  const ids = toOrt(inputIds);
  const { inputs_embeds } = await embed.run({ input_ids: ids });
  const embeds = new Float32Array(inputs_embeds!.data as Float32Array);
  const hidden = inputs_embeds!.dims[2]!;
  let imageFeatures: ort.Tensor | undefined;
  if (pixelValues) {
    imageFeatures = (await vision.run({ pixel_values: toOrt(pixelValues) })).image_features!;
    const feats = imageFeatures.data as Float32Array;
    const idData = inputIds.data as BigInt64Array;
    let row = 0;
    for (let p = 0; p < idData.length; p++) {
      if (Number(idData[p]) !== cases.image_token_index) continue;
      embeds.set(feats.subarray(row * hidden, (row + 1) * hidden), p * hidden);
      row++;
    }
    expect(row * hidden).toBe(feats.length); // "Number of tokens and features do not match" otherwise
  }
  const s = inputIds.shape[1]!;
  const out = await decoder.run({
    inputs_embeds: new ort.Tensor('float32', embeds, [1, s, hidden]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(s).fill(1n), [1, s]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: s }, (_, i) => BigInt(i)), [1, s]),
    ...emptyPast(),
  });
  return { out, imageFeatures, embeds };
}

async function greedy(prefillOut: ort.InferenceSession.OnnxValueMapType, promptLen: number): Promise<number[]> {
  let out = prefillOut;
  let n = promptLen;
  const tokens: number[] = [];
  for (let step = 0; step < cases.max_new_tokens; step++) {
    const tok = argmaxLast(out.logits as ort.Tensor);
    tokens.push(tok);
    if (tok === cases.eos_token_id) break;
    const { inputs_embeds } = await embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(tok)), [1, 1]) });
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: inputs_embeds!,
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n + 1).fill(1n), [1, n + 1]),
      position_ids: new ort.Tensor('int64', BigInt64Array.of(BigInt(n)), [1, 1]),
    };
    for (let i = 0; i < cases.text_layers; i++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`] as ort.Tensor;
    }
    out = await decoder.run(feeds);
    n++;
  }
  return tokens;
}

beforeAll(async () => {
  const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 2 };
  vision = await ort.InferenceSession.create(join(MODEL, 'onnx', 'vision_encoder.onnx'), opts);
  embed = await ort.InferenceSession.create(join(MODEL, 'onnx', 'embed_tokens.onnx'), opts);
  decoder = await ort.InferenceSession.create(join(MODEL, 'onnx', 'decoder_model_merged.onnx'), opts);
});

afterAll(async () => {
  await Promise.all([vision?.release(), embed?.release(), decoder?.release()]);
});

describe('micro-llava ONNX export matches PyTorch', () => {
  it('declares the transformers.js I/O contract', () => {
    expect(vision.inputNames).toEqual(['pixel_values']);
    expect(vision.outputNames).toEqual(['image_features']);
    expect(embed.inputNames).toEqual(['input_ids']);
    expect(embed.outputNames).toEqual(['inputs_embeds']);
    const past = Array.from({ length: cases.text_layers }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat();
    const present = Array.from({ length: cases.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    expect(decoder.inputNames).toEqual(['inputs_embeds', 'attention_mask', 'position_ids', ...past]);
    expect(decoder.outputNames).toEqual(['logits', ...present]);
  });

  for (const c of cases.cases) {
    it(`${c.name}: logits, image features, KV cache and greedy tokens`, async () => {
      const t = load(c.file);
      const { out, imageFeatures, embeds } = await prefill(t.input_ids!, t.pixel_values);
      if (c.num_images) {
        expect(relativeError(imageFeatures!.data as Float32Array, t.image_features!.data as Float32Array)).toBeLessThan(TOLERANCE);
      }
      expect(relativeError(embeds, t['text.hidden_states.0']!.data as Float32Array)).toBeLessThan(TOLERANCE);
      const logits = out.logits!.data as Float32Array;
      const ref = t.logits!.data as Float32Array;
      expect(out.logits!.dims).toEqual(t.logits!.shape);
      expect(relativeError(logits, ref)).toBeLessThan(TOLERANCE);
      for (let i = 0; i < cases.text_layers; i++) {
        for (const kv of ['key', 'value']) {
          expect(relativeError(out[`present.${i}.${kv}`]!.data as Float32Array, t[`present.${i}.${kv}`]!.data as Float32Array)).toBeLessThan(TOLERANCE);
        }
      }
      const tokens = await greedy(out, t.input_ids!.shape[1]!);
      expect(tokens).toEqual(c.greedy_tokens);
      expect(tokens).toEqual(Array.from(t.greedy_tokens!.data as BigInt64Array, Number));
    });
  }

  it('detects a perturbed input (the comparison can fail)', async () => {
    const c = cases.cases.find((x) => x.num_images > 0)!;
    const t = load(c.file);
    const px = t.pixel_values!;
    const perturbed: HostTensor = { ...px, data: new Float32Array(px.data as Float32Array) };
    // Brighten one 8x8 patch of channel 0: a different image must give different logits.
    const d = perturbed.data as Float32Array;
    for (let y = 24; y < 32; y++) for (let x = 24; x < 32; x++) d[y * 64 + x]! += 1.5;
    const { out } = await prefill(t.input_ids!, perturbed);
    expect(relativeError(out.logits!.data as Float32Array, t.logits!.data as Float32Array)).toBeGreaterThan(TOLERANCE);
    // And a shifted image token (features scattered one row late) is caught too.
    const ids = t.input_ids!;
    const shifted: HostTensor = { ...ids, data: new BigInt64Array(ids.data as BigInt64Array) };
    const sd = shifted.data as BigInt64Array;
    const first = sd.findIndex((v) => Number(v) === cases.image_token_index);
    [sd[first - 1], sd[first + 63]] = [sd[first + 63]!, sd[first - 1]!];
    const shiftedOut = (await prefill(shifted, px)).out;
    expect(relativeError(shiftedOut.logits!.data as Float32Array, t.logits!.data as Float32Array)).toBeGreaterThan(TOLERANCE);
  });
});
