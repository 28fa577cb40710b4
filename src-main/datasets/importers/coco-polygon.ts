/**
 * COCO polygons rasterised the way the COCO API does (`rleFrPoly` in cocoapi/common/maskApi.c,
 * reached through `pycocotools.mask.frPyObjects` + `merge`, i.e. `COCO.annToMask`): the outline
 * is walked at 5× resolution, the column crossings are taken back to pixel columns, and a
 * polygon list is the union of its polygons. Benchmarks score masks against that rasterisation,
 * so an imported COCO mask must have exactly its pixels; the Label view's centre-sampling fill
 * (`fillPolygon`) differs from it on a few boundary pixels of a slanted edge.
 * Written from the algorithm's description; checked against pycocotools' own output in the COCO
 * fixture (tools/benchmark-fixtures/build_coco.py → expected.json).
 */
import { rleDecode } from '../../../src-shared/dataset/mask-codec.ts';

const SCALE = 5;

/** C's `(int)(v)` for the values at hand: truncation toward zero. */
const toInt = (v: number): number => Math.trunc(v);

/** COCO RLE counts (column-major runs, zeros first) of one polygon given as flat x, y pairs. */
export function polygonRle(flat: readonly number[], width: number, height: number): number[] {
  const k = flat.length / 2;
  const xs: number[] = [];
  const ys: number[] = [];
  for (let j = 0; j <= k; j++) {
    xs.push(toInt(SCALE * flat[2 * (j % k)]! + 0.5));
    ys.push(toInt(SCALE * flat[2 * (j % k) + 1]! + 0.5));
  }
  // Dense outline points at 5× resolution, one per step along the major axis of each edge.
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let x0 = xs[j]!, x1 = xs[j + 1]!, y0 = ys[j]!, y1 = ys[j + 1]!;
    const dx = Math.abs(x1 - x0);
    const dy = Math.abs(y0 - y1);
    // Each edge is stepped from its lower end (so rounding is the same in both directions) but its
    // points are emitted in the polygon's order.
    const flip = (dx >= dy && x0 > x1) || (dx < dy && y0 > y1);
    if (flip) [x0, x1, y0, y1] = [x1, x0, y1, y0];
    if (dx >= dy) {
      const slope = (y1 - y0) / dx;
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + x0);
        v.push(toInt(y0 + slope * t + 0.5));
      }
    } else {
      const slope = (x1 - x0) / dy;
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + y0);
        u.push(toInt(x0 + slope * t + 0.5));
      }
    }
  }
  // Where the outline crosses a pixel column's centre line: the first pixel row inside from there.
  const starts: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j]! < u[j - 1]! ? u[j]! : u[j]! - 1;
    xd = (xd + 0.5) / SCALE - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > width - 1) continue;
    let yd = v[j]! < v[j - 1]! ? v[j]! : v[j - 1]!;
    yd = (yd + 0.5) / SCALE - 0.5;
    yd = Math.ceil(Math.min(Math.max(yd, 0), height));
    starts.push(xd * height + yd);
  }
  // Each crossing toggles inside/outside in column-major order; equal positions cancel out.
  starts.push(width * height);
  starts.sort((a, b) => a - b);
  const deltas = starts.map((s, j) => s - (j ? starts[j - 1]! : 0));
  const counts = [deltas[0]!];
  for (let j = 1; j < deltas.length; ) {
    if (deltas[j]! > 0) counts.push(deltas[j++]!);
    else {
      j++;
      if (j < deltas.length) counts[counts.length - 1] = counts[counts.length - 1]! + deltas[j++]!;
    }
  }
  return counts;
}

/** The row-major 0/1 mask of a COCO polygon list (the union of its polygons). */
export function polygonsMask(polygons: readonly (readonly number[])[], width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (const flat of polygons) {
    const one = rleDecode(polygonRle(flat, width, height), width, height);
    for (let i = 0; i < out.length; i++) if (one[i]) out[i] = 1;
  }
  return out;
}
