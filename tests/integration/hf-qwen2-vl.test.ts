/**
 * The engine on Qwen2-VL / Qwen2.5-VL folders exported from the real Hugging Face modeling code
 * (tests/fixtures/hf-qwen2-vl from transformers v4.46.1, hf-qwen2_5-vl from v4.49.0, both by
 * tools/hf-fixtures/build_qwen2_vl.py; TorchScript torch.onnx.export, opset 17, transformers.js layout).
 * Loupe's own path: the folder's tokenizer + chat template and transformers.js's Qwen2VLProcessor
 * (with Loupe's Pillow resize and HF's smart_resize rounding) → the Qwen family adapter (token map,
 * M-RoPE ids) → the compute worker's forward pass and Loupe's structural taps, against the PyTorch
 * references (HF processor, get_rope_index, model.visual, forward, generate).
 * Their configs are flat (no text_config, as Qwen2VLConfig / Qwen2_5_VLConfig write them); Vlm.open reads
 * the language model's settings through textConfigOf.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { type ModelFolder, openModelFolder } from '../../src-main/engine/model-folder.ts';
import { type Family, type FamilyInputs, familyFor } from '../../src-main/engine/vlm/families.ts';
import { VlmProcessing } from '../../src-main/engine/vlm/processing.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { relativeError } from '../helpers/reference.ts';

interface QwenCase {
  name: string;
  question: string;
  prompt: string;
  image: string | null;
  num_images: number;
  input_ids: number[];
  image_token_positions: number[];
  image_grid_thw: number[][] | null;
  position_ids: number[][];
  rope_delta: number;
  greedy_tokens: number[];
  decode_position_ids: number[][];
}
interface QwenShape {
  image: string;
  width: number;
  height: number;
  image_grid_thw: number[];
}
interface QwenIndex {
  family: string;
  max_new_tokens: number;
  text_layers: number;
  vision_blocks: number;
  image_token_id: number;
  spatial_merge_size: number;
  vision_input_names: string[];
  cases: QwenCase[];
  shapes: QwenShape[];
}

function load(name: string) {
  const dir = join(REPO_ROOT, 'tests', 'fixtures', name);
  const index = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as QwenIndex;
  const bytes = readFileSync(join(dir, 'reference.safetensors'));
  const all = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  const get = (key: string): HostTensor => {
    const t = all[key];
    if (!t) throw new Error(`${name}/reference.safetensors has no ${key}`);
    return t;
  };
  return { dir, index, get };
}

const ids = (t: HostTensor) => Array.from(t.data as BigInt64Array, Number);

describe.each(['hf-qwen2-vl', 'hf-qwen2_5-vl'])('%s (real HF modeling code)', (name) => {
  const { dir, index, get } = load(name);
  const ref = (c: QwenCase, t: string) => get(`${c.name}/${t}`);
  const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  const imageCase = index.cases.find((c) => c.image !== null)!;
  const textCase = index.cases.find((c) => c.image === null)!;
  const encoded = new Map<string, FamilyInputs>();

  let compute: ComputeClient;
  let folder: ModelFolder;
  let processing: VlmProcessing;
  let family: Family;

  beforeAll(async () => {
    compute = new ComputeClient();
    await compute.init('cpu');
    folder = openModelFolder(join(dir, 'model'));
    processing = await VlmProcessing.load(folder.path, folder.preprocessor, folder.family);
    family = familyFor(folder, processing, index.image_token_id, '<|image_pad|>');
  });
  afterAll(() => compute?.close());

  const imageInput = (c: QwenCase) => (c.image ? { kind: 'files' as const, paths: [join(dir, c.image)] } : { kind: 'none' as const });
  const encode = async (c: QwenCase) => {
    if (!encoded.has(c.name)) encoded.set(c.name, await family.encode(c.question, imageInput(c)));
    return encoded.get(c.name)!;
  };

  it('opens through Vlm.open with the flat Qwen config (no text_config)', async () => {
    const vlm = await Vlm.open(folder, compute, `${name}-vlm`);
    expect(vlm.imageToken).toBe('<|image_pad|>');
  });

  it('is read as family qwen2-vl; the vision graph declares the grid input transformers.js feeds', async () => {
    expect(folder.family).toBe('qwen2-vl');
    expect(Number(folder.config.image_token_id)).toBe(index.image_token_id);
    const info = await compute.load(`${name}-vision-info`, folder.files.vision_encoder);
    expect(info.inputs.map((i) => i.name)).toEqual(index.vision_input_names);
  });

  for (const which of ['image', 'text-only'] as const) {
    it(`${which}: prompt, input_ids, token map and M-RoPE ids equal HF's processor and get_rope_index`, async () => {
      const c = which === 'image' ? imageCase : textCase;
      const enc = await encode(c);
      expect(enc.prompt).toBe(c.prompt);
      expect(ids(enc.inputIds)).toEqual(c.input_ids);
      expect(enc.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
      // Row/col of each image token, read back from HF's own M-RoPE ids (h, w axes minus the t axis).
      const expectRowCol = c.image_token_positions.map((p) => ({ row: c.position_ids[1]![p]! - c.position_ids[0]![p]!, col: c.position_ids[2]![p]! - c.position_ids[0]![p]! }));
      expect(enc.imageTokens.map((t) => ({ row: t.row, col: t.col }))).toEqual(expectRowCol);
      expect(enc.mrope!.ids).toEqual(c.position_ids);
      expect(ids(ref(c, 'position_ids'))).toEqual(c.position_ids.flat());
      expect(enc.mrope!.ropeDelta).toBe(c.rope_delta);
      if (c.image) {
        expect(ids(enc.visionExtras!.image_grid_thw!)).toEqual(c.image_grid_thw!.flat());
        expect(enc.pixelValues!.shape).toEqual(ref(c, 'pixel_values').shape);
        const err = relativeError(enc.pixelValues!, ref(c, 'pixel_values'));
        console.log(`${name} ${c.name}: pixel_values max rel diff ${err.toExponential(2)} (transformers.js + Loupe's Pillow resize vs HF Qwen2VLImageProcessor)`);
        expect(err).toBeLessThan(1e-5);
      }
    });
  }

  for (const which of ['image', 'text-only'] as const) {
    it(`${which}: the compute worker reproduces image features, logits, K/V and greedy tokens`, async () => {
      const c = which === 'image' ? imageCase : textCase;
      const enc = await encode(c);
      const text = folder.config as { num_key_value_heads: number; num_attention_heads: number; hidden_size: number };
      const key = `${name}-${c.name}`;
      await compute.openVlm({
        key,
        files: { vision: folder.files.vision_encoder, embed: folder.files.embed_tokens, decoder: folder.files.decoder_model_merged },
        imageTokenId: index.image_token_id,
        numKeyValueHeads: text.num_key_value_heads,
        headDim: text.hidden_size / text.num_attention_heads,
      });
      const res = await compute.runVlm({
        key,
        inputIds: { dtype: 'int64', shape: enc.inputIds.shape, data: BigInt64Array.from(enc.inputIds.data as BigInt64Array) },
        ...(enc.pixelValues && { pixelValues: { dtype: 'float32', shape: enc.pixelValues.shape, data: Float32Array.from(enc.pixelValues.data as Float32Array) } }),
        ...(enc.visionExtras && { visionExtras: enc.visionExtras }),
        ...(enc.mrope && { mrope: enc.mrope }),
        visionFetches: [],
        decoderFetches: presentNames,
        fullLogits: true,
        generate: { maxNewTokens: index.max_new_tokens, eosTokenIds: [] },
      });
      const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(c, 'logits')) };
      if (c.image) errs.image_features = relativeError(res.imageFeatures!, ref(c, 'image_features'));
      else expect(res.imageFeatures).toBeUndefined();
      for (const n of presentNames) errs[n] = relativeError(res.taps[n]!, ref(c, n));
      console.log(`${name} ${c.name} (engine): ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}; greedy ${res.generated} vs ref ${c.greedy_tokens}`);
      for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
      expect(res.generated).toEqual(c.greedy_tokens);
    });
  }

  it('Vlm.forward reproduces tokens, image features and logits', async () => {
    const vlm = await Vlm.open(folder, compute, `${name}-vlm-forward`);
    expect(vlm.imageToken).toBe('<|image_pad|>');
    for (const c of [imageCase, textCase]) {
      const res = await vlm.forward(c.question, imageInput(c), { fullLogits: true, maxNewTokens: index.max_new_tokens });
      expect(res.prompt).toBe(c.prompt);
      expect(res.inputIds).toEqual(c.input_ids);
      expect(res.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
      const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(c, 'logits')) };
      if (c.image) errs.image_features = relativeError(res.imageFeatures!, ref(c, 'image_features'));
      console.log(`${name} ${c.name} (Vlm.forward): ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}; generated ${res.generated}`);
      for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
      expect(res.generated).toEqual(c.greedy_tokens);
    }
  });

  // Loupe's structural tap finder on graphs it did not export: the residual stream (block input/output Adds) and
  // the attention Softmax of every vision block and decoder layer, read through rewritten graphs, against HF's
  // own hidden states and attention probabilities (Qwen2.5-VL's vision rows are in window order on both sides).
  it('taps: vision and LLM hidden states and attention probabilities equal HF\'s', async () => {
    const taps = await resolveTaps(folder, { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true }, { cacheRoot: tempDir(), modelHash: name });
    const vlm = await Vlm.open(folder, compute, `${name}-taps`, taps.files);
    const res = await vlm.forward(imageCase.question, imageInput(imageCase), { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: taps.decoder.map((t) => t.tensor) });
    const blocks = index.vision_blocks;
    const layers = index.text_layers;
    const range = (n: number) => Array.from({ length: n }, (_, i) => i);
    expect(taps.vision.map((t) => t.name).sort()).toEqual([...range(blocks + 1).map((i) => `vision.hidden_states.${i}`), ...range(blocks).map((i) => `vision.attentions.${i}`)].sort());
    expect(taps.decoder.map((t) => t.name).sort()).toEqual([...range(layers + 1).map((i) => `text.hidden_states.${i}`), 'text.final_norm', ...range(layers).map((i) => `text.attentions.${i}`)].sort());
    // HF's last text hidden state is after the final norm; Loupe's text.hidden_states.<layers> is before it.
    const refName = (tap: string) => (tap === 'text.final_norm' ? `text.hidden_states.${layers}` : tap === `text.hidden_states.${layers}` ? null : tap);
    const errs: Record<string, number> = {};
    for (const t of [...taps.vision, ...taps.decoder]) {
      const want = refName(t.name);
      if (!want) continue;
      const got = res.taps[t.tensor]!;
      expect(got.shape.filter((d) => d !== 1), t.name).toEqual(ref(imageCase, want).shape.filter((d) => d !== 1));
      errs[t.name] = relativeError(got, ref(imageCase, want));
    }
    console.log(`${name} taps: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
    for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
  });

  // Preprocessing parity on other image sizes: Loupe's processing (transformers.js Qwen2VLImageProcessor with
  // Loupe's Pillow resize, and HF's smart_resize rounding from the Qwen adapter in families.ts) against HF's
  // Qwen2VLImageProcessor. 70×42 is 2.5 merge factors wide: HF rounds with Python's round() (half to even: 2 → 56 px),
  // transformers.js alone with Math.round (half up: 3 → 84 px, grid [1,4,6] instead of [1,4,4]).
  for (const s of index.shapes) {
    const label = `${s.width}x${s.height}`;
    it(`shapes/${label}: pixel_values and image_grid_thw equal HF's processor`, async () => {
      const images = await processing.images({ kind: 'files', paths: [join(dir, s.image)] });
      const ip = (processing.processor as unknown as { image_processor: (i: unknown[]) => Promise<{ pixel_values: { dims: number[]; data: Float32Array }; image_grid_thw: { data: BigInt64Array } }> }).image_processor;
      const out = await ip(images);
      expect(Array.from(out.image_grid_thw.data, Number)).toEqual(s.image_grid_thw);
      const want = get(`shapes/${label}/pixel_values`);
      expect(out.pixel_values.dims).toEqual(want.shape);
      const err = relativeError({ dtype: 'float32', shape: out.pixel_values.dims, data: out.pixel_values.data }, want);
      console.log(`${name} shapes/${label}: pixel_values max rel diff ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    });
  }
});
