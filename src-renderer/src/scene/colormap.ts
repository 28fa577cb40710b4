/**
 * Colour maps for weights and similarities: a perceptually ordered ramp (viridis, sampled at
 * nine stops and interpolated linearly). Plain TS, no DOM: used by the scenes and the canvases.
 */

const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];

/** `t` in [0, 1] (clamped) → [r, g, b] bytes. t = 1 is exactly (253, 231, 37). */
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const a = VIRIDIS[i]!;
  const b = VIRIDIS[i + 1]!;
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

/** Maps values linearly onto [0, 1] between their min and max (all zeros when constant). */
export function normalise(values: ArrayLike<number>): Float32Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const out = new Float32Array(values.length);
  const span = hi - lo;
  if (!(span > 0)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! - lo) / span;
  return out;
}
