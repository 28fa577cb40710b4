/**
 * The engine's VLM forward pass against the PyTorch model it was exported from:
 * logits, K/V of every layer, image features and greedy tokens, for image, two-image,
 * blank-image and text-only cases — and tokenization/preprocessing parity.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { DATASET_DIR } from '../helpers/fixtures.ts';
import { fixtureIndex, fixtureTensors, relativeError } from '../helpers/reference.ts';

const index = fixtureIndex();
let compute: ComputeClient;
let vlm: Vlm;

beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
  vlm = await Vlm.open(openModelFolder(join(RESOURCES_DIR, 'models', 'micro-llava')), compute, 'micro-llava');
});
afterAll(() => compute?.close());

describe.each(index.cases)('PyTorch parity: $name', (c) => {
  it('reproduces logits, K/V, image features and greedy tokens', async () => {
    const ref = fixtureTensors(c);
    const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    const res = await vlm.forwardEncoded(c.prompt, ref.input_ids!, ref.pixel_values, { decoderTaps: presentNames, fullLogits: true, maxNewTokens: index.max_new_tokens });
    expect(relativeError(res.fullLogits!, ref.logits!)).toBeLessThan(1e-4);
    for (const n of presentNames) expect(relativeError(res.taps[n]!, ref[n]!), n).toBeLessThan(1e-4);
    if (ref.image_features) expect(relativeError(res.imageFeatures!, ref.image_features)).toBeLessThan(1e-4);
    expect(res.generated).toEqual(c.greedy_tokens);
    expect(res.imageTokens.map((t) => t.position)).toEqual(c.image_token_runs.flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i)));
  });

  it('tokenizes the question with the chat template exactly as the reference', async () => {
    const ref = fixtureTensors(c);
    const images = c.num_images === 0 ? ({ kind: 'none' } as const) : ({ kind: 'blank', count: c.num_images } as const);
    const enc = await vlm.processing.encode(c.question, images, { imageToken: vlm.imageToken, tokensPerImage: 64 });
    expect(enc.prompt).toBe(c.prompt);
    expect(Array.from(enc.inputIds.data as BigInt64Array)).toEqual(Array.from(ref.input_ids!.data as BigInt64Array));
  });
});

describe('blind mode', () => {
  it('a blank image is what the reference fed as its blank baseline', async () => {
    const c = index.cases.find((x) => x.name === 'blind-blank-image')!;
    const ref = fixtureTensors(c);
    const enc = await vlm.processing.encode(c.question, { kind: 'blank', count: 1 }, { imageToken: vlm.imageToken, tokensPerImage: 64 });
    expect(relativeError(enc.pixelValues!, ref.pixel_values!)).toBeLessThan(1e-6);
    const res = await vlm.forward(c.question, { kind: 'blank', count: 1 }, { fullLogits: true });
    expect(relativeError(res.fullLogits!, ref.logits!)).toBeLessThan(1e-4);
  });

  it('no image means a text-only prompt with no image tokens', async () => {
    const c = index.cases.find((x) => x.name === 'blind-text-only')!;
    const res = await vlm.forward(c.question, { kind: 'none' }, { fullLogits: true });
    expect(res.imageTokens).toEqual([]);
    expect(relativeError(res.fullLogits!, fixtureTensors(c).logits!)).toBeLessThan(1e-4);
  });
});

describe('image preprocessing parity', () => {
  it('transformers.js pixel values equal CLIP normalisation computed by hand on a dataset PNG', async () => {
    const manifest = JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] };
    const path = join(DATASET_DIR, manifest.items[0]!.images[0]!);
    const enc = await vlm.processing.encode('what colour is the object at the marker ?', { kind: 'files', paths: [path] }, { imageToken: vlm.imageToken, tokensPerImage: 64 });
    const { PNG } = await import('pngjs');
    const png = PNG.sync.read(readFileSync(path));
    const pre = vlm.folder.preprocessor as { image_mean: number[]; image_std: number[]; rescale_factor: number };
    const expected = new Float32Array(3 * 64 * 64);
    for (let i = 0; i < 64 * 64; i++) for (let ch = 0; ch < 3; ch++) expected[ch * 4096 + i] = (png.data[i * 4 + ch]! * pre.rescale_factor - pre.image_mean[ch]!) / pre.image_std[ch]!;
    const err = relativeError(enc.pixelValues!, expected);
    console.log(`preprocessing parity (64×64 PNG, resize/crop are identities): max rel diff ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
  });
});

describe('choice scoring', () => {
  it('scores first tokens as the log-softmax of the last-position logits', async () => {
    const c = index.cases[0]!;
    const ref = fixtureTensors(c);
    const choices = ['red', 'green', 'blue'];
    const res = await vlm.forwardEncoded(c.prompt, ref.input_ids!, ref.pixel_values, { choices });
    const logits = toFloat32(ref.logits!);
    const vocab = ref.logits!.shape[2]!;
    const last = logits.subarray(logits.length - vocab);
    const lse = Math.log(last.reduce((s, v) => s + Math.exp(v), 0));
    for (const s of res.choiceScores!) expect(s.logProb).toBeCloseTo(last[s.tokenId]! - lse, 4);
    expect(res.choiceScores!.reduce((a, s) => a + s.prob, 0)).toBeCloseTo(1, 6);
  });
});
