/**
 * The four K/V-token probes of "Visual representations inside the language model", per item
 * and per stored LLM layer × key/value. Each returns one score per (metric, tensor) with its
 * shuffled control; index.ts averages them over the run's items.
 *
 * - segmentation: the token under the item's marker → tokens above the midpoint of mean and
 *   max similarity → IoU with the marked object's patch mask (control: segment positions shuffled).
 * - segmentation-few-shot: across items, not per item — a linear foreground/background token
 *   classifier trained on the first `shots` items' tokens with that same ground truth, mIoU on
 *   the rest (control: training labels shuffled); index.ts runs it.
 * - correspondence: pointPair a → nearest target-image token (cosine) → its patch centre;
 *   PCK@α against b (control: target grid positions shuffled).
 * - propagation: the object under pointPair a, as soft patch labels (coverage) of a's image,
 *   carried to b's image by weighted k-NN label voting (propagation.ts); J = IoU with the same
 *   object id's patch mask there (the world's per-frame masks keep an object's id across
 *   frames) (control: propagated mask shuffled).
 * - referring: mean of the referring expression's question-token vectors vs every image token
 *   (cosine) → box (boxes.ts: ≥ mean + std, peak component) → IoU with the labelled box;
 *   accuracy at IoU ≥ 0.5 and mean IoU (control: similarity map shuffled over the grid).
 */
import { join } from 'node:path';
import { KvProbe } from '../../../src-shared/contract/methods.ts';
import type { DatasetItem, Label } from '../../../src-shared/dataset/format.ts';
import { type Box, boxFromSimilarity, boxIou } from '../../../src-shared/metrics/boxes.ts';
import { dotRows, matchPoint, unitRows } from '../../../src-shared/metrics/correspondence.ts';
import { shuffle } from '../../../src-shared/metrics/probe.ts';
import { propagateMask } from '../../../src-shared/metrics/propagation.ts';
import { iou, patchMask, segmentBySimilarity } from '../../../src-shared/metrics/segmentation.ts';
import { type Grid, type PixelMap, type Size, cellAt, cellCoverage, mapForRaster } from '../../../src-shared/vision/pixel-map.ts';
import { type InstanceMask, idAt, imageSize, readMask } from './images.ts';
import { type ItemTokens, type KvKind, gatherTokens, kvTensors } from './tokens.ts';

export const PROBES = KvProbe.options;

/*
 * Metric names say what is computed, which is not yet the papers' protocols (issue 22): the
 * marked object's IoU on the token grid per item (not class-wise mIoU), PCK normalised by the
 * image size with one keypoint per item (not SPair's bounding box over all keypoints), region J
 * of one propagation hop (no boundary F, not every frame).
 */
export const SEGMENTATION_METRIC = 'object IoU on the token grid';
export const correspondenceMetric = (alpha: number) => `PCK@${alpha} (image size, 1 point)`;
export const propagationMetric = (k: number) => `J region, 1 hop (k=${k})`;
export type Probe = (typeof PROBES)[number];

export interface Score {
  probe: Probe;
  metric: string;
  layer: number;
  kind: KvKind;
  value: number;
  control: number;
}

export interface ProbeOptions {
  /** PCK threshold as a fraction of max(width, height). */
  alpha: number;
  /** Neighbours voting in mask propagation. */
  k: number;
  /** Shuffled controls per score. */
  seeds: number;
  /** Training items of the few-shot segmentation probe (the run's first items in order). */
  shots: number;
}

/** An item with lazily read image sizes and masks. */
export class ProbeItem {
  readonly item: DatasetItem;
  readonly tokens: ItemTokens;
  private readonly root: string;
  private readonly view: (image: Size, grid: Grid) => PixelMap;
  private readonly maps = new Map<number, PixelMap>();
  private readonly masks = new Map<string, InstanceMask>();

  /** `view`: the model's pixel → token map for an image of a size (engine/vlm/pixel-maps.ts). */
  constructor(item: DatasetItem, tokens: ItemTokens, datasetRoot: string, view: (image: Size, grid: Grid) => PixelMap) {
    this.item = item;
    this.tokens = tokens;
    this.root = datasetRoot;
    this.view = view;
  }

  /** Where image `image`'s pixels land on its token grid; undefined when the run captured no tokens of it. */
  map(image: number): PixelMap | undefined {
    let m = this.maps.get(image);
    const tokens = this.tokens.images.get(image);
    if (!m && tokens) this.maps.set(image, (m = this.view(imageSize(join(this.root, this.item.images[image]!)), tokens.grid)));
    return m;
  }

  mask(label: Extract<Label, { kind: 'mask' }>): InstanceMask {
    let m = this.masks.get(label.file);
    if (!m) this.masks.set(label.file, (m = readMask(join(this.root, label.file))));
    return m;
  }

  maskLabel(image: number): Extract<Label, { kind: 'mask' }> | undefined {
    return this.item.labels.find((l): l is Extract<Label, { kind: 'mask' }> => l.kind === 'mask' && l.image === image);
  }

  pointPair(): Extract<Label, { kind: 'pointPair' }> | undefined {
    const pairs = this.item.labels.filter((l): l is Extract<Label, { kind: 'pointPair' }> => l.kind === 'pointPair');
    return pairs.find((p) => p.name === 'match') ?? pairs[0];
  }
}

/** `seeds` permutations of 0…n−1 (the shuffled controls), the same for every item. */
export function permutations(n: number, seeds: number): number[][] {
  return Array.from({ length: seeds }, (_, s) =>
    shuffle(
      Array.from({ length: n }, (_, i) => i),
      17 + s,
    ),
  );
}

const meanOver = (n: number, f: (s: number) => number) => {
  let sum = 0;
  for (let s = 0; s < n; s++) sum += f(s);
  return n ? sum / n : 0;
};

/**
 * Zero-shot segmentation of the marked object in image 0: the first mask label on image 0 and
 * the first point on image 0 that lies on an instance the mask lists (any instance when it lists
 * none) — e.g. the referring set's marker on the referred object, not marker a.
 */
export function segmentationScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const t = segmentationTarget(p);
  if (!t) return [];
  const { truth, query, n } = t;
  return p.tokens.kv.map(({ name, layer, kind }) => {
    const d = p.tokens.width(name);
    const u = p.tokens.unit(name, 0);
    const seg = segmentBySimilarity(dotRows(u, u, n, d, query * d));
    return { probe: 'segmentation', metric: SEGMENTATION_METRIC, layer, kind, value: iou(seg, truth), control: meanOver(o.seeds, (s) => iou(shuffle(seg, 17 + s), truth)) };
  });
}

/**
 * The segmentation probes' ground truth: the patch mask (image 0's grid) of the marked object,
 * and the patch under the marker; null when the item has no such object or image-0 tokens.
 */
export function segmentationTarget(p: ProbeItem): { truth: boolean[]; query: number; n: number } | null {
  const label = p.maskLabel(0);
  const tokens = p.tokens.images.get(0);
  if (!label || !tokens) return null;
  const mask = p.mask(label);
  const points = p.item.labels.filter((l): l is Extract<Label, { kind: 'point' }> => l.kind === 'point' && l.image === 0);
  const point = points.find((l) => (label.ids ? label.ids.includes(idAt(mask, l.at)) : idAt(mask, l.at) !== 0));
  if (!point) return null;
  // The marked object: the instance under the marker (masks may list several objects).
  const target = new Set([idAt(mask, point.at)]);
  const map = p.map(0)!;
  const query = cellAt(map, point.at);
  if (query === undefined) return null; // the processor cropped the marker away
  const truth = patchMask(mapForRaster(map, mask), mask.ids, target);
  return { truth, query, n: map.rows * map.cols };
}

/** PCK@α of pointPair a → b by the nearest target token. */
export function correspondenceScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const pair = p.pointPair();
  const src = pair && p.tokens.images.get(pair.a.image);
  const dst = pair && p.tokens.images.get(pair.b.image);
  if (!pair || !src || !dst) return [];
  const sourcePatch = cellAt(p.map(pair.a.image)!, pair.a.at);
  if (sourcePatch === undefined) return []; // the processor cropped the source point away
  const mapB = p.map(pair.b.image)!;
  const perms = permutations(dst.grid.rows * dst.grid.cols, o.seeds);
  return p.tokens.kv.map(({ name, layer, kind }) => {
    const m = matchPoint(p.tokens.unit(name, pair.a.image), sourcePatch, p.tokens.unit(name, pair.b.image), p.tokens.width(name), mapB, pair.b.at, o.alpha, perms);
    return { probe: 'correspondence', metric: correspondenceMetric(o.alpha), layer, kind, value: m.correct ? 1 : 0, control: m.control };
  });
}

/**
 * Mask propagation from pointPair a's image to b's image. Items are skipped when the object
 * covers no whole patch (more than half a patch) in either image: J is then undefined.
 */
export function propagationScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const pair = p.pointPair();
  if (!pair || pair.a.image === pair.b.image) return [];
  const src = p.tokens.images.get(pair.a.image);
  const dst = p.tokens.images.get(pair.b.image);
  const la = p.maskLabel(pair.a.image);
  const lb = p.maskLabel(pair.b.image);
  if (!src || !dst || !la || !lb) return [];
  const ma = p.mask(la);
  const mb = p.mask(lb);
  const id = idAt(ma, pair.a.at);
  if (id === 0) return [];
  const object = new Set([id]);
  const sourceLabels = cellCoverage(mapForRaster(p.map(pair.a.image)!, ma), ma.ids, object);
  const truth = patchMask(mapForRaster(p.map(pair.b.image)!, mb), mb.ids, object);
  if (!sourceLabels.some((c) => c > 0.5) || !truth.some(Boolean)) return [];
  return p.tokens.kv.map(({ name, layer, kind }) => {
    const pred = propagateMask(p.tokens.unit(name, pair.a.image), sourceLabels, p.tokens.unit(name, pair.b.image), p.tokens.width(name), { k: o.k });
    return { probe: 'propagation', metric: propagationMetric(o.k), layer, kind, value: iou(pred, truth), control: meanOver(o.seeds, (s) => iou(shuffle(pred, 17 + s), truth)) };
  });
}

const norm = (w: string) => w.toLowerCase().replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');

/** Word range [start, end) of `expression` inside `words` (last occurrence; case and edge punctuation ignored), or null. */
export function expressionSpan(words: readonly string[], expression: string): [number, number] | null {
  const e = expression.trim().split(/\s+/).map(norm).filter(Boolean);
  const w = words.map(norm);
  if (!e.length) return null;
  for (let i = w.length - e.length; i >= 0; i--) if (e.every((x, j) => w[i + j] === x)) return [i, i + e.length];
  return null;
}

/** The referring label: a box with the expression as its text. */
export function referringLabel(item: DatasetItem): Extract<Label, { kind: 'box' }> | undefined {
  return item.labels.find((l): l is Extract<Label, { kind: 'box' }> => l.kind === 'box' && !!l.text?.trim());
}

/** Referring expression → box from the text–image similarity map (needs taps.promptKV). */
export function referringScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const box = referringLabel(p.item);
  const tokens = box && p.tokens.images.get(box.image);
  const map = p.tokens.tensors.prompt_token_map?.data as Int32Array | undefined;
  if (!box || !tokens || !map || !p.item.prompt) return [];
  const words = p.item.prompt.trim().split(/\s+/).filter(Boolean);
  const span = expressionSpan(words, box.text!);
  if (!span) return [];
  const rows = Array.from({ length: map.length / 3 }, (_, r) => r).filter((r) => map[r * 3 + 2]! >= span[0] && map[r * 3 + 2]! < span[1]);
  if (!rows.length) return [];
  const view = p.map(box.image)!;
  const n = view.rows * view.cols;
  const perms = permutations(n, o.seeds);
  const out: Score[] = [];
  for (const t of kvTensors(p.tokens.tensors, 'prompt')) {
    const imageName = `image_kv.${t.layer}.${t.kind}`;
    if (!p.tokens.tensors[imageName]) continue;
    const d = p.tokens.width(imageName);
    const text = gatherTokens(p.tokens.tensors[t.name]!, rows);
    const mean = new Float32Array(d);
    for (let r = 0; r < rows.length; r++) for (let j = 0; j < d; j++) mean[j]! += text[r * d + j]! / rows.length;
    const sims = dotRows(unitRows(mean, 1, d), p.tokens.unit(imageName, box.image), n, d);
    const scoreOf = (s: ArrayLike<number>) => boxIou(boxFromSimilarity(s, view), box.box as Box);
    const value = scoreOf(sims);
    const controls = perms.map((perm) => scoreOf(Float64Array.from(perm, (i) => sims[i]!)));
    const control = controls.reduce((s, x) => s + x, 0) / (controls.length || 1);
    const hitControl = controls.filter((x) => x >= 0.5).length / (controls.length || 1);
    out.push({ probe: 'referring', metric: 'acc@IoU≥0.5', layer: t.layer, kind: t.kind, value: value >= 0.5 ? 1 : 0, control: hitControl });
    out.push({ probe: 'referring', metric: 'mean box IoU', layer: t.layer, kind: t.kind, value, control });
  }
  return out;
}
