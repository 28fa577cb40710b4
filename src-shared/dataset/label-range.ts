/**
 * Whether a label's coordinates lie on its image. Coordinates are image pixels (x right, y down,
 * format.ts): a point must fall on a pixel (0 ≤ x < width, 0 ≤ y < height), a box
 * [x0, y0, x1, y1] (x1/y1 exclusive) must be non-empty and within 0…width × 0…height, polygon
 * vertices within 0…width × 0…height. Nothing is clamped: a label off its image is refused with
 * the reason, since a clamped label silently says something its author did not.
 */
import type { Label } from './format.ts';

export interface ImageDims {
  width: number;
  height: number;
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

function pointProblem(at: readonly [number, number], d: ImageDims, what: string): string | null {
  const [x, y] = at;
  if (x >= 0 && y >= 0 && x < d.width && y < d.height) return null;
  return `${what} (${fmt(x)}, ${fmt(y)}) lies outside the ${d.width}×${d.height} image (0 ≤ x < ${d.width}, 0 ≤ y < ${d.height})`;
}

/**
 * The reason `label` does not fit its image(s), or null when it does. `dims(i)` is the size of the
 * item's image #i, undefined when the item has no such image.
 */
export function labelRangeProblem(label: Label, dims: (image: number) => ImageDims | undefined, imageCount: number): string | null {
  const imageOf = (i: number): ImageDims | string => {
    if (i >= imageCount) return `image #${i} does not exist (the item has ${imageCount} image${imageCount === 1 ? '' : 's'})`;
    return dims(i) ?? `the size of image #${i} is unknown`;
  };
  switch (label.kind) {
    case 'class':
      return null;
    case 'point': {
      const d = imageOf(label.image);
      return typeof d === 'string' ? d : pointProblem(label.at, d, 'point');
    }
    case 'pointPair': {
      for (const [end, p] of [['a', label.a], ['b', label.b]] as const) {
        const d = imageOf(p.image);
        const problem = typeof d === 'string' ? d : pointProblem(p.at, d, `point ${end} on image #${p.image}`);
        if (problem) return problem;
      }
      return null;
    }
    case 'box': {
      const d = imageOf(label.image);
      if (typeof d === 'string') return d;
      const [x0, y0, x1, y1] = label.box;
      if (!(x0 < x1 && y0 < y1)) return `box [${label.box.map(fmt).join(', ')}] is empty or inverted (x0 < x1 and y0 < y1 expected)`;
      if (x0 < 0 || y0 < 0 || x1 > d.width || y1 > d.height) return `box [${label.box.map(fmt).join(', ')}] leaves the ${d.width}×${d.height} image (0 ≤ x0 < x1 ≤ ${d.width}, 0 ≤ y0 < y1 ≤ ${d.height})`;
      return null;
    }
    case 'mask': {
      const d = imageOf(label.image);
      if (typeof d === 'string') return d;
      for (const poly of label.polygons ?? []) {
        for (const [x, y] of poly) {
          if (x < 0 || y < 0 || x > d.width || y > d.height) return `polygon vertex (${fmt(x)}, ${fmt(y)}) lies outside the ${d.width}×${d.height} image`;
        }
      }
      return null;
    }
  }
}
