/**
 * Pixels for the image overlays (MaskOverlay, HeatmapOverlay): pure RGBA builders (no DOM, so
 * unit tests and Node type-checking can import them; the canvas painter is in paint.ts). Overlay pixels are opaque where something is drawn and fully transparent
 * elsewhere; the overlay's see-through-ness is CSS opacity, so a canvas read-back gives the
 * exact colours (what the e2e tests check) while the user sees the image through them.
 */
import { viridis } from '../scene/colormap.ts';

export type Rgb = readonly [number, number, number];

/** Twelve distinct hues (Tableau-like), cycled by instance id. */
const PALETTE: readonly Rgb[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75],
  [227, 119, 194], [188, 189, 34], [23, 190, 207], [255, 187, 120], [152, 223, 138], [255, 152, 150],
];

/** Colour of instance id `id` (≥ 1); id 1 is the first palette colour. */
export function instanceColour(id: number): Rgb {
  return PALETTE[(((Math.round(id) - 1) % PALETTE.length) + PALETTE.length) % PALETTE.length]!;
}

/** RGBA of an instance-id map: `colour(id)` where id ≠ 0 and the colour is not null, transparent elsewhere. */
export function maskRgba(ids: ArrayLike<number>, colour: (id: number) => Rgb | null = instanceColour): Uint8ClampedArray<ArrayBuffer> {
  const out = new Uint8ClampedArray(ids.length * 4);
  const cache = new Map<number, Rgb | null>();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (id === 0) continue;
    let c = cache.get(id);
    if (c === undefined) cache.set(id, (c = colour(id)));
    if (!c) continue;
    out[i * 4] = c[0];
    out[i * 4 + 1] = c[1];
    out[i * 4 + 2] = c[2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * Which pixels of an instance-id map lie on an instance's edge: non-zero pixels with a
 * 4-neighbour of another id (background included) or on the image's border, so every outline is
 * closed. Drawing only these leaves the object's own pixels, and so its colours, untouched.
 */
export function outlineOf(ids: ArrayLike<number>, width: number, height: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const id = ids[i]!;
      if (id === 0) continue;
      const edge = x === 0 || y === 0 || x === width - 1 || y === height - 1 || ids[i - 1] !== id || ids[i + 1] !== id || ids[i - width] !== id || ids[i + width] !== id;
      if (edge) out[i] = 1;
    }
  return out;
}

/** RGBA of the instances' outlines only (outlineOf), each in its colour; transparent elsewhere. */
export function outlineRgba(ids: ArrayLike<number>, width: number, height: number, colour: (id: number) => Rgb | null = instanceColour): Uint8ClampedArray<ArrayBuffer> {
  const edge = outlineOf(ids, width, height);
  return maskRgba(Array.from(ids, (id, i) => (edge[i] ? id : 0)), colour);
}

/**
 * RGBA of a heatmap: each value mapped linearly from [lo, hi] (default: the values' min and
 * max; all at the bottom of the ramp when constant) through the colour map (viridis). Values
 * below `clearBelow` (after normalising) are left transparent.
 */
export function heatmapRgba(
  values: ArrayLike<number>,
  opts: { lo?: number; hi?: number; clearBelow?: number; colormap?: (t: number) => readonly [number, number, number] } = {},
): Uint8ClampedArray<ArrayBuffer> {
  let lo = opts.lo ?? Infinity;
  let hi = opts.hi ?? -Infinity;
  if (opts.lo === undefined || opts.hi === undefined) {
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (opts.lo === undefined && v < lo) lo = v;
      if (opts.hi === undefined && v > hi) hi = v;
    }
  }
  const map = opts.colormap ?? viridis;
  const out = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) {
    const t = hi > lo ? (values[i]! - lo) / (hi - lo) : 0;
    if (opts.clearBelow !== undefined && t < opts.clearBelow) continue;
    const [r, g, b] = map(t);
    out[i * 4] = r;
    out[i * 4 + 1] = g;
    out[i * 4 + 2] = b;
    out[i * 4 + 3] = 255;
  }
  return out;
}
