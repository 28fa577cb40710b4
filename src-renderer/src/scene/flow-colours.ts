/**
 * Colours of the attention-flow scene, without three.js so the view's legend can import them
 * (three loads with the scene's own chunk). 0–1 RGB, as three's vertex colours take them.
 */
import { viridis } from './colormap.ts';

export const IMAGE_COLOUR = [0.36, 0.56, 0.85] as const;
export const TEXT_COLOUR = [0.92, 0.7, 0.3] as const;
export const TRACE_RGB = [1, 0.42, 0.25] as const;

/**
 * An edge's colour at t ∈ [0, 1] between the threshold (0) and the strongest edge drawn (1):
 * viridis from 0.2 up, scaled by a brightness 0.3 → 1 (edges blend additively, so strength
 * reads as brightness too). Returns 0–1 RGB.
 */
export function edgeColourAt(t: number): [number, number, number] {
  const [r, g, b] = viridis(0.2 + 0.8 * t);
  const k = (0.3 + 0.7 * t) / 255;
  return [r * k, g * k, b * k];
}

/** CSS for a colour: 0–1 RGB → `rgb(r g b)`. */
export function cssRgb(c: readonly [number, number, number] | readonly number[]): string {
  return `rgb(${c.map((x) => Math.round(255 * x)).join(' ')})`;
}

/** The edge colour scale as a CSS gradient (left = threshold, right = strongest), `stops` samples. */
export function edgeScaleGradient(stops = 9): string {
  const parts = Array.from({ length: stops }, (_, i) => i / (stops - 1)).map((t) => `${cssRgb(edgeColourAt(t))} ${(100 * t).toFixed(1)}%`);
  return `linear-gradient(90deg, ${parts.join(', ')})`;
}
