/**
 * Co-segmentation from image K/V tokens ("Visual representations inside the language model",
 * MSRC protocol: segment the object common to a set of images of one class, with no label, by
 * clustering the images' value tokens). The paper states only "spatial clustering" of the
 * tokens; Loupe's rule is simple, deterministic and written out here:
 *
 * 1. The set: an item's images that carry a mask label *named* by class (`<class>` of
 *    `<class>/<part>`); ≥ 2 such images with captured tokens, all naming one class.
 * 2. Per K/V tensor, every token of every image of the set (unit rows, cosine geometry) goes into
 *    one spherical 2-means: seeds = the token least similar to the mean token (an outlier, likely
 *    object) and then the token least similar to that seed; Lloyd steps (assign by the larger dot
 *    product, ties → cluster 0; centroid = normalised mean; an emptied cluster keeps its centroid)
 *    until no token moves or 100 steps.
 * 3. The common object's cluster: the one that recurs in more images of the set (≥ 1 token in the
 *    image); ties → the one holding the smaller share of grid-border tokens (the background
 *    prior: objects of interest rarely fill the frame edge); ties → the smaller cluster; → 0.
 * 4. Its cells → pixels of each image through the pixel → token map (pixels.ts), scored against
 *    the named mask's pixels (its ids, or every non-zero id when it lists none) by
 *    `cosegmentationScores` (Rubinstein et al. 2013: per image Jaccard J and precision P),
 *    summed as `J:<class>`, `P:<class>`, `n:<class>` so the figure is the mean over classes of
 *    the class's mean over images (statistics.ts `classMeanOf`).
 *
 * Control s: each image's predicted cells permuted over its grid with permutation s.
 */
import type { Label } from '../../../src-shared/dataset/format.ts';
import { cosegmentationScores } from '../../../src-shared/metrics/miou.ts';
import { cellsToPixels } from './pixels.ts';
import { type ProbeItem, type ProbeOptions, type Score, maskClass, permutations } from './probes.ts';
import { type Stat, classMeanOf } from './statistics.ts';

export const COSEGMENTATION_METRICS = { j: 'Jaccard J (co-segmentation, pixels)', p: 'precision P (co-segmentation, pixels)' } as const;

type MaskLabel = Extract<Label, { kind: 'mask' }>;

/** The item's images with a mask label that names a class: candidates for a co-segmentation set. */
export function namedMasks(p: ProbeItem): { image: number; label: MaskLabel }[] {
  return p.item.images.flatMap((_, image) => {
    const label = p.maskLabel(image);
    return label?.name?.trim() ? [{ image, label }] : [];
  });
}

/** Why an item with ≥ 2 named masks is no co-segmentation set, or null when it is one. */
export function cosegmentationSkip(p: ProbeItem): string | null {
  const masks = namedMasks(p);
  const classes = [...new Set(masks.map((m) => maskClass(m.label)))];
  if (classes.length > 1) return `its masks name different classes (${classes.join(', ')}); a co-segmentation set is one class`;
  const missing = masks.find((m) => !p.tokens.images.get(m.image));
  if (missing) return `image ${missing.image} has no captured tokens`;
  return null;
}

/** Spherical 2-means of unit rows `x` (n × d) with the seeding and steps of the header; returns each row's cluster. */
export function twoMeans(x: Float32Array, n: number, d: number): Uint8Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]!;
  const dot = (c: ArrayLike<number>, i: number) => {
    let s = 0;
    for (let j = 0; j < d; j++) s += c[j]! * x[i * d + j]!;
    return s;
  };
  const argminDot = (c: ArrayLike<number>) => {
    let best = 0;
    let bestDot = Infinity;
    for (let i = 0; i < n; i++) {
      const s = dot(c, i);
      if (s < bestDot) [best, bestDot] = [i, s];
    }
    return best;
  };
  const a = argminDot(mean);
  const b = argminDot(x.subarray(a * d, (a + 1) * d));
  const centroids = [Float64Array.from(x.subarray(a * d, (a + 1) * d)), Float64Array.from(x.subarray(b * d, (b + 1) * d))];
  const assign = new Uint8Array(n).fill(255);
  for (let step = 0; step < 100; step++) {
    let moved = false;
    for (let i = 0; i < n; i++) {
      const k = dot(centroids[1]!, i) > dot(centroids[0]!, i) ? 1 : 0;
      if (assign[i] !== k) [assign[i], moved] = [k, true];
    }
    if (!moved) break;
    for (let k = 0; k < 2; k++) {
      const c = new Float64Array(d);
      let count = 0;
      for (let i = 0; i < n; i++) {
        if (assign[i] !== k) continue;
        count++;
        for (let j = 0; j < d; j++) c[j]! += x[i * d + j]!;
      }
      if (!count) continue;
      const norm = Math.sqrt(c.reduce((s, v) => s + v * v, 0));
      if (norm > 0) centroids[k] = c.map((v) => v / norm);
    }
  }
  return assign;
}

/** The common object's cluster (rule 3 of the header) over images given as grids of cluster labels. */
export function commonCluster(images: readonly { labels: ArrayLike<number>; rows: number; cols: number }[]): 0 | 1 {
  const recur = [0, 0];
  const border = [0, 0];
  const size = [0, 0];
  for (const { labels, rows, cols } of images) {
    const present = [false, false];
    for (let c = 0; c < rows * cols; c++) {
      const k = labels[c]!;
      present[k] = true;
      size[k]!++;
      const [r, col] = [Math.floor(c / cols), c % cols];
      if (r === 0 || col === 0 || r === rows - 1 || col === cols - 1) border[k]!++;
    }
    for (let k = 0; k < 2; k++) if (present[k]) recur[k]!++;
  }
  if (recur[0] !== recur[1]) return recur[1]! > recur[0]! ? 1 : 0;
  if (border[0] !== border[1]) return border[1]! < border[0]! ? 1 : 0;
  return size[1]! < size[0]! ? 1 : 0;
}

export function cosegmentationProbeScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const masks = namedMasks(p);
  if (masks.length < 2 || cosegmentationSkip(p) !== null) return [];
  const className = maskClass(masks[0]!.label);
  const sets = masks.map(({ image, label }) => {
    const m = p.mask(label);
    const ids = label.ids ? new Set(label.ids) : null;
    const grid = p.tokens.images.get(image)!.grid;
    return { image, rows: grid.rows, cols: grid.cols, n: grid.rows * grid.cols, truth: Uint8Array.from(m.ids, (v) => (ids ? (ids.has(v) ? 1 : 0) : v !== 0 ? 1 : 0)), cells: p.pixelCells(image, m) };
  });
  const statOf = (segments: ArrayLike<number>[]): Stat => {
    const r = cosegmentationScores(sets.map((s, k) => ({ className, truth: s.truth, predicted: cellsToPixels(segments[k]!, s.cells) })));
    return { [`J:${className}`]: r.perImage.reduce((a, x) => a + x.jaccard, 0), [`P:${className}`]: r.perImage.reduce((a, x) => a + x.precision, 0), [`n:${className}`]: r.perImage.length };
  };
  const out: Score[] = [];
  for (const { name, layer, kind } of p.kv(o)) {
    const d = p.tokens.width(name);
    const total = sets.reduce((a, s) => a + s.n, 0);
    const x = new Float32Array(total * d);
    let at = 0;
    for (const s of sets) {
      x.set(p.tokens.unit(name, s.image), at * d);
      at += s.n;
    }
    const labels = twoMeans(x, total, d);
    const grids: Uint8Array[] = [];
    at = 0;
    for (const s of sets) {
      grids.push(labels.subarray(at, at + s.n));
      at += s.n;
    }
    const fg = commonCluster(grids.map((labels, k) => ({ labels, rows: sets[k]!.rows, cols: sets[k]!.cols })));
    const segments = grids.map((g) => Uint8Array.from(g, (k) => (k === fg ? 1 : 0)));
    const stat = statOf(segments);
    const nulls = Array.from({ length: o.permutations }, (_, s) => statOf(segments.map((seg, k) => permutations(sets[k]!.n, o.permutations)[s]!.map((c) => seg[c]!))));
    out.push({ probe: 'cosegmentation', metric: COSEGMENTATION_METRICS.j, layer, kind, stat, nulls, finish: classMeanOf('J') });
    out.push({ probe: 'cosegmentation', metric: COSEGMENTATION_METRICS.p, layer, kind, stat, nulls, finish: classMeanOf('P') });
  }
  return out;
}
