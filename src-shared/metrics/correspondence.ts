/**
 * Point correspondence from token features ("Visual representations inside the language
 * model"): the source token under a point is matched to its nearest neighbour (cosine) among
 * the target image's tokens; the prediction is that token's patch centre, correct when within
 * α·max(width, height) of the true point (PCK@α).
 *
 * Token matrices here are row-major `n × d` Float32Arrays whose row `p` is the token of
 * row-major patch `p` of a `rows × cols` grid; `unitRows` normalises them once so every cosine
 * is one dot product.
 */

import { type PixelMap, cellCentre } from '../vision/pixel-map.ts';

export type { Grid, Size } from '../vision/pixel-map.ts';
import type { Size } from '../vision/pixel-map.ts';

/** Rows scaled to unit length (an all-zero row stays zero: cosine 0 with everything). */
export function unitRows(x: ArrayLike<number>, n: number, d: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += x[i * d + j]! ** 2;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * inv;
  }
  return out;
}

/** Dot products of one d-vector with every row of an n×d matrix (cosines when both are unit). */
export function dotRows(q: ArrayLike<number>, m: Float32Array, n: number, d: number, qOffset = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * d;
    for (let j = 0; j < d; j++) s += q[qOffset + j]! * m[o + j]!;
    out[i] = s;
  }
  return out;
}

/** Index of the largest value (the first on ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** Row of `target` (unit rows) nearest by cosine to row `sourceRow` of `source` (unit rows). */
export function nearestToken(source: Float32Array, sourceRow: number, target: Float32Array, d: number): number {
  return argmax(dotRows(source, target, target.length / d, d, sourceRow * d));
}

/** PCK@α: the prediction is correct when within α·max(width, height) of the truth (inclusive). */
export function pckCorrect(predicted: [number, number], truth: [number, number], size: Size, alpha: number): boolean {
  return Math.hypot(predicted[0] - truth[0], predicted[1] - truth[1]) <= alpha * Math.max(size.width, size.height);
}

export interface PointMatch {
  /** Target patch the source token matched. */
  patch: number;
  /** Its centre in target pixels. */
  predicted: [number, number];
  correct: boolean;
  /** Fraction of the shuffled controls (target grid positions permuted) that were correct. */
  control: number;
}

/**
 * One correspondence: source token `sourcePatch` → nearest target token → its cell centre in
 * the target image (through the processor's view, pixel-map.ts) vs
 * the true target point. The control permutes which grid position each target token sits at
 * (one permutation per entry of `permutations`), so it keeps the same match but loses the
 * geometry: PCK ≫ control means the tokens carry where things are, not just that one matched.
 */
export function matchPoint(
  source: Float32Array,
  sourcePatch: number,
  target: Float32Array,
  d: number,
  targetMap: PixelMap,
  truth: [number, number],
  alpha: number,
  permutations: readonly (readonly number[])[] = [],
): PointMatch {
  const patch = nearestToken(source, sourcePatch, target, d);
  const predicted = cellCentre(targetMap, patch);
  let hits = 0;
  for (const perm of permutations) if (pckCorrect(cellCentre(targetMap, perm[patch]!), truth, targetMap.image, alpha)) hits++;
  return { patch, predicted, correct: pckCorrect(predicted, truth, targetMap.image, alpha), control: permutations.length ? hits / permutations.length : 0 };
}
