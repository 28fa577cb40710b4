/**
 * The engine on an Idefics3 (SmolVLM family) model built and exported from the real Hugging Face modeling code:
 * tests/fixtures/hf-idefics3, written by tools/hf-fixtures/build_idefics3.py (transformers v4.46.1,
 * Idefics3ForConditionalGeneration, TorchScript export in the onnx-community layout; 5-D pixel_values +
 * pixel_attention_mask). Everything goes through the engine's own path — the folder's chat template and tokenizer,
 * the Idefics3 adapter's preprocessing of the PNG (tiles + global view, `<row_r_col_c>` / `<global-img>` prompt
 * expansion), the token map, then the ORT forward pass — and is compared with HF's processor and PyTorch forward.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { idefics3Images } from '../../src-main/engine/vlm/idefics3-images.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { relativeError } from '../helpers/reference.ts';

const DIR = join(REPO_ROOT, 'tests', 'fixtures', 'hf-idefics3');

interface Case {
  name: string;
  question: string;
  prompt: string;
  image: string | null;
  num_images: number;
  do_image_splitting: boolean | null;
  rows: number;
  cols: number;
  num_tiles: number;
  input_ids: number[];
  image_token_positions: number[];
  greedy_tokens: number[];
}
interface Shape {
  image: string;
  width: number;
  height: number;
  rows: number;
  cols: number;
  pixel_values: string;
  pixel_attention_mask: string;
}
interface Index {
  max_new_tokens: number;
  text_layers: number;
  image_token_id: number;
  image_seq_len: number;
  eos_token_id: number;
  cases: Case[];
  shapes: Shape[];
}

const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as Index;
const bytes = readFileSync(join(DIR, 'reference.safetensors'));
const all = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
const tensor = (name: string): HostTensor => {
  const t = all[name];
  if (!t) throw new Error(`reference.safetensors has no ${name}`);
  return t;
};
const ref = (c: Case, name: string) => tensor(`${c.name}/${name}`);
const caseNamed = (name: string) => index.cases.find((c) => c.name === name)!;
const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
const asNumbers = (t: HostTensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);
const files = (c: Case) => ({ kind: 'files' as const, paths: [join(DIR, c.image!)] });

let compute: ComputeClient;
let vlm: Vlm;
/** The same model with do_image_splitting false in preprocessor_config.json (the image-single case). */
let vlmNoSplit: Vlm;
let noSplitDir: string;

beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
  vlm = await Vlm.open(openModelFolder(join(DIR, 'model')), compute, 'hf-idefics3');
  noSplitDir = mkdtempSync(join(tmpdir(), 'loupe-idefics3-'));
  cpSync(join(DIR, 'model'), noSplitDir, { recursive: true });
  const pre = JSON.parse(readFileSync(join(noSplitDir, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(noSplitDir, 'preprocessor_config.json'), JSON.stringify({ ...pre, do_image_splitting: false }));
  vlmNoSplit = await Vlm.open(openModelFolder(noSplitDir), compute, 'hf-idefics3-nosplit');
});
afterAll(() => {
  compute?.close();
  if (noSplitDir) rmSync(noSplitDir, { recursive: true, force: true });
});

describe('hf-idefics3 folder opens', () => {
  it('is the idefics3 family with the real special tokens', () => {
    expect(vlm.folder.family).toBe('idefics3');
    expect(vlm.imageTokenId).toBe(index.image_token_id);
    expect(vlm.imageToken).toBe('<image>');
    expect(vlm.eosTokenIds).toEqual([index.eos_token_id]);
    expect(vlm.processing.chatTemplate?.origin).toBe('tokenizer_config.json');
  });
});

describe('preprocessing parity with HF Idefics3ImageProcessor (PIL LANCZOS, tiles + global view)', () => {
  it.each(index.shapes.map((s) => [`${s.width}x${s.height}`, s] as const))('%s: rows/cols, pixel_values, pixel_attention_mask', async (_, s) => {
    const images = await vlm.processing.images({ kind: 'files', paths: [join(DIR, s.image)] });
    const out = idefics3Images(images, vlm.folder.preprocessor);
    expect(out.rows).toEqual([s.rows]);
    expect(out.cols).toEqual([s.cols]);
    const px = tensor(s.pixel_values);
    expect(out.pixelValues.shape).toEqual(px.shape);
    const err = relativeError(out.pixelValues, px);
    console.log(`hf-idefics3 preprocessing ${s.width}x${s.height}: ${s.rows}x${s.cols} tiles + global, pixel_values max rel diff ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
    expect(out.pixelAttentionMask.shape).toEqual(tensor(s.pixel_attention_mask).shape);
    expect(asNumbers(out.pixelAttentionMask)).toEqual(asNumbers(tensor(s.pixel_attention_mask)));
  });
});

for (const name of ['image-split', 'image-single'] as const) {
  const c = caseNamed(name);
  const model = () => (c.do_image_splitting ? vlm : vlmNoSplit);
  describe(`${name} through the engine (${c.rows}x${c.cols} tiles + global view)`, () => {
    it('prompt, input_ids, pixel_values, pixel_attention_mask and token map match HF\'s Idefics3Processor', async () => {
      const enc = await model().family.encode(c.question, files(c));
      expect(enc.prompt).toBe(c.prompt);
      expect(asNumbers(enc.inputIds)).toEqual(c.input_ids);
      expect(asNumbers(ref(c, 'input_ids'))).toEqual(c.input_ids);
      expect(enc.pixelValues!.shape).toEqual(ref(c, 'pixel_values').shape);
      const err = relativeError(enc.pixelValues!, ref(c, 'pixel_values'));
      console.log(`hf-idefics3 ${name}: pixel_values max rel diff ${err.toExponential(2)} (Loupe vs HF Idefics3ImageProcessor)`);
      expect(err).toBeLessThan(1e-3);
      const mask = enc.visionExtras!.pixel_attention_mask!;
      expect(mask.dtype).toBe('bool');
      expect(mask.shape).toEqual(ref(c, 'pixel_attention_mask').shape);
      expect(asNumbers(mask)).toEqual(asNumbers(ref(c, 'pixel_attention_mask')));
      // idefics3TokenMap: one block of image_seq_len tokens per tile (reading order, global view last), each a
      // √image_seq_len square grid after pixel shuffle.
      const side = Math.sqrt(index.image_seq_len);
      expect(enc.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
      expect(enc.imageTokens.map((t) => t.tile)).toEqual(c.image_token_positions.map((_, k) => Math.floor(k / index.image_seq_len)));
      expect(enc.imageTokens.map((t) => [t.row, t.col])).toEqual(c.image_token_positions.map((_, k) => [Math.floor((k % index.image_seq_len) / side), k % side]));
      expect(new Set(enc.imageTokens.map((t) => t.image))).toEqual(new Set([0]));
      expect(Math.max(...enc.imageTokens.map((t) => t.tile)) + 1).toBe(c.num_tiles);
    });

    it('forward reproduces image features, logits, K/V and greedy tokens', async () => {
      const res = await model().forward(c.question, files(c), { fullLogits: true, decoderTaps: presentNames, maxNewTokens: index.max_new_tokens });
      expect(res.prompt).toBe(c.prompt);
      expect(res.inputIds).toEqual(c.input_ids);
      expect(res.imageFeatures!.shape).toEqual(ref(c, 'image_features').shape);
      const errs: Record<string, number> = {
        image_features: relativeError(res.imageFeatures!, ref(c, 'image_features')),
        logits: relativeError(res.fullLogits!, ref(c, 'logits')),
      };
      for (const n of presentNames) {
        expect(res.taps[n]!.shape).toEqual(ref(c, n).shape);
        errs[n] = relativeError(res.taps[n]!, ref(c, n));
      }
      console.log(`hf-idefics3 ${name}: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
      for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
      expect(res.generated).toEqual(c.greedy_tokens);
    });
  });
}

describe('text-only case ({kind: none})', () => {
  it('forward reproduces input_ids, logits, K/V and greedy tokens with no image tokens', async () => {
    const c = caseNamed('text-only');
    const res = await vlm.forward(c.question, { kind: 'none' }, { fullLogits: true, decoderTaps: presentNames, maxNewTokens: index.max_new_tokens });
    expect(res.prompt).toBe(c.prompt);
    expect(res.inputIds).toEqual(c.input_ids);
    expect(res.imageTokens).toEqual([]);
    expect(res.imageFeatures).toBeUndefined();
    const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(c, 'logits')) };
    for (const n of presentNames) errs[n] = relativeError(res.taps[n]!, ref(c, n));
    console.log(`hf-idefics3 text-only: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
    for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
    expect(res.generated).toEqual(c.greedy_tokens);
  });
});

describe('blind baseline ({kind: blank})', () => {
  it('a black tile-sized image goes through the same preprocessing, expansion and token map', async () => {
    const res = await vlm.forward('What colour is the square?', { kind: 'blank', count: 1 }, { maxNewTokens: 1 });
    // 32x32 black -> longest edge 64 -> 2x2 tiles + the global view, 16 tokens each.
    expect(res.imageFeatures!.shape).toEqual([5, index.image_seq_len, 64]);
    expect(res.imageTokens).toHaveLength(5 * index.image_seq_len);
    expect(res.inputIds).toHaveLength(caseNamed('image-split').input_ids.length);
  });
});

describe('built-in graph taps on the Idefics3 graphs (structural layer finder)', () => {
  it('image-split: vision and LLM hidden states and attention probabilities equal HF\'s', async () => {
    const c = caseNamed('image-split');
    const folder = openModelFolder(join(DIR, 'model'));
    const cache = mkdtempSync(join(tmpdir(), 'loupe-idefics3-taps-'));
    try {
      const taps = await resolveTaps(folder, { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true }, { cacheRoot: cache, modelHash: 'hf-idefics3' });
      console.log(`hf-idefics3 taps: vision ${taps.vision.map((t) => `${t.name}=${t.tensor}`).join(', ')}; decoder ${taps.decoder.map((t) => `${t.name}=${t.tensor}`).join(', ')}`);
      const tapped = await Vlm.open(folder, compute, 'hf-idefics3-taps', taps.files);
      const res = await tapped.forward(c.question, files(c), { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: taps.decoder.map((t) => t.tensor) });
      // HF's last text hidden state is the final RMSNorm's output (it replaces the last layer's), which Loupe names
      // text.final_norm; Loupe's text.hidden_states.<layers> (the last layer's raw output) has no HF counterpart.
      const last = `text.hidden_states.${index.text_layers}`;
      const refName = (name: string) => (name === 'text.final_norm' ? last : name === last ? null : name);
      const names = [...taps.vision, ...taps.decoder].map((t) => t.name);
      expect(names.sort()).toEqual([
        'vision.hidden_states.0', 'vision.hidden_states.1', 'vision.hidden_states.2', 'vision.attentions.0', 'vision.attentions.1',
        'text.hidden_states.0', 'text.hidden_states.1', 'text.hidden_states.2', 'text.final_norm', 'text.attentions.0', 'text.attentions.1',
      ].sort());
      const errs: Record<string, number> = {};
      for (const t of [...taps.vision, ...taps.decoder]) {
        const r = refName(t.name);
        if (r === null) continue;
        expect(res.taps[t.tensor]!.shape, t.name).toEqual(ref(c, r).shape);
        errs[t.name] = relativeError(res.taps[t.tensor]!, ref(c, r));
      }
      console.log(`hf-idefics3 taps vs HF: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
      for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
