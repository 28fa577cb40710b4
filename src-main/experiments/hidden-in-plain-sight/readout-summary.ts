/**
 * The readout experiment's headline: accuracy of the task read out at every stage
 * (encoder layers → projector → LLM layers), against the VLM's answer and the blind answer,
 * with 95% intervals, the chance line, the shuffled-label control, and the total-variation
 * distances between the answer distributions (VLM, blind, ground truth).
 * Readouts: correspondence by cosine similarity (no training); everything else by a
 * cross-validated linear probe (features of spot a − spot b for two-spot tasks). Where the run
 * stored them, two more readouts per stage: Gram-matrix similarity of the patches around the
 * spot (style; leave-one-out nearest class mean) and a probe on the vision encoder's CLS token.
 */
import { gramVector, nearestMeanLeaveOneOut, nearestMeanShuffledAccuracy } from '../../../src-shared/metrics/gram.ts';
import { cosine, probe, totalVariation } from '../../../src-shared/metrics/probe.ts';
import { wilson } from '../../../src-shared/metrics/summary.ts';
import { presentNotSurfaced } from '../../../src-shared/metrics/present-not-surfaced.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { optionLetter } from '../../../src-shared/metrics/answer-matching.ts';
import { bootstrapTotalVariationCI } from '../../../src-shared/metrics/bootstrap.ts';
import { permutationTest } from '../../../src-shared/metrics/permutation.ts';
import { toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import type { Store } from '../../store/store.ts';

export interface StageReadout {
  stage: string;
  method: 'probe' | 'cosine' | 'gram' | 'cls';
  accuracy: number;
  low: number;
  high: number;
  /** Shuffled-label control: the readout refit once on permuted labels (probe capacity; null for readouts with nothing to fit). */
  shuffledAccuracy: number | null;
  /** Permutation test of the readout's predictions against the truth (100 permutations): p and the null mean accuracy. */
  permutationP: number;
  nullAccuracy: number;
}

export interface ReadoutSummary {
  items: number;
  choices: string[];
  chance: number;
  stages: StageReadout[];
  /** The same stages read out by the Gram-matrix and CLS readouts, where the run stored them. */
  alternatives: StageReadout[];
  answer: { accuracy: number; low: number; high: number };
  blind: { accuracy: number; low: number; high: number };
  tv: { answerVsTruth: number; blindVsTruth: number; answerVsBlind: number };
  /** Answer distributions over the choices (fractions of items): VLM, blind, ground truth. */
  distributions: { answer: number[]; blind: number[]; truth: number[] };
  /**
   * Items whose answer is wrong while a readout gets them right: the stage chosen on the other
   * half of the items, and only where it is above chance with 95% confidence (metrics/present-not-surfaced.ts).
   */
  presentNotSurfaced: string[];
  /** Flagged / wrong answers, the same rate with every readout permuted across items (no information), and each fold's chosen stage. */
  presentNotSurfacedStats: { rate: number; controlRate: number; folds: { stage: string; accuracy: number; significant: boolean }[] };
  /** 95% percentile-bootstrap intervals of the three TV distances (items resampled, metrics/bootstrap.ts). */
  tvIntervals: { answerVsTruth: [number, number]; blindVsTruth: [number, number]; answerVsBlind: [number, number] };
  /** Answers by generation + matching (spec `generate`), next to the first-token scores above; null when not generated. */
  generated: { answer: { accuracy: number; low: number; high: number }; blind: { accuracy: number; low: number; high: number }; unmatched: number; blindUnmatched: number } | null;
}

/**
 * Answers by generation + matching (spec `generate`): accuracy of the VLM and the blind baseline,
 * and how many generations matched no choice. Null when the run did not generate.
 */
function generatedSummary(
  results: { values: Record<string, unknown> }[],
  indexIn: (i: number, answer: unknown) => number,
  rate: (key: 'generatedCorrect' | 'blindGeneratedCorrect') => { accuracy: number; low: number; high: number },
): ReadoutSummary['generated'] {
  if (!results.every((r) => 'generated' in r.values)) return null;
  const unmatched = (key: string) => results.filter((r, i) => indexIn(i, r.values[key]) < 0).length;
  return { answer: rate('generatedCorrect'), blind: rate('blindGeneratedCorrect'), unmatched: unmatched('generatedChoice'), blindUnmatched: unmatched('blindGeneratedChoice') };
}

/**
 * Is a stage's readout better than its predictions' association with the truth by chance? The
 * truth is permuted across items 100 times (metrics/permutation.ts, seeded by the stage): p and the
 * null mean accuracy. Cheap (no refitting), so every stage and alternative readout gets one.
 */
function permuted(seed: string, predictions: readonly number[], truth: readonly number[]): { permutationP: number; nullAccuracy: number } {
  const accuracy = (t: readonly number[]) => predictions.filter((p, i) => p === t[i]).length / Math.max(1, t.length);
  const r = permutationTest(truth, accuracy, { permutations: 100, seed });
  return { permutationP: r.pValue, nullAccuracy: r.nullMean };
}

/** Sort key: vision layers, projector, then LLM layers, by index. */
function stageOrder(stage: string): number {
  const k = Number(/\.(\d+)$/.exec(stage)?.[1] ?? 0);
  if (stage.startsWith('vision.')) return k;
  if (stage === 'projector') return 1000;
  return 2000 + k;
}

export function readoutSummary(store: Store, runId: string): ReadoutSummary {
  return readoutAnalysis(store, runId).summary;
}

/**
 * Per item of a readout run: whether each stage's readout (and the answer, and the blind answer)
 * got it right — what paired statistics between runs (recovery intervals, McNemar) resample.
 */
export interface ReadoutPerItem {
  itemIds: string[];
  /** Stage name (and 'answer', 'blind') → 1/0 per item, in `itemIds` order. */
  correct: Map<string, Uint8Array>;
}

export function readoutAnalysis(store: Store, runId: string): { summary: ReadoutSummary; perItem: ReadoutPerItem } {
  const run = store.runs.get(runId);
  if (run.kind !== 'readout') throw new LoupeError('bad-input', `run ${runId} is a ${run.kind} run, not a readout`);
  const results = store.runs.results(runId);
  if (results.length < 5) throw new LoupeError('bad-input', `run ${runId} has ${results.length} finished items; a readout needs at least 5`);
  const items = results.map((r) => store.datasets.item(run.datasetId, r.itemId));
  // Benchmarks (BLINK, CV-Bench) word the choices per item: answers are compared by position
  // within each item's own choices, and named by letter when the wording differs across items.
  const itemChoices = items.map((it) => it.choices ?? []);
  const sameWording = itemChoices.every((c) => c.length === itemChoices[0]!.length && c.every((x, j) => x === itemChoices[0]![j]));
  const positions = Math.max(...itemChoices.map((c) => c.length));
  const choices = sameWording ? itemChoices[0]! : Array.from({ length: positions }, (_, j) => optionLetter(j));
  const indexIn = (i: number, answer: unknown) => (typeof answer === 'string' ? itemChoices[i]!.indexOf(answer) : -1);
  const truth = items.map((it, i) => indexIn(i, it.answer));
  const geometry = results[0]!.values.geometry as string;
  const wholeImages = geometry === 'style' || geometry === 'similarity' || geometry === 'odd-one-out';

  // Feature matrices per readout family ("readout", "gram", "cls") and stage, read once per item blob.
  const families = new Map<string, Map<string, Float32Array[]>>();
  const dims = new Map<string, number>();
  results.forEach((r) => {
    const blob = store.blobs.getTensors(r.tensors[0]!.blob);
    for (const meta of r.tensors) {
      const t = blob[meta.name]!;
      const [family = '', ...rest] = meta.name.split('.');
      const stage = rest.join('.');
      const byStage = families.get(family) ?? new Map<string, Float32Array[]>();
      families.set(family, byStage);
      byStage.set(stage, [...(byStage.get(stage) ?? []), toFloat32(t)]);
      dims.set(`${family}.${stage}`, t.shape.at(-1)!);
    }
  });
  const features = families.get(wholeImages ? 'zeroshot' : 'readout') ?? new Map<string, Float32Array[]>();
  const byStage = <T>(m: Map<string, T>) => [...m].sort((a, b) => stageOrder(a[0]) - stageOrder(b[0]));

  const stages: StageReadout[] = [];
  const stagePredictions = new Map<string, number[]>();
  for (const [stage, mats] of byStage(features)) {
    const dim = mats[0]!.length / (geometry === 'pooled' || wholeImages ? 1 : (results[0]!.values.spots as string[]).length);
    let predictions: number[];
    let shuffledAccuracy: number | null = null;
    if (wholeImages) {
      // Stored per item: one score per choice (readout-runner.ts wholeImageScores); the highest wins.
      predictions = mats.map((m) => m.indexOf(Math.max(...m)));
    } else if (geometry === 'match') {
      // Row 0 is the reference spot, rows 1.. the candidates: the most similar candidate is the readout.
      predictions = mats.map((m) => {
        const ref = m.subarray(0, dim);
        const sims = choices.map((_, c) => cosine(ref, m.subarray((c + 1) * dim, (c + 2) * dim)));
        return sims.indexOf(Math.max(...sims));
      });
    } else {
      const x = mats.map((m) => (geometry === 'points' && m.length === 2 * dim ? Float32Array.from(m.subarray(0, dim), (v, j) => v - m[dim + j]!) : m));
      const r = probe(x, truth, choices.length, { folds: 5 });
      predictions = r.predictions;
      shuffledAccuracy = r.shuffledAccuracy;
    }
    stagePredictions.set(stage, predictions);
    const right = predictions.filter((p, i) => p === truth[i]).length;
    const [low, high] = wilson(right, predictions.length);
    stages.push({ stage, method: geometry === 'style' ? 'gram' : geometry === 'match' || wholeImages ? 'cosine' : 'probe', accuracy: right / predictions.length, low, high, shuffledAccuracy, ...permuted(stage, predictions, truth) });
  }

  const alternatives: StageReadout[] = [];
  const score = (stage: string, method: StageReadout['method'], predictions: number[], shuffledAccuracy: number) => {
    stagePredictions.set(`${method}:${stage}`, predictions);
    const right = predictions.filter((p, i) => p === truth[i]).length;
    const [low, high] = wilson(right, predictions.length);
    alternatives.push({ stage, method, accuracy: right / predictions.length, low, high, shuffledAccuracy, ...permuted(`${method}:${stage}`, predictions, truth) });
  };
  for (const [stage, mats] of byStage(families.get('gram') ?? new Map<string, Float32Array[]>())) {
    const grams = mats.map((m) => gramVector(m, dims.get(`gram.${stage}`)!));
    score(stage, 'gram', nearestMeanLeaveOneOut(grams, truth, choices.length), nearestMeanShuffledAccuracy(grams, truth, choices.length));
  }
  for (const [stage, mats] of byStage(families.get('cls') ?? new Map<string, Float32Array[]>())) {
    const r = probe(mats, truth, choices.length, { folds: 5 });
    score(stage, 'cls', r.predictions, r.shuffledAccuracy);
  }

  const rate = (key: 'correct' | 'blindCorrect' | 'generatedCorrect' | 'blindGeneratedCorrect') => {
    const k = results.reduce((s, r) => s + (r.metrics[key] ?? 0), 0);
    const [low, high] = wilson(k, results.length);
    return { accuracy: k / results.length, low, high };
  };
  const histogram = (pick: (i: number) => number) => {
    const h = new Array<number>(choices.length).fill(0);
    results.forEach((_, i) => h[pick(i)]! += 1 / results.length);
    return h;
  };
  const answers = histogram((i) => indexIn(i, results[i]!.values.answer));
  const blinds = histogram((i) => indexIn(i, results[i]!.values.blind));
  const truths = histogram((i) => truth[i]!);
  const pns = presentNotSurfaced(stagePredictions, truth, results.map((r) => r.metrics.correct === 1), 1 / Math.max(1, choices.length));
  // TV intervals resample items (answer, blind and truth of one item stay together); −1 = no choice matched.
  const said = results.map((r, i) => indexIn(i, r.values.answer));
  const blindSaid = results.map((r, i) => indexIn(i, r.values.blind));
  const tvInterval = (a: number[], b: number[]): [number, number] => {
    const ci = bootstrapTotalVariationCI(a, b, { seed: `tv:${runId}` });
    return [ci.low, ci.high];
  };
  const perItem: ReadoutPerItem = { itemIds: results.map((r) => r.itemId), correct: new Map() };
  for (const s of stages) perItem.correct.set(s.stage, Uint8Array.from(stagePredictions.get(s.stage)!, (p, i) => (p === truth[i] ? 1 : 0)));
  perItem.correct.set('answer', Uint8Array.from(results, (r) => (r.metrics.correct === 1 ? 1 : 0)));
  perItem.correct.set('blind', Uint8Array.from(results, (r) => (r.metrics.blindCorrect === 1 ? 1 : 0)));
  const summary: ReadoutSummary = {
    items: results.length,
    choices,
    chance: 1 / Math.max(1, choices.length),
    stages,
    alternatives,
    answer: rate('correct'),
    blind: rate('blindCorrect'),
    tv: { answerVsTruth: totalVariation(answers, truths), blindVsTruth: totalVariation(blinds, truths), answerVsBlind: totalVariation(answers, blinds) },
    distributions: { answer: answers, blind: blinds, truth: truths },
    presentNotSurfaced: pns.items.map((i) => results[i]!.itemId),
    presentNotSurfacedStats: { rate: pns.rate, controlRate: pns.controlRate, folds: pns.folds },
    generated: generatedSummary(results, indexIn, rate),
    tvIntervals: { answerVsTruth: tvInterval(said, truth), blindVsTruth: tvInterval(blindSaid, truth), answerVsBlind: tvInterval(said, blindSaid) },
  };
  return { summary, perItem };
}
