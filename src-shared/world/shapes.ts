/**
 * Shape membership tests in object-local coordinates (dx, dy from the centre, in the same units
 * as the radius r). Point sampling against these exact tests — no anti-aliasing — keeps masks
 * and colours in one-to-one agreement, which is what makes the ground truth exact.
 * Each shape's area is roughly that of the circle of radius r, so sizes compare across shapes.
 */
import type { Shape } from './attributes.ts';

const SQUARE_HALF = 0.89; // (0.89·2)² ≈ π → same area as the circle
const DIAMOND_HALF = 1.25; // 2·1.25² ≈ π
// Upward triangle: apex (0, -TRI_TOP·r), base corners (±TRI_HALF·r, TRI_BASE·r).
const TRI_TOP = 1.2;
const TRI_BASE = 0.85;
const TRI_HALF = 1.25;

export function insideShape(shape: Shape, dx: number, dy: number, r: number): boolean {
  switch (shape) {
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'square':
      return Math.abs(dx) <= SQUARE_HALF * r && Math.abs(dy) <= SQUARE_HALF * r;
    case 'diamond':
      return Math.abs(dx) + Math.abs(dy) <= DIAMOND_HALF * r;
    case 'triangle': {
      if (dy > TRI_BASE * r || dy < -TRI_TOP * r) return false;
      // Half-width grows linearly from 0 at the apex to TRI_HALF·r at the base.
      const t = (dy + TRI_TOP * r) / ((TRI_TOP + TRI_BASE) * r);
      return Math.abs(dx) <= t * TRI_HALF * r;
    }
  }
}

/** Half extents of the shape's bounding box, for culling and for keeping objects in frame. */
export function shapeExtent(shape: Shape, r: number): { left: number; right: number; top: number; bottom: number } {
  switch (shape) {
    case 'circle':
      return { left: r, right: r, top: r, bottom: r };
    case 'square':
      return { left: SQUARE_HALF * r, right: SQUARE_HALF * r, top: SQUARE_HALF * r, bottom: SQUARE_HALF * r };
    case 'diamond':
      return { left: DIAMOND_HALF * r, right: DIAMOND_HALF * r, top: DIAMOND_HALF * r, bottom: DIAMOND_HALF * r };
    case 'triangle':
      return { left: TRI_HALF * r, right: TRI_HALF * r, top: TRI_TOP * r, bottom: TRI_BASE * r };
  }
}
