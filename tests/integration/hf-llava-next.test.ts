/**
 * LLaVA-NeXT and LLaVA-OneVision ("anyres") from the Hugging Face modeling code (tests/fixtures/hf-llava-next,
 * hf-llava-onevision, built by tools/hf-fixtures/build_llava_next.py: transformers v4.46.1
 * LlavaNextForConditionalGeneration (CLIP + Llama) and LlavaOnevisionForConditionalGeneration (SigLIP + Qwen2),
 * TorchScript export, one vision graph for any image size). Everything goes through Loupe's own path — the anyres
 * adapter (vlm/anyres-images.ts: HF's image processors, prompt expansion and pack_image_features order), the site
 * finder and rewritten graphs, ORT — and is compared with PyTorch: prompt, input_ids, token map, pixel_values and
 * image_sizes, image features, logits, K/V, every layer's hidden states and attention, greedy tokens; preprocessing
 * parity on 9 image shapes (printed as a table), token counts at the published 336 / 384 px configurations, the base
 * view's pixel map, and text→image blocking in the LLM.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AblationSpec } from '../../src-shared/ablation/spec.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { cellAt } from '../../src-shared/vision/pixel-map.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { imageGrids } from '../../src-main/experiments/inside-the-llm/tokens.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { checkAblation, llmImageTokens } from '../../src-main/engine/vlm/ablation.ts';
import { anyresConfig, anyresLayout } from '../../src-main/engine/vlm/anyres-images.ts';
import { viewMapper } from '../../src-main/engine/vlm/pixel-maps.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import type { ImageTokenPosition } from '../../src-main/engine/vlm/token-map.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { logitDiffByPosition, relativeError } from '../helpers/reference.ts';

interface Case {
  name: string;
  question: string;
  prompt: string;
  image: string | null;
  input_ids: number[];
  image_token_positions: number[];
  greedy_tokens: number[];
  num_crops?: number;
  crop_grid?: [number, number];
  image_size?: { width: number; height: number };
}
interface Shape {
  image: string;
  width: number;
  height: number;
  tensor: string;
  crop_grid: [number, number];
  num_image_tokens: number;
}
interface Index {
  family: string;
  max_new_tokens: number;
  text_layers: number;
  vision_layers: number;
  vision_feature_layer: number;
  tokens_per_crop: number;
  cases: Case[];
  shapes: Shape[];
  real_config_token_counts: {
    config: { crop_size: number; image_grid_pinpoints: [number, number][]; patch_size?: number; num_image_tokens?: number };
    sizes: { height: number; width: number; num_image_tokens: number }[];
  };
}

const FAMILIES = [
  { dir: 'hf-llava-next', label: 'LLaVA-NeXT (LlavaNextImageProcessor)', family: 'llava-next' },
  { dir: 'hf-llava-onevision', label: 'LLaVA-OneVision (LlavaOnevisionImageProcessor)', family: 'llava-onevision' },
] as const;
const ALL_TAPS = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };
const TEXT_TO_IMAGE: AblationSpec = { edits: [{ op: 'block', part: 'llm', layers: 'all', heads: 'all', queries: { kind: 'text' }, keys: { kind: 'image' }, excludeSelf: false }] };

function load(dir: string) {
  const root = join(REPO_ROOT, 'tests', 'fixtures', dir);
  const index = JSON.parse(readFileSync(join(root, 'reference.json'), 'utf8')) as Index;
  const bytes = readFileSync(join(root, 'reference.safetensors'));
  const all = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  const ref = (name: string): HostTensor => {
    const t = all[name];
    if (!t) throw new Error(`${dir}/reference.safetensors has no ${name}`);
    return t;
  };
  return { root, index, ref };
}

/**
 * Loupe's token map against HF's: `sources` [tokens, 3] = (crop index in pixel_values — 0 the base view —, patch row,
 * patch col), newline rows −1, from HF's own pack_image_features. Loupe's convention: tile = crop − 1 for crops, tile =
 * crops for the base view (last, as Idefics3's global view), newline row = col = −1 with the tile of its row's crop.
 */
function expectTokenMap(tokens: ImageTokenPosition[], sources: HostTensor, crops: number, what: string): void {
  const s = Array.from(sources.data as BigInt64Array, Number);
  expect(tokens.length, `${what}: tokens`).toBe(s.length / 3);
  const bad: string[] = [];
  tokens.forEach((t, k) => {
    const [crop, row, col] = [s[3 * k]!, s[3 * k + 1]!, s[3 * k + 2]!];
    if (crop < 0) {
      if (t.row !== -1 || t.col !== -1 || t.tile < 0 || t.tile >= crops) bad.push(`#${k} newline → ${JSON.stringify(t)}`);
    } else if (t.tile !== (crop === 0 ? crops : crop - 1) || t.row !== row || t.col !== col) {
      bad.push(`#${k} (${crop}, ${row}, ${col}) → ${JSON.stringify(t)}`);
    }
  });
  expect(bad.slice(0, 5), `${what}: token map rows off HF's pack_image_features`).toEqual([]);
}

let compute: ComputeClient;
const parity: string[] = [];
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
});
afterAll(() => {
  console.log(`preprocessing parity, Loupe vs HF (Python, Pillow):\n| family (HF processor) | image (w×h) | crops | pixel_values max |Δ| / max |ref| | image tokens Loupe / HF | image_features (vision graph) |\n|---|---|---|---|---|---|\n${parity.join('\n')}`);
  return compute?.close();
});

for (const f of FAMILIES) {
  const { root, index, ref } = load(f.dir);
  const imageCases = index.cases.filter((c) => c.image !== null);
  const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  // Vision layers up to vision_feature_layer are in the graph (NeXT −2 prunes its last; OneVision −1 keeps both).
  const visionLayers = index.vision_layers + index.vision_feature_layer + 1;

  describe(`${f.dir}: Loupe = PyTorch`, () => {
    const folder = openModelFolder(join(root, 'model'));
    let vlm: Vlm;
    let taps: Awaited<ReturnType<typeof resolveTaps>>;
    beforeAll(async () => {
      taps = await resolveTaps(folder, ALL_TAPS, { cacheRoot: tempDir(), modelHash: `${f.dir}-taps` });
      vlm = await Vlm.open(folder, compute, `${f.dir}-taps`, taps.files);
    });

    it(`model_type ${index.family === 'next' ? 'llava_next' : 'llava_onevision'} is family ${f.family}; a tap for every layer of both towers, attention included`, () => {
      expect(folder.family).toBe(f.family);
      expect(taps.vision.map((t) => t.name).sort()).toEqual(
        [...Array.from({ length: visionLayers + 1 }, (_, i) => `vision.hidden_states.${i}`), ...Array.from({ length: visionLayers }, (_, i) => `vision.attentions.${i}`)].sort(),
      );
      expect(taps.decoder.map((t) => t.name).sort()).toEqual(
        [...Array.from({ length: index.text_layers + 1 }, (_, i) => `text.hidden_states.${i}`), 'text.final_norm', ...Array.from({ length: index.text_layers }, (_, i) => `text.attentions.${i}`)].sort(),
      );
    });

    for (const c of index.cases) {
      it(`${c.name}: prompt, input_ids, token map, pixel_values, image features, logits, K/V, hidden states, attention, greedy tokens`, async () => {
        const image = c.image ? { kind: 'files' as const, paths: [join(root, c.image)] } : { kind: 'none' as const };
        const enc = await vlm.family.encode(c.question, image);
        const names = [...taps.vision, ...taps.decoder];
        const res = await vlm.forward(c.question, image, {
          fullLogits: true,
          visionTaps: c.image ? taps.vision.map((t) => t.tensor) : [],
          decoderTaps: [...presentNames, ...taps.decoder.map((t) => t.tensor)],
          maxNewTokens: index.max_new_tokens,
        });
        expect(res.prompt).toBe(c.prompt);
        expect(res.inputIds).toEqual(c.input_ids);
        expect(res.imageTokens.map((t) => t.position)).toEqual(c.image_token_positions);
        const tap = (name: string) => res.taps[names.find((t) => t.name === name)!.tensor]!;
        const errs: Record<string, number> = { logits: relativeError(res.fullLogits!, ref(`${c.name}/logits`)) };
        for (const n of presentNames) errs[n] = relativeError(res.taps[n]!, ref(`${c.name}/${n}`));
        errs['text.hidden_states.0'] = relativeError(tap('text.hidden_states.0'), ref(`${c.name}/text.hidden_states.0`));
        errs['text.hidden_states.1'] = relativeError(tap('text.hidden_states.1'), ref(`${c.name}/text.hidden_states.1`));
        // HF's last text hidden state is after the final norm; Loupe keeps both.
        errs['text.final_norm'] = relativeError(tap('text.final_norm'), ref(`${c.name}/text.hidden_states.${index.text_layers}`));
        const attention: Record<string, number> = {};
        for (let l = 0; l < index.text_layers; l++) attention[`text.attentions.${l}`] = relativeError(tap(`text.attentions.${l}`), ref(`${c.name}/text.attentions.${l}`));
        if (c.image) {
          errs.pixel_values = relativeError(enc.pixelValues!, ref(`${c.name}/pixel_values`));
          expect(enc.pixelValues!.shape).toEqual(ref(`${c.name}/pixel_values`).shape);
          expect(Array.from(enc.visionExtras!.image_sizes!.data as BigInt64Array)).toEqual(Array.from(ref(`${c.name}/image_sizes`).data as BigInt64Array));
          expectTokenMap(res.imageTokens, ref(`${c.name}/image_token_sources`), c.num_crops!, c.name);
          errs.image_features = relativeError(res.imageFeatures!, ref(`${c.name}/image_features`));
          // The tower runs every crop as one batch: [crops + 1, tokens, hidden] like HF's vision_tower(pixel_values[0]).
          for (let l = 0; l <= visionLayers; l++) errs[`vision.hidden_states.${l}`] = relativeError(tap(`vision.hidden_states.${l}`), ref(`${c.name}/vision.hidden_states.${l}`));
          for (let l = 0; l < visionLayers; l++) attention[`vision.attentions.${l}`] = relativeError(tap(`vision.attentions.${l}`), ref(`${c.name}/vision.attentions.${l}`));
        } else {
          expect(res.imageTokens).toEqual([]);
          expect(res.imageFeatures).toBeUndefined();
        }
        console.log(`${f.dir} ${c.name}: ${Object.entries({ ...errs, ...attention }).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
        for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
        // The reference stores probabilities in fp16 (absolute rounding ≤ 2.4e-4).
        for (const [k, v] of Object.entries(attention)) expect(v, k).toBeLessThan(1e-3);
        expect(res.generated).toEqual(c.greedy_tokens);
      });
    }

    it('the probes read the base view: imageGrids gives its complete 8×8 grid, LLM edits see crop patches and no-patch newlines', async () => {
      const c = imageCases[0]!;
      const res = await vlm.forward(c.question, { kind: 'files', paths: [join(root, c.image!)] });
      const side = Math.sqrt(index.tokens_per_crop);
      const grids = imageGrids(res.imageTokens.flatMap((t) => [t.position, t.image, t.tile, t.row, t.col]));
      const g = grids.get(0)!;
      expect(g.grid).toEqual({ rows: side, cols: side });
      // The base view is the first side² image tokens of the prompt (pack_image_features puts it first).
      expect(Array.from(g.tokenOf)).toEqual(Array.from({ length: side * side }, (_, k) => k));
      const llm = llmImageTokens(res.imageTokens);
      const newlines = res.imageTokens.filter((t) => t.row < 0).length;
      const sources = Array.from(ref(`${c.name}/image_token_sources`).data as BigInt64Array, Number);
      expect(newlines).toBe(sources.filter((v, i) => i % 3 === 0 && v < 0).length);
      expect(llm.filter((t) => t.patch < 0).length).toBe(newlines);
      res.imageTokens.forEach((t, k) => t.row >= 0 && expect(llm[k]!.patch, `token ${k}`).toBe(t.row * side + t.col));
    });

    it('a wrong reference is caught (the comparison can fail)', () => {
      const c = imageCases[0]!;
      expect(relativeError(ref(`${c.name}/vision.hidden_states.1`), ref(`${c.name}/vision.hidden_states.2`))).toBeGreaterThan(1e-2);
    });
  });

  describe(`${f.dir}: ablation`, () => {
    const folder = openModelFolder(join(root, 'model'));
    const c = imageCases[0]!;
    const image = { kind: 'files' as const, paths: [join(root, c.image!)] };

    it('zero-bias rewrite bit-identical; text→image blocking makes the image and an all-black one of its size identical at text positions; the blank blind image runs; vision edits are refused', async () => {
      const place = { cacheRoot: tempDir(), modelHash: `${f.dir}-ablate` };
      const plain = await Vlm.open(folder, compute, `${f.dir}-plain`);
      const rewritten = await resolveTaps(folder, { projector: false, imageKV: false, visionLayers: false, llmLayers: false, attention: false }, place, TEXT_TO_IMAGE);
      const ablatable = await Vlm.open(folder, compute, `${f.dir}-ablatable`, rewritten.files);
      const intact = await plain.forward(c.question, image, { fullLogits: true });
      const zero = await ablatable.forward(c.question, image, { fullLogits: true });
      expect(Array.from(toFloat32(zero.fullLogits!))).toEqual(Array.from(toFloat32(intact.fullLogits!)));

      const { width, height } = c.image_size!;
      const png = new PNG({ width, height });
      png.data.fill(0);
      for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
      const black = join(tempDir(), 'black.png');
      writeFileSync(black, PNG.sync.write(png));
      const seen = await ablatable.forward(c.question, image, { fullLogits: true, ablation: TEXT_TO_IMAGE });
      const dark = await ablatable.forward(c.question, { kind: 'files', paths: [black] }, { fullLogits: true, ablation: TEXT_TO_IMAGE });
      expect(dark.inputIds).toEqual(seen.inputIds);
      const { text: textDiff, image: imageDiff } = logitDiffByPosition(seen, dark);
      console.log(`${f.dir} text→image blocked: image vs black, text positions max |Δlogit| ${textDiff}, image positions ${imageDiff.toExponential(1)}`);
      expect(textDiff).toBe(0);
      expect(imageDiff).toBeGreaterThan(1e-3);
      expect(relativeError(seen.fullLogits!, intact.fullLogits!)).toBeGreaterThan(1e-3);

      // The blind baseline's blank image (processor size, 1×1 crop grid) goes through the same graph.
      const blind = await plain.forward(c.question, { kind: 'blank', count: 1 }, { fullLogits: true });
      expect(blind.imageTokens.length).toBe(anyresLayout(32, 32, anyresConfig(folder)).tokens);
      expect(toFloat32(blind.fullLogits!).every(Number.isFinite)).toBe(true);

      const vision: AblationSpec = { edits: [{ op: 'block', part: 'vision', layers: 'all', heads: 'all', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] };
      expect(() => checkAblation(folder, vision)).toThrow(/vision-tower attention edits/);
    });
  });

  describe(`${f.dir}: preprocessing = ${f.label.replace(/.*\((.*)\)/, '$1')} (Python, Pillow)`, () => {
    const folder = openModelFolder(join(root, 'model'));
    let vlm: Vlm;
    beforeAll(async () => {
      vlm = await Vlm.open(folder, compute, `${f.dir}-pre`);
    });

    it(`pixel_values ≤ 1e-3, image_sizes, token count, token map and the vision graph's features for ${index.shapes.length} image shapes`, async () => {
      expect(index.shapes.length).toBeGreaterThanOrEqual(5);
      for (const s of index.shapes) {
        const key = `shapes/${s.width}x${s.height}`;
        const image = { kind: 'files' as const, paths: [join(root, s.image)] };
        const enc = await vlm.family.encode('', image);
        expect(enc.pixelValues!.shape, `${key} shape`).toEqual(ref(s.tensor).shape);
        const err = relativeError(enc.pixelValues!, ref(s.tensor));
        expect(Array.from(enc.visionExtras!.image_sizes!.data as BigInt64Array), key).toEqual(Array.from(ref(`${key}/image_sizes`).data as BigInt64Array));
        expect(enc.imageTokens.length, `${key} tokens`).toBe(s.num_image_tokens);
        expectTokenMap(enc.imageTokens, ref(`${key}/image_token_sources`), s.crop_grid[0] * s.crop_grid[1], key);
        const res = await vlm.forward('', image);
        const feats = relativeError(res.imageFeatures!, ref(`${key}/image_features`));
        parity.push(`| ${f.label} | ${s.width}×${s.height} | ${s.crop_grid.join('×')} | ${err.toExponential(1)} | ${enc.imageTokens.length} / ${s.num_image_tokens} | ${feats.toExponential(1)} |`);
        expect(err, key).toBeLessThan(1e-3);
        expect(feats, `${key} image_features`).toBeLessThan(1e-4);
      }
    });

    it('token counts at the published configuration (real pinpoints; OneVision anyres_max_9 downsampling) equal HF processor counts', () => {
      const real = index.real_config_token_counts;
      const side = real.config.num_image_tokens ? Math.sqrt(real.config.num_image_tokens) : real.config.crop_size / real.config.patch_size!;
      const cfg = { pinpoints: real.config.image_grid_pinpoints, crop: real.config.crop_size, side, ...(f.family === 'llava-onevision' && { maxCrops: 9 }) };
      const got = real.sizes.map((s) => ({ ...s, num_image_tokens: anyresLayout(s.height, s.width, cfg).tokens }));
      expect(got).toEqual(real.sizes);
    });

    it('the pixel map of the base view puts a marked pixel on the base patch the processor put it on', async () => {
      // A black 60×30 image with one white 2×2 dot (centres off the cell borders); the base view is the whole image
      // squashed to 32×32 (8×8 patches).
      const map = viewMapper(folder)({ width: 60, height: 30 }, { rows: 8, cols: 8 });
      for (const [x, y] of [[30, 15], [3, 2], [55, 26], [12, 24], [41, 6]] as const) {
        const png = new PNG({ width: 60, height: 30 });
        png.data.fill(0);
        for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
        for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) png.data.fill(255, ((y + dy) * 60 + x + dx) * 4, ((y + dy) * 60 + x + dx) * 4 + 3);
        const path = join(tempDir(), 'dot.png');
        writeFileSync(path, PNG.sync.write(png));
        const enc = await vlm.family.encode('', { kind: 'files', paths: [path] });
        const px = toFloat32(enc.pixelValues!); // crop 0 = the base view, channel 0 first
        let best = 0;
        for (let i = 1; i < 32 * 32; i++) if (px[i]! > px[best]!) best = i;
        const patch = Math.floor(Math.floor(best / 32) / 4) * 8 + Math.floor((best % 32) / 4);
        expect(cellAt(map, [x + 1, y + 1]), `dot at (${x}, ${y})`).toBe(patch);
      }
    });
  });
}

describe('anyres through the engine: encode-images, vlm-forward with every tap, K/V probes on the base grid', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(() => engine?.close());

  for (const f of FAMILIES) {
    it(`${f.dir}: stored image features = the forward pass's; every tap and image_token_map stored; kv/probes run`, async () => {
      const path = join(REPO_ROOT, 'tests', 'fixtures', f.dir, 'model');
      const modelId = engine.importModel(path).id;
      const encode = await callEngine<{ id: string }>(engine, 'jobs/start', { kind: 'encode-images', modelId, datasetId: 'colour-at-point', spec: { limit: 2, storeDtype: 'float32' } });
      const forward = await callEngine<{ id: string }>(engine, 'jobs/start', { kind: 'vlm-forward', modelId, datasetId: 'colour-at-point', spec: { limit: 2, maxNewTokens: 2, taps: ALL_TAPS } });
      await engine.queue.drained();
      for (const id of [encode.id, forward.id]) expect(engine.store.runs.get(id), JSON.stringify(engine.store.runs.get(id))).toMatchObject({ status: 'done', failed: 0 });
      const dataset = engine.store.datasets.get('colour-at-point');
      const vlm = await Vlm.open(openModelFolder(path), engine.compute, `engine-check-${f.dir}`);
      for (const result of engine.store.runs.results(encode.id)) {
        const stored = engine.store.blobs.getTensors(result.tensors.find((t) => t.name === 'image_features')!.blob).image_features!;
        const item = engine.store.datasets.item('colour-at-point', result.itemId);
        const res = await vlm.forward('', { kind: 'files', paths: [join(dataset.path, item.images[0]!)] });
        expect(relativeError(toFloat32(stored), toFloat32(res.imageFeatures!)), result.itemId).toBe(0);
      }
      const names = new Set(engine.store.runs.results(forward.id)[0]!.tensors.map((t) => t.name));
      for (const n of ['image_token_map', 'projector', 'image_kv.0.key', 'vision.hidden_states.2', 'vision.attentions.1', 'text.hidden_states.2', 'text.attentions.1', 'text.final_norm']) expect(names.has(n), n).toBe(true);
      const probes = await callEngine<{ probe: string; value: number }[]>(engine, 'kv/probes', { runId: forward.id });
      expect(probes.some((p) => p.probe === 'segmentation' && Number.isFinite(p.value))).toBe(true);
    });
  }
});
