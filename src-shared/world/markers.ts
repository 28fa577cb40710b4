/**
 * Point markers drawn into images, so a vision-only model can see which point a question is about.
 *
 * `point` (the single or reference point) is a white-then-black double ring with a see-through
 * 3×3 centre: the object's own colour and pattern stay visible under it. Letter markers a–d are
 * 5×5 black rings whose 3×3 centre colour names the letter; none of those centre colours is an
 * object colour except white, and that one always sits inside a black ring. Markers are drawn
 * after rendering and never touch the instance mask.
 */
import type { RGB } from './attributes.ts';

export const LETTERS = ['a', 'b', 'c', 'd'] as const;
export type Letter = (typeof LETTERS)[number];
export type MarkerKind = 'point' | Letter;

const BLACK: RGB = [0, 0, 0];
const WHITE: RGB = [255, 255, 255];
export const LETTER_FILL: Record<Letter, RGB> = {
  a: WHITE,
  b: BLACK,
  c: [255, 0, 255],
  d: [0, 255, 255],
};

/** Half width of a marker's footprint (point: 7×7, letters: 5×5). */
export function markerHalf(kind: MarkerKind): number {
  return kind === 'point' ? 3 : 2;
}

function put(rgb: Uint8Array, width: number, height: number, x: number, y: number, c: RGB): void {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  const p = (y * width + x) * 3;
  rgb[p] = c[0];
  rgb[p + 1] = c[1];
  rgb[p + 2] = c[2];
}

/** Square ring at Chebyshev distance `d` from (x, y). */
function ring(rgb: Uint8Array, width: number, height: number, x: number, y: number, d: number, c: RGB): void {
  for (let k = -d; k <= d; k++) {
    put(rgb, width, height, x + k, y - d, c);
    put(rgb, width, height, x + k, y + d, c);
    put(rgb, width, height, x - d, y + k, c);
    put(rgb, width, height, x + d, y + k, c);
  }
}

/** Draws a marker centred on pixel (x, y), in place. */
export function drawMarker(rgb: Uint8Array, width: number, height: number, x: number, y: number, kind: MarkerKind): void {
  if (kind === 'point') {
    ring(rgb, width, height, x, y, 3, WHITE);
    ring(rgb, width, height, x, y, 2, BLACK);
    return;
  }
  ring(rgb, width, height, x, y, 2, BLACK);
  const fill = LETTER_FILL[kind];
  for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) put(rgb, width, height, x + dx, y + dy, fill);
}

/** Chebyshev distance: markers with distance > half_a + half_b do not overlap. */
export function chebyshev(a: readonly [number, number], b: readonly [number, number]): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]));
}
