/**
 * PCK@α (percentage of correct keypoints) for semantic correspondence, as SPair-71k defines it.
 *
 * Definition (Min et al., "SPair-71k: A Large-scale Benchmark for Semantic Correspondence",
 * arXiv:1908.10543, evaluation metric PCK@α_bbox): a transferred keypoint is correct when its distance
 * to the target keypoint is within α·max(w_bbox, h_bbox), where the box is the *target* image's
 * object bounding box [x1, y1, x2, y2] (threshold = max(x2 − x1, y2 − y1), no +1; the SPair
 * devkit and every SPair loader — DHPF `data/spair.py`, CATs, DIFT, GeoAware-SC — compute it so).
 * Only keypoints visible in both images are scored (SPair's pair annotations list exactly those).
 *
 * Two aggregations are in use and papers report both, so both are here, by name:
 *  - `per-keypoint` (default; "PCK per point"): Σ correct / Σ visible keypoints over all pairs.
 *    GeoAware-SC `pck_train.py` with KPT_RESULT.
 *  - `per-image` ("PCK per image"): the fraction correct within each pair, averaged over pairs.
 *    DHPF `common/evaluation.py` `eval_kps_transfer` (pck.append(len(correct)/npt)), and
 *    GeoAware-SC without KPT_RESULT.
 * The boundary: DHPF/SPair's lineage counts a distance equal to the threshold as correct
 * (`torch.le`); GeoAware-SC uses a strict `<`. `inclusive` (default true, the SPair lineage)
 * selects; it matters only for exact ties (integer keypoints vs patch-centre predictions can tie).
 *
 * `pckImage` is the other normalisation, named so it is never confused with the SPair one:
 * α·max(image width, image height) of the target image (PF-PASCAL's "img" threshold; the
 * existing `pckCorrect` in correspondence.ts uses this one).
 */
import { LoupeError } from '../contract/errors.ts';

export type Point = readonly [number, number];
/** [x1, y1, x2, y2] in target-image pixels (SPair `trg_bndbox`). */
export type BoundingBox = readonly [number, number, number, number];

export interface KeypointMatch {
  predicted: Point;
  truth: Point;
  /** False for a keypoint not visible in both images (not scored). Default true. */
  visible?: boolean;
}

export interface PckPairInput {
  keypoints: readonly KeypointMatch[];
}

export type PckAggregation = 'per-keypoint' | 'per-image';

export interface PckOptions {
  /** 'per-keypoint' (default): Σcorrect/Σvisible; 'per-image': mean over pairs of each pair's fraction. */
  aggregation?: PckAggregation;
  /** Distance equal to the threshold counts as correct (≤, SPair/DHPF; default) or not (<, GeoAware-SC). */
  inclusive?: boolean;
}

export interface PckResult {
  pck: number;
  aggregation: PckAggregation;
  alpha: number;
  /** Correct and visible keypoints summed over pairs. */
  correct: number;
  visible: number;
  /** Pairs with at least one visible keypoint (the per-image denominator). */
  pairsScored: number;
  /** Pairs with no visible keypoint: they count in neither aggregation. */
  pairsSkipped: number;
  /** Each pair's fraction correct (NaN for a pair with no visible keypoint). */
  perPair: number[];
}

/** SPair's threshold unit: max(x2 − x1, y2 − y1) of the target box. */
export function bboxThreshold(box: BoundingBox): number {
  const w = box[2] - box[0];
  const h = box[3] - box[1];
  if (!(w >= 0 && h >= 0)) throw new LoupeError('bad-input', `bounding box [${box.join(', ')}] has x2 < x1 or y2 < y1 (expected [x1, y1, x2, y2])`);
  return Math.max(w, h);
}

/** One keypoint's verdict: ‖predicted − truth‖ against α·unit. */
export function keypointCorrect(predicted: Point, truth: Point, unit: number, alpha: number, inclusive = true): boolean {
  const d = Math.hypot(predicted[0] - truth[0], predicted[1] - truth[1]);
  const t = alpha * unit;
  return inclusive ? d <= t : d < t;
}

/** PCK with an explicit threshold unit per pair (the shared core of both normalisations). */
export function pckWithUnits(pairs: readonly PckPairInput[], units: readonly number[], alpha: number, o: PckOptions = {}): PckResult {
  if (units.length !== pairs.length) throw new LoupeError('bad-input', `PCK got ${pairs.length} pairs but ${units.length} thresholds`);
  if (!(alpha > 0)) throw new LoupeError('bad-input', `PCK α must be > 0, got ${alpha}`);
  const aggregation = o.aggregation ?? 'per-keypoint';
  const inclusive = o.inclusive ?? true;
  let correct = 0;
  let visible = 0;
  let pairsScored = 0;
  let fractionSum = 0;
  const perPair: number[] = [];
  pairs.forEach((pair, i) => {
    const unit = units[i]!;
    if (!(unit > 0)) throw new LoupeError('bad-input', `PCK pair ${i}: threshold unit must be > 0, got ${unit}`);
    let c = 0;
    let v = 0;
    for (const k of pair.keypoints) {
      if (k.visible === false) continue;
      v++;
      if (keypointCorrect(k.predicted, k.truth, unit, alpha, inclusive)) c++;
    }
    correct += c;
    visible += v;
    perPair.push(v ? c / v : NaN);
    if (v) {
      pairsScored++;
      fractionSum += c / v;
    }
  });
  const pck = aggregation === 'per-keypoint' ? (visible ? correct / visible : NaN) : pairsScored ? fractionSum / pairsScored : NaN;
  return { pck, aggregation, alpha, correct, visible, pairsScored, pairsSkipped: pairs.length - pairsScored, perPair };
}

/** PCK@α_bbox, the SPair-71k protocol: threshold α·max(w, h) of each pair's target bounding box. */
export function pckBbox(pairs: readonly (PckPairInput & { targetBox: BoundingBox })[], alpha: number, o: PckOptions = {}): PckResult {
  return pckWithUnits(pairs, pairs.map((p) => bboxThreshold(p.targetBox)), alpha, o);
}

/** PCK@α_img: threshold α·max(width, height) of each pair's target image (not SPair's protocol). */
export function pckImage(pairs: readonly (PckPairInput & { targetSize: { width: number; height: number } })[], alpha: number, o: PckOptions = {}): PckResult {
  return pckWithUnits(pairs, pairs.map((p) => Math.max(p.targetSize.width, p.targetSize.height)), alpha, o);
}
