/**
 * Where to read a task out of the token grid, from an item's labels:
 *  - correspondence: the reference point in image 0 and the candidate points (a, b, …) in one other
 *    image (image 1 of a pair, the last frame of a temporal sequence);
 *  - marked points (one `point`, or `a`/`b` for relative depth) in image 0;
 *  - whole-image comparisons between the item's images, read with nothing to train ("Hidden in
 *    plain sight"): `style` (image 0 is the reference, images 1..k the options; the option whose
 *    Gram matrix is most similar wins — BLINK Art_Style), `similarity` (the same with pooled
 *    features by cosine — BLINK Visual_Similarity), `odd-one-out` (k images, one per choice; the
 *    image least similar to the others wins). Chosen by `meta.readout`, or BLINK's `meta.sub_task`;
 *  - CV-Bench's 3D items (Depth, Distance) mark their objects with boxes, kept in `meta.bbox` as
 *    [x0, y0, x1, y1] per object in the order of the choices (Distance adds the reference object
 *    third): read at each box's centre, like marked points;
 *  - otherwise the whole image (mean over its patches), e.g. counting.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { DatasetItem } from '../../../src-shared/dataset/format.ts';

export type Geometry =
  | { kind: 'match'; reference: Spot; candidates: Spot[] }
  | { kind: 'points'; spots: Spot[] }
  | { kind: 'pooled'; image: number }
  | { kind: 'style' | 'similarity'; reference: number; options: number[] }
  | { kind: 'odd-one-out'; options: number[] };

/** BLINK subtasks whose readout compares whole images (the sub_task column its importer keeps in meta). */
const BLINK_IMAGE_READOUTS: Record<string, 'style' | 'similarity'> = { Art_Style: 'style', Visual_Similarity: 'similarity' };

export interface Spot {
  image: number;
  /** Pixel coordinates in the item's image. */
  at: [number, number];
  name: string;
}

export function geometryOf(item: DatasetItem): Geometry {
  const whole = wholeImageGeometry(item);
  if (whole) return whole;
  const boxed = boxSpots(item);
  if (boxed) return boxed;
  const points = item.labels.flatMap((l) => (l.kind === 'point' ? [{ image: l.image, at: l.at, name: l.name ?? '' }] : []));
  const choices = item.choices ?? [];
  const reference = points.find((p) => p.image === 0 && !choices.includes(p.name));
  // The candidates sit in one other image: image 1 for a pair, the last frame for temporal correspondence.
  const candidates = reference ? choices.map((c) => points.find((p) => p.name === c && p.image !== reference.image)).filter((p): p is Spot => !!p) : [];
  const oneTarget = new Set(candidates.map((p) => p.image)).size === 1;
  if (item.images.length >= 2 && reference && candidates.length === choices.length && candidates.length > 0 && oneTarget) return { kind: 'match', reference, candidates };
  const named = choices.map((c) => points.find((p) => p.name === c && p.image === 0)).filter((p): p is Spot => !!p);
  if (named.length === choices.length && named.length > 0) return { kind: 'points', spots: named };
  if (reference) return { kind: 'points', spots: [reference] };
  return { kind: 'pooled', image: 0 };
}

function wholeImageGeometry(item: DatasetItem): Geometry | null {
  const meta = item.meta ?? {};
  const asked = typeof meta.readout === 'string' ? meta.readout : typeof meta.sub_task === 'string' ? BLINK_IMAGE_READOUTS[meta.sub_task] : undefined;
  if (asked !== 'style' && asked !== 'similarity' && asked !== 'odd-one-out') return null;
  const k = item.choices?.length ?? 0;
  const n = item.images.length;
  if (asked === 'odd-one-out') {
    if (k < 3 || n !== k) throw new LoupeError('bad-input', `item ${item.id}: an odd-one-out readout needs one image per choice and at least 3 (it has ${n} images, ${k} choices)`);
    return { kind: 'odd-one-out', options: Array.from({ length: k }, (_, i) => i) };
  }
  if (k < 2 || n !== k + 1) throw new LoupeError('bad-input', `item ${item.id}: a ${asked} readout needs a reference image and one image per choice (it has ${n} images, ${k} choices)`);
  return { kind: asked, reference: 0, options: Array.from({ length: k }, (_, i) => i + 1) };
}

/** Box centres from CV-Bench's `meta.bbox` (one box per choice, then an optional reference), as named spots in image 0. */
function boxSpots(item: DatasetItem): Geometry | null {
  const boxes = item.meta?.bbox;
  const choices = item.choices ?? [];
  if (item.labels.some((l) => l.kind === 'point') || !Array.isArray(boxes) || choices.length < 2) return null;
  const valid = boxes.every((b) => Array.isArray(b) && b.length === 4 && b.every((v) => typeof v === 'number' && Number.isFinite(v)) && b[2] > b[0] && b[3] > b[1]);
  if (!valid || (boxes.length !== choices.length && boxes.length !== choices.length + 1)) return null;
  const spots = (boxes as [number, number, number, number][]).map(([x0, y0, x1, y1], k) => ({ image: 0, at: [(x0 + x1) / 2, (y0 + y1) / 2] as [number, number], name: choices[k] ?? 'reference' }));
  return { kind: 'points', spots };
}
