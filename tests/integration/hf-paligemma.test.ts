/**
 * The engine on a PaliGemma model built and exported from the real Hugging Face modeling code:
 * tests/fixtures/hf-paligemma, written by tools/hf-fixtures/build_paligemma.py (transformers v4.46.1,
 * PaliGemmaForConditionalGeneration: SigLIP + linear projector + Gemma; TorchScript export in the layout
 * transformers.js runs, with HF's bidirectional prefill mask traced into the decoder and 1-indexed position ids).
 * Everything goes through the engine's own path — the PaliGemma adapter's prompt (no chat template:
 * `<image>`… `<bos>` question `\n`, as PaliGemmaProcessor builds it), the folder's tokenizer and
 * SiglipImageProcessor (Pillow resize of the whole image), the token map, resolveTaps, the ORT forward pass —
 * and is compared with HF's processor and PyTorch forward / generate.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AblationSpec } from '../../src-shared/ablation/spec.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { wholeImageMap } from '../../src-shared/vision/pixel-map.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { modelNotes, openModelFolder } from '../../src-main/engine/model-folder.ts';
import { viewMapper } from '../../src-main/engine/vlm/pixel-maps.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { relativeError } from '../helpers/reference.ts';

const DIR = join(REPO_ROOT, 'tests', 'fixtures', 'hf-paligemma');

interface Case {
  name: string;
  question: string;
  prompt: string;
  images: string[];
  num_images: number;
  input_ids: number[];
  image_token_positions: number[];
  greedy_tokens: number[];
  num_vision_hidden_states: number;
  num_vision_attentions: number;
}
interface Index {
  max_new_tokens: number;
  text_layers: number;
  vision_layers: number;
  image_token_index: number;
  image_seq_length: number;
  eos_token_id: number;
  bos_token_id: number;
  cases: Case[];
  shapes: { image: string; width: number; height: number; tensor: string }[];
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
const input = (c: Case) => (c.images.length ? { kind: 'files' as const, paths: c.images.map((p) => join(DIR, p)) } : { kind: 'none' as const });
/** Loupe's prompt keeps one `<image>` per image; HF's processor string has image_seq_length of them. */
const expanded = (prompt: string) => prompt.split('<image>').join('<image>'.repeat(index.image_seq_length));
const side = Math.sqrt(index.image_seq_length);
const ALL_TAPS = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };

let compute: ComputeClient;
let vlm: Vlm;
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
  vlm = await Vlm.open(openModelFolder(join(DIR, 'model')), compute, 'hf-paligemma');
});
afterAll(() => compute?.close());

describe('hf-paligemma folder opens', () => {
  it('is the paligemma family with the real special tokens, no chat template and no note', () => {
    expect(vlm.folder.family).toBe('paligemma');
    expect(vlm.imageTokenId).toBe(index.image_token_index);
    expect(vlm.imageToken).toBe('<image>');
    expect(vlm.eosTokenIds).toEqual([index.eos_token_id]);
    expect(vlm.processing.chatTemplate).toEqual({ origin: 'processor', template: null, note: null });
    expect(modelNotes(join(DIR, 'model'), 'paligemma')).toEqual([]);
    expect(vlm.family.positionIdStart).toBe(1);
    // SiglipImageProcessor resizes the whole image (no crop): proportional pixel → token map.
    expect(viewMapper(vlm.folder)).toBe(wholeImageMap);
  });
});

describe('preprocessing parity with HF SiglipImageProcessor (PIL bicubic, whole image to 32×32)', () => {
  it.each(index.shapes.map((s) => [`${s.width}x${s.height}`, s] as const))('%s: pixel_values', async (_, s) => {
    const enc = await vlm.family.encode('', { kind: 'files', paths: [join(DIR, s.image)] });
    const want = tensor(s.tensor);
    expect(enc.pixelValues!.shape).toEqual(want.shape);
    const err = relativeError(enc.pixelValues!, want);
    console.log(`hf-paligemma preprocessing ${s.width}x${s.height}: pixel_values max rel diff ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-3);
  });
});

describe('prompt, input_ids and token map as HF\'s PaliGemmaProcessor builds them', () => {
  for (const c of index.cases) {
    it(c.name, async () => {
      const enc = await vlm.family.encode(c.question, input(c));
      expect(enc.prompt).toBe(`${'<image>'.repeat(c.num_images)}<bos>${c.question}\n`);
      expect(expanded(enc.prompt)).toBe(c.prompt);
      expect(asNumbers(enc.inputIds)).toEqual(c.input_ids);
      expect(asNumbers(ref(c, 'input_ids'))).toEqual(c.input_ids);
      // <image> × 64 per image, then <bos>: the question never starts the sequence.
      expect(c.input_ids[c.num_images * index.image_seq_length]).toBe(index.bos_token_id);
      expect(enc.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
      expect(enc.imageTokens.map((t) => [t.image, t.tile, t.row, t.col])).toEqual(
        c.image_token_positions.map((_, k) => [Math.floor(k / index.image_seq_length), 0, Math.floor((k % index.image_seq_length) / side), k % side]),
      );
      if (c.num_images) {
        expect(enc.pixelValues!.shape).toEqual(ref(c, 'pixel_values').shape);
        const err = relativeError(enc.pixelValues!, ref(c, 'pixel_values'));
        console.log(`hf-paligemma ${c.name}: pixel_values max rel diff ${err.toExponential(2)}`);
        expect(err).toBeLessThan(1e-3);
      } else {
        expect(enc.pixelValues).toBeUndefined();
      }
      // Inputs prepared elsewhere (stored runs) map the same way.
      expect(vlm.family.mapTokens(enc.inputIds.data as BigInt64Array)).toEqual(enc.imageTokens);
    });
  }
});

describe('every tap through resolveTaps + Vlm.open + Vlm.forward vs PyTorch', () => {
  const folder = openModelFolder(join(DIR, 'model'));
  let taps: Awaited<ReturnType<typeof resolveTaps>>;
  let tapped: Vlm;
  beforeAll(async () => {
    taps = await resolveTaps(folder, ALL_TAPS, { cacheRoot: tempDir(), modelHash: 'hf-paligemma' });
    tapped = await Vlm.open(folder, compute, 'hf-paligemma-taps', taps.files);
  });

  it('finds a tap for every layer of both towers, attention included', () => {
    console.log(`hf-paligemma taps: vision ${taps.vision.map((t) => `${t.name}=${t.tensor}`).join(', ')}; decoder ${taps.decoder.map((t) => `${t.name}=${t.tensor}`).join(', ')}`);
    expect(taps.vision.map((t) => t.name).sort()).toEqual(
      [...Array.from({ length: index.vision_layers + 1 }, (_, i) => `vision.hidden_states.${i}`), ...Array.from({ length: index.vision_layers }, (_, i) => `vision.attentions.${i}`)].sort(),
    );
    expect(taps.decoder.map((t) => t.name).sort()).toEqual(
      [...Array.from({ length: index.text_layers + 1 }, (_, i) => `text.hidden_states.${i}`), 'text.final_norm', ...Array.from({ length: index.text_layers }, (_, i) => `text.attentions.${i}`)].sort(),
    );
  });

  for (const c of index.cases) {
    it(`${c.name}: image features, logits, K/V, every hidden state and attention, greedy tokens`, async () => {
      const names = [...taps.vision, ...taps.decoder];
      const res = await tapped.forward(c.question, input(c), {
        fullLogits: true,
        visionTaps: c.num_images ? taps.vision.map((t) => t.tensor) : [],
        decoderTaps: [...presentNames, ...taps.decoder.map((t) => t.tensor)],
        maxNewTokens: index.max_new_tokens,
      });
      expect(expanded(res.prompt)).toBe(c.prompt);
      expect(res.inputIds).toEqual(c.input_ids);
      expect(res.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
      const tap = (name: string) => res.taps[names.find((t) => t.name === name)!.tensor]!;
      const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(c, 'logits')) };
      for (const n of presentNames) {
        expect(res.taps[n]!.shape, n).toEqual(ref(c, n).shape);
        errs[n] = relativeError(res.taps[n]!, ref(c, n));
      }
      // HF's text.hidden_states: 0 = the merged embeddings × √hidden (Gemma's normalizer, inside the decoder graph),
      // 1 = after layer 0, 2 = after the final RMSNorm (HF replaces the last layer's output), which Loupe names
      // text.final_norm; Loupe's text.hidden_states.2 (the last layer's raw output) has no HF counterpart.
      for (let l = 0; l < index.text_layers; l++) errs[`text.hidden_states.${l}`] = relativeError(tap(`text.hidden_states.${l}`), ref(c, `text.hidden_states.${l}`));
      errs['text.final_norm'] = relativeError(tap('text.final_norm'), ref(c, `text.hidden_states.${index.text_layers}`));
      for (let l = 0; l < index.text_layers; l++) {
        expect(tap(`text.attentions.${l}`).shape).toEqual(ref(c, `text.attentions.${l}`).shape);
        errs[`text.attentions.${l}`] = relativeError(tap(`text.attentions.${l}`), ref(c, `text.attentions.${l}`));
      }
      if (c.num_images) {
        expect(res.imageFeatures!.shape).toEqual(ref(c, 'image_features').shape);
        errs.image_features = relativeError(res.imageFeatures!, ref(c, 'image_features'));
        for (let l = 0; l <= index.vision_layers; l++) errs[`vision.hidden_states.${l}`] = relativeError(tap(`vision.hidden_states.${l}`), ref(c, `vision.hidden_states.${l}`));
        for (let l = 0; l < index.vision_layers; l++) errs[`vision.attentions.${l}`] = relativeError(tap(`vision.attentions.${l}`), ref(c, `vision.attentions.${l}`));
      } else {
        expect(res.imageFeatures).toBeUndefined();
      }
      console.log(`hf-paligemma ${c.name}: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
      for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
      expect(res.generated).toEqual(c.greedy_tokens);
    });
  }

  it('the prefill attends bidirectionally (as HF): attention to later positions, which a causal mask would zero', async () => {
    const c = caseNamed('image-wide');
    const decoderTap = taps.decoder.find((t) => t.name === 'text.attentions.0')!;
    const res = await tapped.forward(c.question, input(c), { decoderTaps: [decoderTap.tensor] });
    const future = (a: HostTensor) => {
      const [, heads, seq] = a.shape as [number, number, number, number];
      const probs = a.data as Float32Array;
      let sum = 0;
      for (let h = 0; h < heads; h++) for (let q = 0; q < seq; q++) for (let k = q + 1; k < seq; k++) sum += probs[(h * seq + q) * seq + k]!;
      return sum / (heads * seq);
    };
    const ours = future(res.taps[decoderTap.tensor]!);
    const theirs = future(ref(c, 'text.attentions.0'));
    console.log(`hf-paligemma layer-0 attention mass on later positions, mean per query row: Loupe ${ours.toFixed(4)}, PyTorch ${theirs.toFixed(4)}`);
    expect(ours).toBeGreaterThan(0.1);
    expect(Math.abs(ours - theirs)).toBeLessThan(1e-5);
  });

  it('a wrong reference is caught (the comparison can fail)', () => {
    const c = caseNamed('image-wide');
    expect(relativeError(ref(c, 'vision.hidden_states.1'), ref(c, 'vision.hidden_states.2'))).toBeGreaterThan(1e-2);
    expect(relativeError(ref(c, 'text.hidden_states.1'), ref(c, 'text.hidden_states.2'))).toBeGreaterThan(1e-2);
  });
});

describe('blind baseline and text prefix', () => {
  it('{kind: blank}: a black image of the processor size (32×32), 64 image tokens', async () => {
    const res = await vlm.forward('answer en What colour is the square?', { kind: 'blank', count: 1 }, { maxNewTokens: 1 });
    expect(res.imageFeatures!.shape).toEqual([1, index.image_seq_length, 64]);
    expect(res.imageTokens).toHaveLength(index.image_seq_length);
    expect(res.inputIds).toEqual(caseNamed('image-wide').input_ids);
  });

  it('textPrefix goes before the image tokens, which move by its length', async () => {
    const c = caseNamed('image-wide');
    const res = await vlm.forward(c.question, input(c), { textPrefix: 'there are dots' });
    expect(res.prompt).toBe(`there are dots <image><bos>${c.question}\n`);
    expect(res.inputIds).toEqual([...vlm.processing.tokenIdsOf('there are dots'), ...c.input_ids]);
    expect(res.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions.map((p) => p + 3));
  });
});

describe('vision-tower ablation on PaliGemma\'s SigLIP (patches only, no CLS)', () => {
  const ISOLATE: AblationSpec = { edits: [{ op: 'block', part: 'vision', layers: 'all', heads: 'all', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] };
  /** A 32×32 image (the processor's size: no resize) and the same with one patch (row 2, col 3) repainted. */
  function images(): [string, string] {
    const png = new PNG({ width: 32, height: 32 });
    for (let i = 0; i < 32 * 32; i++) png.data.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
    const a = join(tempDir(), 'a.png');
    writeFileSync(a, PNG.sync.write(png));
    for (let y = 8; y < 12; y++) for (let x = 12; x < 16; x++) png.data.set([255, 0, 0, 255], (y * 32 + x) * 4);
    const b = join(tempDir(), 'b.png');
    writeFileSync(b, PNG.sync.write(png));
    return [a, b];
  }
  const rowsChanged = (x: HostTensor, y: HostTensor) => {
    const a = toFloat32(x);
    const b = toFloat32(y);
    const dim = x.shape[2]!;
    const rows: number[] = [];
    for (let r = 0; r < a.length / dim; r++) if (a.subarray(r * dim, (r + 1) * dim).some((v, j) => v !== b[r * dim + j])) rows.push(r);
    return rows;
  };

  it('zero bias is bit-identical; patch → other tokens blocked in every layer: repainting one patch changes only its own feature row', async () => {
    const folder = openModelFolder(join(DIR, 'model'));
    const taps = await resolveTaps(folder, { projector: false, imageKV: false, visionLayers: false, llmLayers: false, attention: false }, { cacheRoot: tempDir(), modelHash: 'hf-paligemma-vision-ablation' }, ISOLATE);
    const ablatable = await Vlm.open(folder, compute, 'hf-paligemma-vision-ablation', taps.files);
    const [a, b] = images();
    const q = 'answer en What colour is the square?';
    const plainA = await vlm.forward(q, { kind: 'files', paths: [a] });
    const zeroA = await ablatable.forward(q, { kind: 'files', paths: [a] });
    expect(Array.from(toFloat32(zeroA.imageFeatures!))).toEqual(Array.from(toFloat32(plainA.imageFeatures!)));
    const plainB = await vlm.forward(q, { kind: 'files', paths: [b] });
    const isoA = await ablatable.forward(q, { kind: 'files', paths: [a] }, { ablation: ISOLATE });
    const isoB = await ablatable.forward(q, { kind: 'files', paths: [b] }, { ablation: ISOLATE });
    const patch = 2 * 8 + 3;
    expect(rowsChanged(plainA.imageFeatures!, plainB.imageFeatures!).length).toBe(index.image_seq_length);
    expect(rowsChanged(isoA.imageFeatures!, isoB.imageFeatures!)).toEqual([patch]);
    expect(relativeError(isoA.imageFeatures!, plainA.imageFeatures!)).toBeGreaterThan(1e-3);
  });
});
