/**
 * Labels of the attention-flow scene: which layer each plane is and where the image and text
 * tokens sit. Pure (no three.js, no DOM) so placement is unit-tested; the scene projects the
 * anchors and moves HTML labels to them after each frame it draws (render on demand).
 *
 * Plane p holds the tokens entering LLM layer p; the edges between planes p and p + 1 are layer
 * p's attention (key on plane p → query on plane p + 1), so the last plane (p = layers) is the
 * last layer's output.
 */
import type { FlowLayout } from './flow-data.ts';

export function planeLabel(plane: number, layers: number): string {
  return plane >= layers ? `L${layers - 1} out` : `L${plane}`;
}

export interface KindAnchor {
  kind: 'image' | 'text';
  /** Layout cell coordinates (as FlowLayout.xy) of the region's top-left corner, one cell above it. */
  x: number;
  y: number;
  count: number;
}

/** One anchor per token kind present: above the top-left token of the image grid(s) and of the text rows. */
export function tokenKindAnchors(layout: FlowLayout): KindAnchor[] {
  const out: KindAnchor[] = [];
  for (const kind of ['image', 'text'] as const) {
    let minX = Infinity, maxY = -Infinity, count = 0;
    for (let p = 0; p < layout.seq; p++) {
      if ((layout.isImage[p] === 1) !== (kind === 'image')) continue;
      count++;
      minX = Math.min(minX, layout.xy[p * 2]!);
      maxY = Math.max(maxY, layout.xy[p * 2 + 1]!);
    }
    if (count) out.push({ kind, x: minX, y: maxY + 1, count });
  }
  return out;
}

/**
 * Which labels to show so none overlap: walks them in order (front plane first), keeping one
 * when its box (`width` × `height` px, anchored at its top-left) overlaps no label kept so far.
 * Off-screen labels (`null`) are never kept.
 */
export function visibleLabels(points: readonly ({ x: number; y: number } | null)[], width: number, height: number): boolean[] {
  const kept: { x: number; y: number }[] = [];
  return points.map((p) => {
    if (!p) return false;
    if (kept.some((k) => Math.abs(k.x - p.x) < width && Math.abs(k.y - p.y) < height)) return false;
    kept.push(p);
    return true;
  });
}

type Pt = { x: number; y: number };

/**
 * Which frame corner (0 top-left, 1 top-right, 2 bottom-right, 3 bottom-left) carries the plane
 * labels from this camera: the one whose projections lie farthest, on average, from the stack's
 * projected centre, so labels sit outside the cloud of edges rather than inside it. `corners[c][p]`
 * is corner c of plane p on screen (null when off-screen, which counts as no distance).
 */
export function outerCorner(corners: readonly (readonly (Pt | null)[])[], centre: Pt): number {
  let best = 0, bestD = -1;
  corners.forEach((planes, c) => {
    let sum = 0;
    for (const p of planes) if (p) sum += Math.hypot(p.x - centre.x, p.y - centre.y);
    const d = planes.length ? sum / planes.length : 0;
    if (d > bestD) [best, bestD] = [c, d];
  });
  return best;
}
