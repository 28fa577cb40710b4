/**
 * Ablation on every family fixture built from the Hugging Face modeling code, in each exporter
 * style: the rewritten graphs with all-zero biases are bit-identical to the originals, and
 * blocking text → image attention in every LLM layer makes the logits at text positions exactly
 * the same whatever the image (here: the image vs an all-black image of the same size, so token
 * counts and positions match). The blind baseline's blank image is accepted by every family.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AblationSpec } from '../../src-shared/ablation/spec.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { imageSize } from '../../src-main/experiments/inside-the-llm/images.ts';
import { openModelFolder, textConfigOf } from '../../src-main/engine/model-folder.ts';
import { resolveTaps } from '../../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { logitDiffByPosition } from '../helpers/reference.ts';

const FIXTURES = join(REPO_ROOT, 'tests', 'fixtures');
const CASES = [
  { folder: 'hf-llava/model', image: 'hf-llava/wide.png' },
  { folder: 'hf-llava/model-ort-fused', image: 'hf-llava/wide.png' },
  { folder: 'hf-llava/model-optimum-merged', image: 'hf-llava/wide.png' },
  { folder: 'hf-qwen2-vl/model', image: 'hf-qwen2-vl/image.png' },
  { folder: 'hf-qwen2-vl/model-ort-fused', image: 'hf-qwen2-vl/image.png' },
  { folder: 'hf-qwen2_5-vl/model', image: 'hf-qwen2_5-vl/image.png' },
  { folder: 'hf-qwen2_5-vl/model-ort-fused', image: 'hf-qwen2_5-vl/image.png' },
  { folder: 'hf-idefics3/model', image: 'hf-idefics3/split.png' },
  { folder: 'hf-idefics3/model-ort-fused', image: 'hf-idefics3/split.png' },
  { folder: 'hf-paligemma/model', image: 'hf-paligemma/wide.png' },
  { folder: 'hf-paligemma/model-ort-fused', image: 'hf-paligemma/wide.png' },
  { folder: 'hf-llava-next/model-ort-fused', image: 'hf-llava-next/image-wide.png' },
  { folder: 'hf-llava-onevision/model-ort-fused', image: 'hf-llava-onevision/image-wide.png' },
];
const TEXT_TO_IMAGE: AblationSpec = { edits: [{ op: 'block', part: 'llm', layers: 'all', heads: 'all', queries: { kind: 'text' }, keys: { kind: 'image' }, excludeSelf: false }] };
const QUESTION = 'What is in the picture?';

let compute: ComputeClient;
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
});
afterAll(() => compute?.close());

function blackLike(path: string): string {
  const { width, height } = imageSize(path);
  const png = new PNG({ width, height });
  png.data.fill(0);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const out = join(tempDir(), 'black.png');
  writeFileSync(out, PNG.sync.write(png));
  return out;
}

describe('taps on every family fixture and exporter style', () => {
  for (const c of CASES) {
    it(`${c.folder}: a hidden state for every LLM layer and the final norm, attention for every layer of both towers`, async () => {
      const folder = openModelFolder(join(FIXTURES, c.folder));
      const taps = await resolveTaps(folder, { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true }, { cacheRoot: tempDir(), modelHash: `${c.folder}-taps` });
      const layers = Number(textConfigOf(folder.config).num_hidden_layers);
      const range = (n: number) => Array.from({ length: n }, (_, i) => i);
      expect(taps.decoder.map((t) => t.name).sort()).toEqual([...range(layers + 1).map((i) => `text.hidden_states.${i}`), 'text.final_norm', ...range(layers).map((i) => `text.attentions.${i}`)].sort());
      const vision = taps.vision.filter((t) => t.name.startsWith('vision.attentions.')).length;
      expect(vision).toBeGreaterThan(0);
      expect(taps.vision.filter((t) => t.name.startsWith('vision.hidden_states.')).length).toBe(vision + 1);
      const vlm = await Vlm.open(folder, compute, `${c.folder}-all-taps`, taps.files);
      const res = await vlm.forward(QUESTION, { kind: 'files', paths: [join(FIXTURES, c.image)] }, { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: taps.decoder.map((t) => t.tensor) });
      for (const t of [...taps.vision, ...taps.decoder]) expect(toFloat32(res.taps[t.tensor]!).every(Number.isFinite), t.name).toBe(true);
    });
  }
});

describe('LLM attention ablation on every family fixture', () => {
  for (const c of CASES) {
    it(`${c.folder}: zero bias bit-identical; text→image blocked → text positions independent of the image; blank accepted`, async () => {
      const folder = openModelFolder(join(FIXTURES, c.folder));
      const image = { kind: 'files' as const, paths: [join(FIXTURES, c.image)] };
      const taps = await resolveTaps(folder, { projector: false, imageKV: false, visionLayers: false, llmLayers: false, attention: false }, { cacheRoot: tempDir(), modelHash: c.folder }, TEXT_TO_IMAGE);
      const plain = await Vlm.open(folder, compute, `${c.folder}-plain`);
      const ablatable = await Vlm.open(folder, compute, `${c.folder}-ablatable`, taps.files);
      const intact = await plain.forward(QUESTION, image, { fullLogits: true });
      const zero = await ablatable.forward(QUESTION, image, { fullLogits: true });
      expect(Array.from(toFloat32(zero.fullLogits!))).toEqual(Array.from(toFloat32(intact.fullLogits!)));

      const seen = await ablatable.forward(QUESTION, image, { fullLogits: true, ablation: TEXT_TO_IMAGE });
      const black = await ablatable.forward(QUESTION, { kind: 'files', paths: [blackLike(image.paths[0]!)] }, { fullLogits: true, ablation: TEXT_TO_IMAGE });
      expect(black.inputIds).toEqual(seen.inputIds);
      const { text: textDiff, image: imageDiff } = logitDiffByPosition(seen, black);
      expect(textDiff).toBe(0);
      expect(imageDiff).toBeGreaterThan(1e-4);
      const a = toFloat32(seen.fullLogits!);
      const intactVsSeen = Math.max(...Array.from(a, (x, i) => Math.abs(x - toFloat32(intact.fullLogits!)[i]!)));
      expect(intactVsSeen).toBeGreaterThan(1e-4);

      const blind = await plain.forward(QUESTION, { kind: 'blank', count: 1 }, { fullLogits: true });
      expect(blind.imageTokens.length).toBeGreaterThan(0);
      expect(toFloat32(blind.fullLogits!).every(Number.isFinite)).toBe(true);
    });
  }
});
