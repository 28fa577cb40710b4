/** Segmentation metrics on patch grids: IoU of boolean masks, and a patch-level ground truth. */

import { type PixelMap, cellCoverage } from '../vision/pixel-map.ts';

/** Intersection over union of two boolean masks of equal length (1 when both are empty). */
export function iou(a: ArrayLike<boolean | number>, b: ArrayLike<boolean | number>): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = !!a[i];
    const y = !!b[i];
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * A pixel mask (instance ids, row-major, at the image's size) → per-cell foreground on the
 * model's token grid (through the processor's view): a cell is foreground when more than half
 * its pixels belong to `target`.
 */
export function patchMask(map: PixelMap, ids: ArrayLike<number>, target: ReadonlySet<number>): boolean[] {
  return Array.from(cellCoverage(map, ids, target), (f) => f > 0.5);
}

/**
 * Zero-shot segment: tokens whose similarity to the query is above the midpoint between the
 * mean similarity and the maximum (the query itself) — objects are a small part of the image,
 * so "above the mean" alone would take in half the background.
 */
export function segmentBySimilarity(sims: ArrayLike<number>): boolean[] {
  let mean = 0;
  let max = -Infinity;
  for (let i = 0; i < sims.length; i++) {
    mean += sims[i]! / sims.length;
    max = Math.max(max, sims[i]!);
  }
  const threshold = (mean + max) / 2;
  return Array.from(sims, (s) => s >= threshold);
}
