/**
 * Job kind `readout` ("Hidden in plain sight"): per item, the features at the task's spots
 * from every stage — each exported vision layer, the projector, each LLM layer at the image
 * positions — plus the VLM's answer over the choices and a blind answer. The probes and
 * cosine readouts across items are computed from these by `readout/summary` (readout-summary.ts).
 */
import { join } from 'node:path';
import type { RunInfo } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { ReadoutSpec } from '../../../src-shared/jobs/specs.ts';
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import type { ComputeClient } from '../../compute/compute-client.ts';
import { openModelFolder } from '../../engine/model-folder.ts';
import { resolveTaps } from '../../engine/vlm/tap-sets.ts';
import { llavaGrid } from '../../engine/vlm/token-map.ts';
import { Vlm, chosenAnswer } from '../../engine/vlm/vlm.ts';
import type { Store } from '../../store/store.ts';
import type { ItemOutput, JobRunner, PreparedRun } from '../../jobs/job-runner.ts';
import { type Geometry, type Spot, geometryOf } from './readout-geometry.ts';
import { gramCosine } from '../../../src-shared/metrics/gram.ts';
import { cosine } from '../../../src-shared/metrics/probe.ts';
import { matchAnswer, optionLetter } from '../../../src-shared/metrics/answer-matching.ts';
import { cellAt } from '../../../src-shared/vision/pixel-map.ts';
import { viewMapper } from '../../engine/vlm/pixel-maps.ts';
import { imageSize } from '../inside-the-llm/images.ts';


export class ReadoutRunner implements JobRunner {
  private readonly store: Store;
  private readonly compute: ComputeClient;
  private readonly graphCache: string;
  constructor(store: Store, compute: ComputeClient, graphCache: string) {
    this.store = store;
    this.compute = compute;
    this.graphCache = graphCache;
  }

  async prepare(run: RunInfo): Promise<PreparedRun> {
    const spec = ReadoutSpec.parse(run.spec);
    const model = this.store.models.get(run.modelId);
    const folder = openModelFolder(model.path, spec.variant);
    const dataset = this.store.datasets.get(run.datasetId);
    const place = { cacheRoot: this.graphCache, modelHash: model.hash };
    const taps = await resolveTaps(folder, { projector: true, imageKV: false, visionLayers: true, llmLayers: true, attention: false }, place, spec.ablation);
    const vlm = await Vlm.open(folder, this.compute, `${run.modelId}:${taps.key}`, taps.files);
    const grid = llavaGrid(folder.config);
    const view = viewMapper(folder);
    const stages = [...taps.vision, ...taps.decoder].filter((t) => /hidden_states/.test(t.name));

    return {
      processItem: async (itemId): Promise<ItemOutput> => {
        const item = this.store.datasets.item(run.datasetId, itemId);
        if (!item.prompt || !item.choices || item.answer === undefined) throw new LoupeError('bad-input', `item ${itemId} needs a prompt, choices and an answer for a readout`);
        const paths = item.images.map((p) => join(dataset.path, p));
        // One pass scores the choices' first tokens and (with `generate`) also generates the answer.
        const generate = spec.generate ? { maxNewTokens: spec.generate } : {};
        // Scored by letter, the answer is mapped back to the choice at that position.
        const scored = spec.scoreBy === 'letter' ? item.choices.map((_, k) => optionLetter(k)) : item.choices;
        const chosen = (r: Parameters<typeof chosenAnswer>[0]) => {
          const a = chosenAnswer(r)!;
          return { choice: item.choices![scored.indexOf(a.choice)]!, probs: Object.fromEntries(item.choices!.map((c, k) => [c, a.probs[scored[k]!]!])) };
        };
        const res = await vlm.forward(item.prompt, { kind: 'files', paths }, {
          visionTaps: taps.vision.map((t) => t.tensor),
          decoderTaps: taps.decoder.map((t) => t.tensor),
          choices: scored,
          ...generate,
          ...(spec.ablation && { ablation: spec.ablation }),
        });
        const blind = await vlm.forward(item.prompt, spec.blind === 'blank' ? { kind: 'blank', count: item.images.length } : { kind: 'none' }, { choices: scored, ...generate });
        const maps = paths.map((p) => view(imageSize(p), grid));
        const geo = geometryOf(item);
        const spots: Spot[] = geo.kind === 'match' ? [geo.reference, ...geo.candidates] : geo.kind === 'points' ? geo.spots : [];
        const wholeImages = geo.kind === 'style' || geo.kind === 'similarity' || geo.kind === 'odd-one-out';
        // Each spot's token through the processor's resize and crop; a spot it cropped away fails the item.
        const cellOf = (s: Spot): number => {
          const cell = cellAt(maps[s.image]!, s.at);
          if (cell === undefined) throw new LoupeError('bad-input', `item ${itemId}: point "${s.name}" (${s.at.join(', ')}) of image ${s.image} lies outside what the model sees (the image processor crops it away)`);
          return cell;
        };

        const stack = (rows: Float32Array[], dim: number): HostTensor => {
          const data = new Float32Array(rows.length * dim);
          rows.forEach((r, i) => data.set(r, i * dim));
          return { dtype: 'float32', shape: [rows.length, dim], data };
        };
        // Feature rows per stage: one per spot, or the mean over the image's patches.
        const rowsOf = (read: (image: number, patch: number) => Float32Array, dim: number): HostTensor =>
          stack(spots.length ? spots.map((s) => read(s.image, cellOf(s))) : [meanOver(Array.from({ length: grid.rows * grid.cols }, (_, p) => read(0, p)), dim)], dim);
        const tensors: Record<string, HostTensor> = {};
        // Gram region: the 3×3 patches around the first spot, or every patch of image 0 (pooled tasks).
        const gramPatches = geo.kind === 'match' || wholeImages || !spec.gram ? [] : spots.length ? neighbourhood(cellOf(spots[0]!), grid) : Array.from({ length: grid.rows * grid.cols }, (_, p) => p);
        const gramImage = spots[0]?.image ?? 0;
        for (const stage of stages) {
          const t = res.taps[stage.tensor]!;
          const f = toFloat32(t);
          const dim = t.shape.at(-1)!;
          if (stage.name.startsWith('vision.')) {
            // [nImages, prefix + patches, dim]; the prefix (CLS) precedes the patch grid.
            const perImage = t.shape.at(-2)!;
            const prefix = perImage - grid.rows * grid.cols;
            const read = (image: number, patch: number) => f.slice((image * perImage + prefix + patch) * dim, (image * perImage + prefix + patch + 1) * dim);
            if (wholeImages) tensors[`zeroshot.${stage.name}`] = wholeImageScores(geo, (image) => patchRows(read, image, grid, dim), dim);
            else tensors[`readout.${stage.name}`] = rowsOf(read, dim);
            if (gramPatches.length) tensors[`gram.${stage.name}`] = stack(gramPatches.map((p) => read(gramImage, p)), dim);
            if (spec.cls && prefix > 0) tensors[`cls.${stage.name}`] = stack([f.slice(0, dim)], dim);
          } else {
            const position = (image: number, patch: number) => res.imageTokens.find((x) => x.image === image && x.row === Math.floor(patch / grid.cols) && x.col === patch % grid.cols)!.position;
            const read = (image: number, patch: number) => f.slice(position(image, patch) * dim, (position(image, patch) + 1) * dim);
            if (wholeImages) tensors[`zeroshot.${stage.name}`] = wholeImageScores(geo, (image) => patchRows(read, image, grid, dim), dim);
            else tensors[`readout.${stage.name}`] = rowsOf(read, dim);
            if (gramPatches.length) tensors[`gram.${stage.name}`] = stack(gramPatches.map((p) => read(gramImage, p)), dim);
          }
        }
        if (res.imageFeatures) {
          const f = toFloat32(res.imageFeatures);
          const dim = res.imageFeatures.shape.at(-1)!;
          const per = grid.prefix + grid.rows * grid.cols;
          const read = (image: number, patch: number) => f.slice((image * per + grid.prefix + patch) * dim, (image * per + grid.prefix + patch + 1) * dim);
          if (wholeImages) tensors['zeroshot.projector'] = wholeImageScores(geo, (image) => patchRows(read, image, grid, dim), dim);
          else tensors['readout.projector'] = rowsOf(read, dim);
          if (gramPatches.length) tensors['gram.projector'] = stack(gramPatches.map((p) => read(gramImage, p)), dim);
        }
        const seen = chosen(res);
        const blindAnswer = chosen(blind);
        const metrics: Record<string, number> = { correct: seen.choice === item.answer ? 1 : 0, blindCorrect: blindAnswer.choice === item.answer ? 1 : 0 };
        const values: Record<string, unknown> = { geometry: geo.kind, spots: spots.map((s) => s.name), choices: item.choices, truth: item.answer, answer: seen.choice, answerProbs: seen.probs, blind: blindAnswer.choice, blindProbs: blindAnswer.probs };
        if (spec.generate) {
          // Generation + matching: the text is kept; an answer that matches no choice counts as wrong.
          const matched = (text: string | undefined) => {
            const k = matchAnswer(text ?? '', item.choices!);
            return k === null ? null : item.choices![k]!;
          };
          const said = matched(res.generatedText);
          const blindSaid = matched(blind.generatedText);
          Object.assign(values, { generated: res.generatedText ?? '', generatedChoice: said, blindGenerated: blind.generatedText ?? '', blindGeneratedChoice: blindSaid });
          Object.assign(metrics, { generatedCorrect: said === item.answer ? 1 : 0, blindGeneratedCorrect: blindSaid === item.answer ? 1 : 0 });
        }
        return { metrics, values, tensors };
      },
    };
  }
}

/** Every patch row of one image, concatenated (the region a whole-image readout compares). */
function patchRows(read: (image: number, patch: number) => Float32Array, image: number, grid: { rows: number; cols: number }, dim: number): Float32Array {
  const n = grid.rows * grid.cols;
  const out = new Float32Array(n * dim);
  for (let p = 0; p < n; p++) out.set(read(image, p), p * dim);
  return out;
}

/**
 * One score per choice for the whole-image readouts (the highest wins): Gram-matrix cosine of the
 * reference against each option (style), cosine of mean-pooled features (similarity), or minus the
 * mean cosine of an image's pooled features to the others' (odd-one-out: the least similar wins).
 */
function wholeImageScores(geo: Geometry, rowsOf: (image: number) => Float32Array, dim: number): HostTensor {
  let scores: number[];
  if (geo.kind === 'style') {
    const ref = rowsOf(geo.reference);
    scores = geo.options.map((o) => gramCosine(ref, rowsOf(o), dim));
  } else if (geo.kind === 'similarity') {
    const ref = meanRows(rowsOf(geo.reference), dim);
    scores = geo.options.map((o) => cosine(ref, meanRows(rowsOf(o), dim)));
  } else if (geo.kind === 'odd-one-out') {
    const means = geo.options.map((o) => meanRows(rowsOf(o), dim));
    scores = means.map((m, i) => -means.reduce((s, other, j) => (j === i ? s : s + cosine(m, other)), 0) / (means.length - 1));
  } else throw new LoupeError('internal', `no whole-image readout for geometry ${geo.kind}`);
  return { dtype: 'float32', shape: [scores.length], data: Float32Array.from(scores) };
}

function meanRows(rows: Float32Array, dim: number): Float32Array {
  const n = rows.length / dim;
  const out = new Float32Array(dim);
  for (let r = 0; r < n; r++) for (let j = 0; j < dim; j++) out[j]! += rows[r * dim + j]! / n;
  return out;
}

/** Patch indices of the 3×3 window around `patch`, clipped to the grid. */
function neighbourhood(patch: number, grid: { rows: number; cols: number }): number[] {
  const r0 = Math.floor(patch / grid.cols);
  const c0 = patch % grid.cols;
  const out: number[] = [];
  for (let r = Math.max(0, r0 - 1); r <= Math.min(grid.rows - 1, r0 + 1); r++) for (let c = Math.max(0, c0 - 1); c <= Math.min(grid.cols - 1, c0 + 1); c++) out.push(r * grid.cols + c);
  return out;
}

function meanOver(rows: Float32Array[], dim: number): Float32Array {
  const out = new Float32Array(dim);
  for (const r of rows) for (let j = 0; j < dim; j++) out[j]! += r[j]! / rows.length;
  return out;
}
