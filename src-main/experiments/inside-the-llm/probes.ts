/**
 * The K/V-token probes of "Visual representations inside the language model", scored with the
 * benchmarks' own metrics at pixel resolution where the protocol is pixel-level (token-grid
 * predictions go back to pixels through the pixel → token map, pixels.ts). Each scorer returns,
 * per (metric, LLM layer, key/value), the item's contribution to the figure as summable counts
 * and the same counts under each of the ≥ 20 shuffled controls (statistics.ts turns them into
 * value, bootstrap interval, null mean and permutation p).
 *
 * - segmentation (zero-shot, marker): the token under the item's marker → tokens above the
 *   midpoint of mean and max similarity → pixels → class-wise mIoU (Pascal-5i convention:
 *   foreground classes only, per class ΣI/ΣU over the dataset, classes from the mask label's
 *   name, `<class>/<part>` counted as `<class>`, unnamed = "object"). Control: the segment's
 *   cells permuted.
 * - segmentation-few-shot: a linear token classifier trained on the first `shots` items (index.ts
 *   via fewShotScores), class-wise mIoU of the rest; controls: classifiers trained on permuted
 *   training labels.
 * - correspondence (SPair-71k): every pointPair between the item's two images is a keypoint;
 *   source token under it → nearest target token (cosine) → its cell centre; PCK@α_bbox with the
 *   target image's box (pck.ts; SPair's `trg_bndbox`), per keypoint and per image, for each α.
 *   Items without a target box are normalised by the target image size and named so. A source
 *   keypoint the processor cropped away counts as wrong. Control: target cells permuted.
 * - propagation (DAVIS-2017): items with an instance mask on every frame (≥ 3 frames) — frame
 *   0's mask carried to every later frame by DIFT's label propagation (label-propagation.ts) and
 *   scored by the official J, F and J&F-Mean (davis.ts `davisSequence`). Control: every later
 *   frame's tokens permuted over the grid (the propagation rerun).
 * - referring (RefCOCO): mean of the expression's question-token vectors vs every image token
 *   (cosine) → cells ≥ mean + std, peak component → pixels → per-image IoU with the mask
 *   ("mIoU") and ΣI/ΣU ("cIoU"); the region's box vs the labelled box (acc@IoU≥0.5, mean box
 *   IoU). Control: the similarity map permuted over the grid.
 */
import { join } from 'node:path';
import { KvProbe } from '../../../src-shared/contract/methods.ts';
import type { DatasetItem, Label } from '../../../src-shared/dataset/format.ts';
import { type Box, boxIou, boxOfRegion, regionFromSimilarity } from '../../../src-shared/metrics/boxes.ts';
import { argmax, dotRows, unitRows } from '../../../src-shared/metrics/correspondence.ts';
import { type PixelImage, davisSequence } from '../../../src-shared/metrics/davis.ts';
import { bboxThreshold, keypointCorrect } from '../../../src-shared/metrics/pck.ts';
import { fitSoftmax, shuffle } from '../../../src-shared/metrics/probe.ts';
import { patchMask, segmentBySimilarity } from '../../../src-shared/metrics/segmentation.ts';
import { type Grid, type PixelMap, type Size, cellAt, cellCentre, mapForRaster } from '../../../src-shared/vision/pixel-map.ts';
import { type InstanceMask, idAt, imageSize, readMask } from './images.ts';
import { type LabelPropagationOptions, argmaxChannels, propagateVariants } from './label-propagation.ts';
import { bilinearAtPixels, bilinearTable, cellsToPixels, pixelCells } from './pixels.ts';
import { type Finish, type Stat, classMeanIoU, davisJandF, meanOf } from './statistics.ts';
import { type ItemTokens, type KvKind, gatherTokens, kvTensors } from './tokens.ts';

export const PROBES = KvProbe.options;
export type Probe = (typeof PROBES)[number];

export const SEGMENTATION_METRIC = 'class-wise mIoU (pixels)';
export const fewShotMetric = (shots: number) => `class-wise mIoU (pixels, ${shots}-shot)`;
export const pckMetric = (alpha: number, unit: 'bbox' | 'image size', per: 'keypoint' | 'image') => `PCK@${alpha} (${unit}, per ${per})`;
export const DAVIS_METRICS = { jf: 'J&F-Mean (DAVIS)', j: 'J-Mean (DAVIS)', f: 'F-Mean (DAVIS)' } as const;
export const REFERRING_METRICS = { miou: 'mIoU (mean per-image IoU, pixels)', ciou: 'cIoU (ΣI/ΣU, pixels)', acc: 'acc@IoU≥0.5', box: 'mean box IoU' } as const;

export interface Score {
  probe: Probe;
  metric: string;
  layer: number;
  kind: KvKind;
  stat: Stat;
  /** The item's stat under each shuffled control. */
  nulls: Stat[];
  finish: Finish;
}

export interface ProbeOptions {
  /** PCK thresholds α. */
  alphas: number[];
  /** DAVIS label propagation (topk, temperature, context frames, window). */
  propagation: LabelPropagationOptions;
  /** Shuffled controls per figure (≥ 20). */
  permutations: number;
  /** Training items of the few-shot segmentation probe (the run's first items in order). */
  shots: number;
  /** Only these LLM layers (all when absent). */
  layers?: readonly number[];
}

/** An item with lazily read image sizes, masks and pixel → cell tables. */
export class ProbeItem {
  readonly item: DatasetItem;
  readonly tokens: ItemTokens;
  private readonly root: string;
  private readonly view: (image: Size, grid: Grid) => PixelMap;
  private readonly maps = new Map<number, PixelMap>();
  private readonly masks = new Map<string, InstanceMask>();
  private readonly cells = new Map<string, Int32Array>();

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

  /** The cell of every pixel of a raster of `size` over image `image` (−1 = cropped away). */
  pixelCells(image: number, size: Size): Int32Array {
    const key = `${image}:${size.width}x${size.height}`;
    let c = this.cells.get(key);
    if (!c) this.cells.set(key, (c = pixelCells(mapForRaster(this.map(image)!, size))));
    return c;
  }

  mask(label: Extract<Label, { kind: 'mask' }>): InstanceMask {
    let m = this.masks.get(label.file);
    if (!m) this.masks.set(label.file, (m = readMask(join(this.root, label.file))));
    return m;
  }

  maskLabel(image: number): Extract<Label, { kind: 'mask' }> | undefined {
    return this.item.labels.find((l): l is Extract<Label, { kind: 'mask' }> => l.kind === 'mask' && l.image === image);
  }

  /** The tensors the options select. */
  kv(o: ProbeOptions) {
    return o.layers ? this.tokens.kv.filter((t) => o.layers!.includes(t.layer)) : this.tokens.kv;
  }
}

/** `seeds` permutations of 0…n−1 (the shuffled controls), the same for every item of a grid size. */
const permutationCache = new Map<string, number[][]>();
export function permutations(n: number, seeds: number): number[][] {
  const key = `${n}:${seeds}`;
  let p = permutationCache.get(key);
  if (!p) {
    p = Array.from({ length: seeds }, (_, s) => shuffle(Array.from({ length: n }, (_, i) => i), 17 + s));
    permutationCache.set(key, p);
  }
  return p;
}

const permuted = <T>(xs: ArrayLike<T>, perm: readonly number[]): T[] => perm.map((i) => xs[i]!);

/** The class a mask label names: `<class>` of `<class>/<part>`, "object" when unnamed. */
export function maskClass(label: Extract<Label, { kind: 'mask' }>): string {
  return label.name?.split('/')[0]?.trim() || 'object';
}

/** A truth pixel that is scored neither way (a label's `ignoreIds`). */
export const IGNORED_PIXEL = 255;

/** Intersection and union pixels of a predicted and a true binary pixel mask (IGNORED_PIXEL = left out), under class `cls`. */
export function iouStat(pred: ArrayLike<number>, truth: ArrayLike<number>, cls: string): Stat {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < truth.length; i++) {
    if (truth[i] === IGNORED_PIXEL) continue;
    if (pred[i] && truth[i]) inter++;
    if (pred[i] || truth[i]) union++;
  }
  return { [`I:${cls}`]: inter, [`U:${cls}`]: union };
}

export interface SegmentationTarget {
  /** The marked object per token (more than half the cell), for few-shot training. */
  truth: boolean[];
  /** The marked object per pixel of the mask raster. */
  truthPixels: Uint8Array;
  /** Cell of each pixel of the mask raster. */
  cells: Int32Array;
  /** The token under the marker. */
  query: number;
  n: number;
  className: string;
}

/**
 * The segmentation probes' ground truth on image 0: the instance under the first point that lies
 * on an instance the mask lists (any instance when it lists none) — e.g. the referring set's
 * marker on the referred object, not marker a; null when the item has no such object.
 */
export function segmentationTarget(p: ProbeItem): SegmentationTarget | null {
  const label = p.maskLabel(0);
  const tokens = p.tokens.images.get(0);
  if (!label || !tokens) return null;
  const mask = p.mask(label);
  const points = p.item.labels.filter((l): l is Extract<Label, { kind: 'point' }> => l.kind === 'point' && l.image === 0);
  const point = points.find((l) => (label.ids ? label.ids.includes(idAt(mask, l.at)) : idAt(mask, l.at) !== 0));
  if (!point) return null;
  const id = idAt(mask, point.at);
  const map = p.map(0)!;
  const query = cellAt(map, point.at);
  if (query === undefined) return null; // the processor cropped the marker away
  return {
    truth: patchMask(mapForRaster(map, mask), mask.ids, new Set([id])),
    truthPixels: Uint8Array.from(mask.ids, (v) => (v === id ? 1 : 0)),
    cells: p.pixelCells(0, mask),
    query,
    n: map.rows * map.cols,
    className: maskClass(label),
  };
}

export function segmentationScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const t = segmentationTarget(p);
  if (!t) return [];
  const perms = permutations(t.n, o.permutations);
  const statOf = (cells: ArrayLike<boolean>) => iouStat(cellsToPixels(cells, t.cells), t.truthPixels, t.className);
  return p.kv(o).map(({ name, layer, kind }) => {
    const d = p.tokens.width(name);
    const u = p.tokens.unit(name, 0);
    const seg = segmentBySimilarity(dotRows(u, u, t.n, d, t.query * d));
    return { probe: 'segmentation', metric: SEGMENTATION_METRIC, layer, kind, stat: statOf(seg), nulls: perms.map((perm) => statOf(permuted(seg, perm))), finish: classMeanIoU };
  });
}

/**
 * Few-shot segmentation across items: per K/V tensor, a 2-class softmax classifier on the first
 * `shots` items' tokens (labels: the marked object per token), predicting every token of the
 * remaining items → pixels → class-wise mIoU; control s: the classifier trained on the training
 * labels permuted (seed s).
 */
export function fewShotScores(items: readonly { p: ProbeItem; target: SegmentationTarget }[], o: ProbeOptions): { itemId: string; score: Score }[] {
  if (items.length <= o.shots) return [];
  const train = items.slice(0, o.shots);
  const out: { itemId: string; score: Score }[] = [];
  for (const { name, layer, kind } of items[0]!.p.kv(o)) {
    const d = items[0]!.p.tokens.width(name);
    if (!items.every(({ p }) => p.tokens.tensors[name] && p.tokens.width(name) === d)) continue;
    const rows: Float32Array[] = [];
    const labels: number[] = [];
    for (const { p, target } of train) {
      const x = p.tokens.unit(name, 0);
      for (let c = 0; c < target.n; c++) {
        rows.push(x.subarray(c * d, (c + 1) * d));
        labels.push(target.truth[c] ? 1 : 0);
      }
    }
    const model = fitSoftmax(rows, labels, 2, { seed: 1 });
    const controls = Array.from({ length: o.permutations }, (_, s) => fitSoftmax(rows, shuffle(labels, 7919 + s), 2, { seed: 1 }));
    for (const { p, target } of items.slice(o.shots)) {
      const x = p.tokens.unit(name, 0);
      const statOf = (predict: (row: Float32Array) => number) => {
        const cells = Array.from({ length: target.n }, (_, c) => predict(x.subarray(c * d, (c + 1) * d)) === 1);
        return iouStat(cellsToPixels(cells, target.cells), target.truthPixels, target.className);
      };
      out.push({ itemId: p.item.id, score: { probe: 'segmentation-few-shot', metric: fewShotMetric(o.shots), layer, kind, stat: statOf(model), nulls: controls.map(statOf), finish: classMeanIoU } });
    }
  }
  return out;
}

type PointPair = Extract<Label, { kind: 'pointPair' }>;

/** The item's keypoint pairs: every pointPair between the images of its first one. */
export function keypointPairs(item: DatasetItem): PointPair[] {
  const pairs = item.labels.filter((l): l is PointPair => l.kind === 'pointPair');
  const first = pairs[0];
  return first ? pairs.filter((p) => p.a.image === first.a.image && p.b.image === first.b.image) : [];
}

/** The target image's object box (SPair `trg_bndbox`, imported as a box with text "bbox"; else the only box on that image). */
export function targetBox(item: DatasetItem, image: number): Box | null {
  const boxes = item.labels.filter((l): l is Extract<Label, { kind: 'box' }> => l.kind === 'box' && l.image === image);
  const box = boxes.find((b) => b.text === 'bbox') ?? (boxes.length === 1 ? boxes[0] : undefined);
  return box ? (box.box as Box) : null;
}

/** PCK@α of every keypoint pair by the nearest target token, per keypoint and per image. */
export function correspondenceScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const pairs = keypointPairs(p.item);
  if (!pairs.length || pairs[0]!.a.image === pairs[0]!.b.image) return [];
  const [ia, ib] = [pairs[0]!.a.image, pairs[0]!.b.image];
  const dst = p.tokens.images.get(ib);
  if (!p.tokens.images.get(ia) || !dst) return [];
  const mapA = p.map(ia)!;
  const mapB = p.map(ib)!;
  const box = targetBox(p.item, ib);
  const unitName = box ? 'bbox' : 'image size';
  const unit = box ? bboxThreshold(box) : Math.max(mapB.image.width, mapB.image.height);
  const sources = pairs.map((pair) => cellAt(mapA, pair.a.at));
  const n = dst.grid.rows * dst.grid.cols;
  const perms = permutations(n, o.permutations);
  const out: Score[] = [];
  for (const { name, layer, kind } of p.kv(o)) {
    const d = p.tokens.width(name);
    const ua = p.tokens.unit(name, ia);
    const ub = p.tokens.unit(name, ib);
    // Nearest target cell per keypoint; −1 when the processor cropped the source point away.
    const nearest = sources.map((c) => (c === undefined ? -1 : argmax(dotRows(ua, ub, n, d, c * d))));
    const statsAt = (alpha: number, cells: number[]): [Stat, Stat] => {
      let correct = 0;
      cells.forEach((c, k) => {
        if (c >= 0 && keypointCorrect(cellCentre(mapB, c), pairs[k]!.b.at, unit, alpha)) correct++;
      });
      return [{ x: correct, n: pairs.length }, { x: correct / pairs.length, n: 1 }];
    };
    for (const alpha of o.alphas) {
      const [kp, im] = statsAt(alpha, nearest);
      const nulls = perms.map((perm) => statsAt(alpha, nearest.map((c) => (c < 0 ? c : perm[c]!))));
      out.push({ probe: 'correspondence', metric: pckMetric(alpha, unitName, 'keypoint'), layer, kind, stat: kp, nulls: nulls.map((x) => x[0]), finish: meanOf() });
      out.push({ probe: 'correspondence', metric: pckMetric(alpha, unitName, 'image'), layer, kind, stat: im, nulls: nulls.map((x) => x[1]), finish: meanOf() });
    }
  }
  return out;
}

/** Why an item with masks is not a DAVIS sequence, or null when it is one. */
export function davisSkip(p: ProbeItem): string | null {
  const T = p.item.images.length;
  if (T < 3) return `${T} frame(s): the DAVIS protocol scores the frames between the first and the last`;
  for (let t = 0; t < T; t++) {
    if (!p.maskLabel(t)) return `frame ${t} has no mask label`;
    if (!p.tokens.images.get(t)) return `frame ${t} has no captured tokens`;
  }
  const g = p.tokens.images.get(0)!.grid;
  for (let t = 1; t < T; t++) {
    const h = p.tokens.images.get(t)!.grid;
    if (h.rows !== g.rows || h.cols !== g.cols) return `frame ${t}'s token grid (${h.rows}×${h.cols}) differs from frame 0's (${g.rows}×${g.cols})`;
  }
  return null;
}

/** DAVIS J, F and J&F-Mean of frame 0's mask propagated over every frame. */
export function propagationScores(p: ProbeItem, o: ProbeOptions): Score[] {
  if (!p.item.labels.some((l) => l.kind === 'mask') || davisSkip(p) !== null) return [];
  const T = p.item.images.length;
  const masks = Array.from({ length: T }, (_, t) => p.mask(p.maskLabel(t)!));
  const truth: PixelImage[] = masks.map((m) => ({ width: m.width, height: m.height, data: m.ids }));
  const grid = p.tokens.images.get(0)!.grid;
  const n = grid.rows * grid.cols;
  // Frame 0's annotation nearest-resized to the grid (the id under each cell's centre), one-hot.
  const map0 = mapForRaster(p.map(0)!, masks[0]!);
  const firstIds = Array.from({ length: n }, (_, c) => {
    const id = idAt(masks[0]!, cellCentre(map0, c));
    return id === 255 ? 0 : id;
  });
  let objects = 0;
  for (const v of masks[0]!.ids) if (v !== 255) objects = Math.max(objects, v);
  if (objects === 0) return [];
  const channels = objects + 1;
  const first = new Float64Array(channels * n);
  firstIds.forEach((id, c) => (first[id * n + c] = 1));
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  // Variant 0 is the sequence as captured; variant s + 1 has every later frame's tokens permuted.
  const order = [Array.from({ length: T }, () => identity), ...Array.from({ length: o.permutations }, (_, s) => Array.from({ length: T }, (_, t) => (t === 0 ? identity : Int32Array.from(shuffle([...identity], 17 + s + 1000 * t)))))];
  const tables = Array.from({ length: T }, (_, t) => bilinearTable(mapForRaster(p.map(t)!, masks[t]!)));
  const out: Score[] = [];
  for (const { name, layer, kind } of p.kv(o)) {
    const d = p.tokens.width(name);
    const units = Array.from({ length: T }, (_, t) => p.tokens.unit(name, t));
    const similarities = (t: number, f: number) => {
      const s = new Float64Array(n * n);
      for (let q = 0; q < n; q++) s.set(dotRows(units[t]!, units[f]!, n, d, q * d), q * n);
      return s;
    };
    const soft = propagateVariants(T, grid, similarities, order, first, channels, o.propagation);
    const statOf = (maps: Float64Array[]): Stat => {
      const predicted: PixelImage[] = [truth[0]!, ...maps.map((m, k) => ({ width: masks[k + 1]!.width, height: masks[k + 1]!.height, data: argmaxChannels(Array.from({ length: channels }, (_, c) => bilinearAtPixels(m.subarray(c * n, (c + 1) * n), tables[k + 1]!))) }))];
      const scores = davisSequence(truth, predicted);
      return { J: scores.reduce((s, x) => s + x.jStats.mean, 0), F: scores.reduce((s, x) => s + x.fStats.mean, 0), objects: scores.length };
    };
    const stat = statOf(soft[0]!);
    const nulls = soft.slice(1).map(statOf);
    out.push({ probe: 'propagation', metric: DAVIS_METRICS.jf, layer, kind, stat, nulls, finish: davisJandF });
    out.push({ probe: 'propagation', metric: DAVIS_METRICS.j, layer, kind, stat, nulls, finish: meanOf('J', 'objects') });
    out.push({ probe: 'propagation', metric: DAVIS_METRICS.f, layer, kind, stat, nulls, finish: meanOf('F', 'objects') });
  }
  return out;
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
  return item.labels.find((l): l is Extract<Label, { kind: 'box' }> => l.kind === 'box' && !!l.text?.trim() && l.text !== 'bbox');
}

/** The referred object's mask: the mask on the box's image named by the expression, else the only mask there. */
export function referringMask(item: DatasetItem, box: Extract<Label, { kind: 'box' }>): Extract<Label, { kind: 'mask' }> | undefined {
  const masks = item.labels.filter((l): l is Extract<Label, { kind: 'mask' }> => l.kind === 'mask' && l.image === box.image);
  return masks.find((m) => m.name === box.text) ?? (masks.length === 1 ? masks[0] : undefined);
}

/** Why a referring item is not scored, or null (needs the expression inside the prompt and prompt K/V). */
export function referringSkip(p: ProbeItem): string | null {
  const box = referringLabel(p.item)!;
  if (!p.tokens.images.get(box.image)) return 'no captured tokens of its image';
  if (!p.tokens.tensors.prompt_token_map) return 'no K/V at the question tokens (taps.promptKV)';
  if (!p.item.prompt || !expressionSpan(p.item.prompt.trim().split(/\s+/), box.text!)) return `its expression "${box.text}" is not in its prompt`;
  return null;
}

/** Referring expression → region from the text–image similarity map: mask IoU (pixels) and box IoU. */
export function referringScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const box = referringLabel(p.item);
  if (!box || referringSkip(p) !== null) return [];
  const map = p.tokens.tensors.prompt_token_map!.data as Int32Array;
  const span = expressionSpan(p.item.prompt!.trim().split(/\s+/), box.text!)!;
  const rows = Array.from({ length: map.length / 3 }, (_, r) => r).filter((r) => map[r * 3 + 2]! >= span[0] && map[r * 3 + 2]! < span[1]);
  if (!rows.length) return [];
  const view = p.map(box.image)!;
  const n = view.rows * view.cols;
  const perms = permutations(n, o.permutations);
  const maskLabel = referringMask(p.item, box);
  let truth: { pixels: Uint8Array; cells: Int32Array } | null = null;
  if (maskLabel) {
    const m = p.mask(maskLabel);
    const ids = maskLabel.ids ? new Set(maskLabel.ids) : null;
    truth = { pixels: Uint8Array.from(m.ids, (v) => (ids ? (ids.has(v) ? 1 : 0) : v !== 0 ? 1 : 0)), cells: p.pixelCells(box.image, m) };
  }
  const out: Score[] = [];
  const layers = new Set(p.kv(o).map((t) => t.layer));
  for (const t of kvTensors(p.tokens.tensors, 'prompt')) {
    const imageName = `image_kv.${t.layer}.${t.kind}`;
    if (!p.tokens.tensors[imageName] || !layers.has(t.layer)) continue;
    const d = p.tokens.width(imageName);
    const text = gatherTokens(p.tokens.tensors[t.name]!, rows);
    const mean = new Float32Array(d);
    for (let r = 0; r < rows.length; r++) for (let j = 0; j < d; j++) mean[j]! += text[r * d + j]! / rows.length;
    const sims = dotRows(unitRows(mean, 1, d), p.tokens.unit(imageName, box.image), n, d);
    const scoresOf = (s: ArrayLike<number>) => {
      const region = regionFromSimilarity(s, view);
      const boxIoU = boxIou(boxOfRegion(region, view)!, box.box as Box);
      const stats: Record<string, Stat> = { [REFERRING_METRICS.acc]: { x: boxIoU >= 0.5 ? 1 : 0, n: 1 }, [REFERRING_METRICS.box]: { x: boxIoU, n: 1 } };
      if (truth) {
        const s2 = iouStat(cellsToPixels(region, truth.cells), truth.pixels, 'referred');
        const [i, u] = [s2['I:referred']!, s2['U:referred']!];
        // RefCOCO targets are never empty; an empty union (both empty) scores 1 as DAVIS J / miou.ts' default.
        stats[REFERRING_METRICS.miou] = { x: u ? i / u : 1, n: 1 };
        stats[REFERRING_METRICS.ciou] = { x: i, n: u };
      }
      return stats;
    };
    const observed = scoresOf(sims);
    const nulls = perms.map((perm) => scoresOf(permuted(sims, perm)));
    for (const metric of Object.keys(observed)) out.push({ probe: 'referring', metric, layer: t.layer, kind: t.kind, stat: observed[metric]!, nulls: nulls.map((x) => x[metric]!), finish: meanOf() });
  }
  return out;
}
