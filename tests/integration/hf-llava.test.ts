/**
 * LLaVA-1.5 from the Hugging Face modeling code (tests/fixtures/hf-llava, built by
 * tools/hf-fixtures/build_llava.py: transformers v4.46.1 LlavaForConditionalGeneration, CLIP +
 * Llama, TorchScript `torch.onnx.export`, opset 17), in two exporter styles — the plain export
 * (`model/`) and the same graphs after ONNX Runtime's transformer optimizer (`model-ort-fused/`:
 * fused com.microsoft Attention, SkipLayerNormalization, generic node names) and with an
 * Optimum merged decoder (`model-optimum-merged/`: Optimum's merge_decoders, an If on
 * use_cache_branch holding the with-past and no-past decoders). Everything goes
 * through Loupe's own path (tokenizer + chat template, preprocessing, site finder, rewritten
 * graphs, ORT) and is compared with PyTorch's outputs: logits, image features, K/V, every
 * layer's hidden state and attention probabilities. Then the engine runs it in the fp32, int8
 * and q4-decoder variants with every tap, and a sweep.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import type { AblationSpec } from '../../src-shared/ablation/spec.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { cellAt, clipViewMap } from '../../src-shared/vision/pixel-map.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { llavaGrid } from '../../src-main/engine/vlm/token-map.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { logitDiffByPosition, relativeError } from '../helpers/reference.ts';

const DIR = join(REPO_ROOT, 'tests', 'fixtures', 'hf-llava');
const STYLES = ['model', 'model-ort-fused', 'model-optimum-merged'] as const;

interface Case {
  name: string;
  question: string;
  prompt: string;
  image: string | null;
  input_ids: number[];
  image_token_positions: number[];
  greedy_tokens: number[];
}
const index = JSON.parse(readFileSync(join(DIR, 'reference.json'), 'utf8')) as {
  max_new_tokens: number;
  text_layers: number;
  cases: Case[];
  shapes: { image: string; width: number; height: number; tensor: string }[];
};
const bytes = readFileSync(join(DIR, 'reference.safetensors'));
const all = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
const ref = (name: string): HostTensor => {
  const t = all[name];
  if (!t) throw new Error(`reference.safetensors has no ${name}`);
  return t;
};
const presentNames = Array.from({ length: index.text_layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
const imageCases = index.cases.filter((c) => c.image !== null);
const ALL_TAPS = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };

let compute: ComputeClient;
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
});
afterAll(() => compute?.close());

/** The exported vision graph keeps layers 0..1 (vision_feature_layer −2): HF's hidden_states 0..2 and attentions 0..1. */
const VISION_LAYERS = 2;

for (const style of STYLES) {
  describe(`hf-llava ${style}: Loupe = PyTorch`, () => {
    const folder = openModelFolder(join(DIR, style));
    let vlm: Vlm;
    let taps: Awaited<ReturnType<typeof resolveTaps>>;
    beforeAll(async () => {
      taps = await resolveTaps(folder, ALL_TAPS, { cacheRoot: tempDir(), modelHash: `hf-llava-${style}` });
      vlm = await Vlm.open(folder, compute, `hf-llava-${style}-taps`, taps.files);
    });

    it('finds a tap for every layer of both towers, attention included', () => {
      expect(taps.vision.map((t) => t.name).sort()).toEqual(
        [...Array.from({ length: VISION_LAYERS + 1 }, (_, i) => `vision.hidden_states.${i}`), ...Array.from({ length: VISION_LAYERS }, (_, i) => `vision.attentions.${i}`)].sort(),
      );
      expect(taps.decoder.map((t) => t.name).sort()).toEqual(
        [...Array.from({ length: index.text_layers + 1 }, (_, i) => `text.hidden_states.${i}`), 'text.final_norm', ...Array.from({ length: index.text_layers }, (_, i) => `text.attentions.${i}`)].sort(),
      );
    });

    for (const c of index.cases) {
      it(`${c.name}: tokens, image features, logits, K/V, hidden states, attention and greedy tokens`, async () => {
        const image = c.image ? { kind: 'files' as const, paths: [join(DIR, c.image)] } : { kind: 'none' as const };
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
        // HF's last text hidden state is after the final norm; Loupe keeps both.
        errs['text.hidden_states.0'] = relativeError(tap('text.hidden_states.0'), ref(`${c.name}/text.hidden_states.0`));
        errs['text.hidden_states.1'] = relativeError(tap('text.hidden_states.1'), ref(`${c.name}/text.hidden_states.1`));
        errs['text.final_norm'] = relativeError(tap('text.final_norm'), ref(`${c.name}/text.hidden_states.2`));
        const attention: Record<string, number> = {};
        for (let l = 0; l < index.text_layers; l++) attention[`text.attentions.${l}`] = relativeError(tap(`text.attentions.${l}`), ref(`${c.name}/text.attentions.${l}`));
        if (c.image) {
          errs.image_features = relativeError(res.imageFeatures!, ref(`${c.name}/image_features`));
          for (let l = 0; l <= VISION_LAYERS; l++) errs[`vision.hidden_states.${l}`] = relativeError(tap(`vision.hidden_states.${l}`), ref(`${c.name}/vision.hidden_states.${l}`));
          for (let l = 0; l < VISION_LAYERS; l++) attention[`vision.attentions.${l}`] = relativeError(tap(`vision.attentions.${l}`), ref(`${c.name}/vision.attentions.${l}`));
        }
        console.log(`hf-llava ${style} ${c.name}: ${Object.entries({ ...errs, ...attention }).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')}`);
        for (const [k, v] of Object.entries(errs)) expect(v, k).toBeLessThan(1e-4);
        // The reference stores probabilities in fp16 (absolute rounding ≤ 2.4e-4).
        for (const [k, v] of Object.entries(attention)) expect(v, k).toBeLessThan(1e-3);
        expect(res.generated).toEqual(c.greedy_tokens);
      });
    }

    it('a wrong reference is caught (the comparison can fail)', () => {
      const c = imageCases[0]!;
      expect(relativeError(ref(`${c.name}/vision.hidden_states.1`), ref(`${c.name}/vision.hidden_states.2`))).toBeGreaterThan(1e-2);
    });
  });
}

describe('hf-llava ablation on both exporter styles', () => {
  const textToImage: AblationSpec = { edits: [{ op: 'block', part: 'llm', layers: 'all', heads: 'all', queries: { kind: 'text' }, keys: { kind: 'image' }, excludeSelf: false }] };
  const patchIsolation: AblationSpec = { edits: [{ op: 'block', part: 'vision', layers: 'all', heads: 'all', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] };
  const c = imageCases[0]!;
  const image = { kind: 'files' as const, paths: [join(DIR, c.image!)] };

  for (const style of STYLES) {
    it(`${style}: a rewritten graph with zero bias is bit-identical; text→image blocking makes image and blank identical at text positions; patch isolation changes the features`, async () => {
      const folder = openModelFolder(join(DIR, style));
      const place = { cacheRoot: tempDir(), modelHash: `hf-llava-${style}-ablate` };
      const plain = await Vlm.open(folder, compute, `hf-llava-${style}-plain`);
      const both = await resolveTaps(folder, { ...ALL_TAPS, attention: false }, place, { edits: [...textToImage.edits, ...patchIsolation.edits] });
      const ablatable = await Vlm.open(folder, compute, `hf-llava-${style}-ablatable`, both.files);
      const intact = await plain.forward(c.question, image, { fullLogits: true });
      // No spec: the rewritten graphs get all-zero biases.
      const zero = await ablatable.forward(c.question, image, { fullLogits: true });
      expect(Array.from(toFloat32(zero.fullLogits!))).toEqual(Array.from(toFloat32(intact.fullLogits!)));
      expect(Array.from(toFloat32(zero.imageFeatures!))).toEqual(Array.from(toFloat32(intact.imageFeatures!)));

      const seen = await ablatable.forward(c.question, image, { fullLogits: true, ablation: textToImage });
      const blank = await ablatable.forward(c.question, { kind: 'blank', count: 1 }, { fullLogits: true, ablation: textToImage });
      const { text: textDiff, image: imageDiff } = logitDiffByPosition(seen, blank);
      expect(textDiff).toBe(0);
      expect(imageDiff).toBeGreaterThan(1e-3); // the images do differ where they are read
      expect(relativeError(seen.fullLogits!, intact.fullLogits!)).toBeGreaterThan(1e-3);

      const isolated = await ablatable.forward(c.question, image, { ablation: patchIsolation });
      expect(relativeError(isolated.imageFeatures!, intact.imageFeatures!)).toBeGreaterThan(1e-2);
    });
  }
});

describe('hf-llava fp16 (ONNX Runtime float16 converter, fp16 I/O)', () => {
  const c = imageCases[0]!;
  const image = { kind: 'files' as const, paths: [join(DIR, c.image!)] };
  const textToImage: AblationSpec = { edits: [{ op: 'block', part: 'llm', layers: 'all', heads: 'all', queries: { kind: 'text' }, keys: { kind: 'image' }, excludeSelf: false }] };

  it('agrees with PyTorch fp32 within half precision, every tap present; ablation blocks exactly at fp16 (bias clamped to −65504)', async () => {
    const folder = openModelFolder(join(DIR, 'model'), 'fp16');
    expect(folder.files.decoder_model_merged).toMatch(/_fp16\.onnx$/);
    const taps = await resolveTaps(folder, ALL_TAPS, { cacheRoot: tempDir(), modelHash: 'hf-llava-fp16' }, textToImage);
    expect(taps.vision.length).toBe(2 * VISION_LAYERS + 1);
    expect(taps.decoder.length).toBe(2 * index.text_layers + 2);
    const vlm = await Vlm.open(folder, compute, 'hf-llava-fp16', taps.files);
    const res = await vlm.forward(c.question, image, { fullLogits: true, visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: taps.decoder.map((t) => t.tensor) });
    const errs = { image_features: relativeError(res.imageFeatures!, ref(`${c.name}/image_features`)), logits: relativeError(res.fullLogits!, ref(`${c.name}/logits`)) };
    console.log(`hf-llava fp16 vs PyTorch fp32: image_features ${errs.image_features.toExponential(1)}, logits ${errs.logits.toExponential(1)}`);
    // fp16 keeps ~3 significant digits; 2 layers of random weights amplify it a little.
    expect(errs.image_features).toBeLessThan(1e-2);
    expect(errs.logits).toBeLessThan(2e-2);
    for (const t of [...taps.vision, ...taps.decoder]) expect(res.taps[t.tensor], t.name).toBeDefined();

    const seen = await vlm.forward(c.question, image, { fullLogits: true, ablation: textToImage });
    const blank = await vlm.forward(c.question, { kind: 'blank', count: 1 }, { fullLogits: true, ablation: textToImage });
    const { text: textDiff } = logitDiffByPosition(seen, blank);
    expect(textDiff).toBe(0);
    expect(toFloat32(seen.fullLogits!).every(Number.isFinite)).toBe(true);
  });
});

describe('hf-llava preprocessing = the Hugging Face CLIPImageProcessor (Python, Pillow)', () => {
  const folder = openModelFolder(join(DIR, 'model'));
  let vlm: Vlm;
  beforeAll(async () => {
    vlm = await Vlm.open(folder, compute, 'hf-llava-pre');
  });

  it('pixel_values within 1e-3 for every reference image shape (resize shortest edge, centre crop)', async () => {
    const rows: string[] = [];
    for (const s of index.shapes) {
      const px = await vlm.processing.pixelValues({ kind: 'files', paths: [join(DIR, s.image)] });
      const err = relativeError(px, ref(s.tensor));
      rows.push(`| llava (CLIP) | ${s.width}×${s.height} | ${err.toExponential(1)} |`);
      expect(err, `${s.width}×${s.height}`).toBeLessThan(1e-3);
    }
    console.log(`preprocessing parity (max |Δ| / max |ref|):\n${rows.join('\n')}`);
  });

  it('the pixel → token map puts a marked pixel on the token the processor put it on, and knows what it crops away', async () => {
    // A black 100×37 image with one white 2×2 dot; the processor resizes to 86×32 and crops 32×32 from x = 27.
    const grid = llavaGrid(folder.config);
    const map = clipViewMap(folder.preprocessor, { width: 100, height: 37 }, grid);
    const { writeFileSync } = await import('node:fs');
    for (const [x, y] of [[50, 20], [36, 5], [66, 30], [10, 20], [90, 3]] as const) {
      const png = new PNG({ width: 100, height: 37 });
      png.data.fill(0);
      for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) png.data.fill(255, ((y + dy) * 100 + x + dx) * 4, ((y + dy) * 100 + x + dx) * 4 + 3);
      const path = join(tempDir(), 'dot.png');
      writeFileSync(path, PNG.sync.write(png));
      const px = toFloat32(await vlm.processing.pixelValues({ kind: 'files', paths: [path] }));
      // Brightest value of channel 0 → its 4×4 patch; a dot the crop removed leaves the image black.
      let best = 0;
      for (let i = 1; i < 32 * 32; i++) if (px[i]! > px[best]!) best = i;
      const visible = px[best]! > 0; // black normalises to −1.79, white to +1.93
      const patch = Math.floor(Math.floor(best / 32) / 4) * grid.cols + Math.floor((best % 32) / 4);
      const cell = cellAt(map, [x + 1, y + 1]);
      if (!visible) expect(cell, `dot at (${x}, ${y}) is cropped away`).toBeUndefined();
      else expect(cell, `dot at (${x}, ${y})`).toBe(patch);
    }
    // Both kinds were exercised.
    expect(cellAt(map, [11, 21])).toBeUndefined();
    expect(cellAt(map, [51, 21])).toBeDefined();
  });
});

describe('hf-llava through the engine: variants, every tap, a sweep', () => {
  let engine: Engine;
  let modelId: string;
  beforeAll(async () => {
    engine = await startTestEngine();
    modelId = engine.importModel(join(DIR, 'model')).id;
  });
  afterAll(() => engine?.close());
  const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

  for (const variant of ['fp32', 'q8', { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' }] as const) {
    it(`vlm-forward with every tap, variant ${JSON.stringify(variant)}`, async () => {
      const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId, datasetId: 'colour-at-point', spec: { limit: 2, maxNewTokens: 2, variant, taps: ALL_TAPS } });
      await engine.queue.drained();
      const info = engine.store.runs.get(run.id);
      expect(info, JSON.stringify(info)).toMatchObject({ status: 'done', failed: 0 });
      const names = new Set(engine.store.runs.results(run.id)[0]!.tensors.map((t) => t.name));
      for (let l = 0; l <= VISION_LAYERS; l++) expect(names.has(`vision.hidden_states.${l}`), `vision.hidden_states.${l}`).toBe(true);
      for (let l = 0; l < VISION_LAYERS; l++) expect(names.has(`vision.attentions.${l}`), `vision.attentions.${l}`).toBe(true);
      for (let l = 0; l <= index.text_layers; l++) expect(names.has(`text.hidden_states.${l}`), `text.hidden_states.${l}`).toBe(true);
      for (let l = 0; l < index.text_layers; l++) expect(names.has(`text.attentions.${l}`), `text.attentions.${l}`).toBe(true);
      expect(names.has('text.final_norm')).toBe(true);
    });
  }

  it('a sweep (patch isolation in the last k vision layers) runs to the end on the int8 variant', async () => {
    const { sweepId, runIds } = await call<{ sweepId: string; runIds: string[] }>('sweeps/start', {
      modelId,
      datasetId: 'colour-at-point',
      name: 'hf-llava int8',
      base: { limit: 6, gram: false, cls: false, variant: 'q8' },
      ablations: [1, 2].map((k) => ({ edits: [{ op: 'block', part: 'vision', layers: Array.from({ length: k }, (_, i) => VISION_LAYERS - k + i), queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }] })),
    });
    await engine.queue.drained();
    for (const id of runIds) expect(engine.store.runs.get(id), id).toMatchObject({ status: 'done', failed: 0 });
    const summary = await call<{ stages: { stage: string }[] }>('sweeps/summary', { sweepId });
    expect(summary.stages.map((s) => s.stage)).toContain('answer');
  });
});
