/**
 * Where to read a task out of the token grid, from an item's labels:
 *  - correspondence: the reference point in image 0 and the candidate points (a, b, …) in one other
 *    image (image 1 of a pair, the last frame of a temporal sequence);
 *  - marked points (one `point`, or `a`/`b` for relative depth) in image 0;
 *  - otherwise the whole image (mean over its patches), e.g. counting.
 */
import type { DatasetItem } from '../../../src-shared/dataset/format.ts';

export type Geometry =
  | { kind: 'match'; reference: Spot; candidates: Spot[] }
  | { kind: 'points'; spots: Spot[] }
  | { kind: 'pooled'; image: number };

export interface Spot {
  image: number;
  /** Pixel coordinates in the item's image. */
  at: [number, number];
  name: string;
}

export function geometryOf(item: DatasetItem): Geometry {
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
