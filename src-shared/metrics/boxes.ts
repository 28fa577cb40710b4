/**
 * Boxes for referring-expression grounding: a similarity map on the patch grid → a region →
 * its bounding box in pixels, scored by box IoU against the ground truth.
 *
 * The region is the patches whose similarity is at least mean + one standard deviation of the
 * map (a per-map threshold, so it does not depend on the scale of the similarities), reduced
 * to the 4-connected component that holds the peak: a referring expression names one object,
 * and the bounding box of every above-threshold patch would join it to look-alike distractors
 * anywhere in the image. The peak is always in the region (the threshold is capped at the
 * maximum), so the box is never empty.
 */
import { type Grid, type PixelMap, cellBounds } from '../vision/pixel-map.ts';

/** [x0, y0, x1, y1] in pixels, x1/y1 exclusive (the dataset format's box). */
export type Box = [number, number, number, number];

/** Intersection over union of two boxes (0 when either is empty and they do not overlap). */
export function boxIou(a: Box, b: Box): number {
  const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = iw * ih;
  const area = (x: Box) => Math.max(0, x[2] - x[0]) * Math.max(0, x[3] - x[1]);
  const union = area(a) + area(b) - inter;
  return union > 0 ? inter / union : 0;
}

/** Patches at or above min(max, mean + std) of the map, kept to the 4-connected component of the peak. */
export function regionFromSimilarity(sims: ArrayLike<number>, grid: Grid): boolean[] {
  const n = grid.rows * grid.cols;
  if (sims.length !== n) throw new Error(`similarity map has ${sims.length} values for a ${grid.rows}×${grid.cols} grid`);
  let mean = 0;
  let peak = 0;
  for (let i = 0; i < n; i++) {
    mean += sims[i]! / n;
    if (sims[i]! > sims[peak]!) peak = i;
  }
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (sims[i]! - mean) ** 2 / n;
  const threshold = Math.min(sims[peak]!, mean + Math.sqrt(variance));
  const region = new Array<boolean>(n).fill(false);
  const stack = [peak];
  region[peak] = true;
  while (stack.length) {
    const p = stack.pop()!;
    const r = Math.floor(p / grid.cols);
    const c = p % grid.cols;
    for (const [rr, cc] of [
      [r - 1, c],
      [r + 1, c],
      [r, c - 1],
      [r, c + 1],
    ] as const) {
      if (rr < 0 || cc < 0 || rr >= grid.rows || cc >= grid.cols) continue;
      const q = rr * grid.cols + cc;
      if (!region[q] && sims[q]! >= threshold) {
        region[q] = true;
        stack.push(q);
      }
    }
  }
  return region;
}

/** Bounding box in original-image pixels of a cell region, through the processor's view (null when the region is empty). */
export function boxOfRegion(region: ArrayLike<boolean | number>, map: PixelMap): Box | null {
  const grid = map;
  let r0 = Infinity;
  let c0 = Infinity;
  let r1 = -1;
  let c1 = -1;
  for (let p = 0; p < grid.rows * grid.cols; p++) {
    if (!region[p]) continue;
    const r = Math.floor(p / grid.cols);
    const c = p % grid.cols;
    r0 = Math.min(r0, r);
    c0 = Math.min(c0, c);
    r1 = Math.max(r1, r);
    c1 = Math.max(c1, c);
  }
  if (r1 < 0) return null;
  const [x0, y0] = cellBounds(map, r0 * grid.cols + c0);
  const [, , x1, y1] = cellBounds(map, r1 * grid.cols + c1);
  return [x0, y0, x1, y1];
}

/** Similarity map on the grid → predicted box in original-image pixels (see the module comment for the region rule). */
export function boxFromSimilarity(sims: ArrayLike<number>, map: PixelMap): Box {
  return boxOfRegion(regionFromSimilarity(sims, map), map)!;
}
