/**
 * DAVIS video object segmentation scores, as the official davis2017-evaluation computes them
 * (github.com/davisvideochallenge/davis2017-evaluation @ ac7c43f, `davis2017/metrics.py`,
 * `davis2017/utils.py` `db_statistics`, `davis2017/evaluation.py`; Pont-Tuset et al.,
 * "The 2017 DAVIS Challenge on Video Object Segmentation", arXiv:1704.00675; Perazzi et al.,
 * CVPR 2016 for J and F). Written from the definitions, checked against that code's output
 * (tests/fixtures/metric-references/davis.json, built by tools/metric-references/davis_reference.py).
 *
 *  - J (region similarity): |pred ∩ gt| / |pred ∪ gt| over non-void pixels; 1 when the union is
 *    empty (`db_eval_iou`).
 *  - F (boundary accuracy): boundaries of both masks from `seg2bmap` (1-pixel boundaries offset
 *    half a pixel towards the origin), each dilated by a disk of radius
 *    ceil(bound_th · ‖(H, W)‖) (bound_th = 0.008; a bound_th ≥ 1 is a radius in pixels);
 *    precision = fraction of predicted boundary pixels within the dilated true boundary, recall
 *    the converse, F = 2PR/(P+R) (`f_measure`; empty boundaries: none vs some → P=1,R=0 or
 *    P=0,R=1, none vs none → P=R=1).
 *  - Per object: J and F per frame over the frames between the first and the last (the
 *    semi-supervised protocol drops both: the first is given, the last has no successor —
 *    `all_gt_masks[:, 1:-1]` in evaluation.py); mean, recall (fraction of frames > 0.5) and
 *    decay (mean of the first quarter minus the last, `db_statistics`).
 *  - J&F-Mean = (mean over all objects of J-mean + mean over all objects of F-mean) / 2.
 *
 * Documented difference: `db_statistics` stores its bin edges as uint8, which wraps past 255
 * frames; here they are exact (no DAVIS sequence is that long, so scores agree on DAVIS).
 */
import { LoupeError } from '../contract/errors.ts';

/** A row-major image of per-pixel values (object ids, or 0/1 / booleans for a binary mask). */
export interface PixelImage {
  width: number;
  height: number;
  data: ArrayLike<number | boolean>;
}

export const DAVIS_BOUND_TH = 0.008;
/** Annotation value DAVIS marks as void (ignored by the semi-supervised scores, as officially). */
export const DAVIS_VOID_LABEL = 255;

function checkSameSize(a: PixelImage, b: PixelImage, what: string): void {
  if (a.width !== b.width || a.height !== b.height) throw new LoupeError('bad-input', `${what}: sizes differ (${a.width}×${a.height} vs ${b.width}×${b.height})`);
  if (a.data.length !== a.width * a.height || b.data.length !== b.width * b.height) throw new LoupeError('bad-input', `${what}: pixel count does not match width × height`);
}

/** J: region IoU over non-void pixels, 1 when prediction and truth are both empty there. */
export function davisJ(truth: PixelImage, predicted: PixelImage, voidMask?: PixelImage): number {
  checkSameSize(truth, predicted, 'DAVIS J');
  if (voidMask) checkSameSize(truth, voidMask, 'DAVIS J void mask');
  let inter = 0;
  let union = 0;
  for (let i = 0; i < truth.data.length; i++) {
    if (voidMask && voidMask.data[i]) continue;
    const g = !!truth.data[i];
    const p = !!predicted.data[i];
    if (g && p) inter++;
    if (g || p) union++;
  }
  return union === 0 ? 1 : inter / union;
}

/**
 * Boundary map of a binary mask (David Martin's seg2bmap as in the official code): pixel (y, x)
 * is boundary when it differs from its east, south or south-east neighbour (outside the image
 * counts as background); on the last row only east is compared, on the last column only
 * south, and the bottom-right pixel is never boundary.
 */
export function seg2bmap(mask: PixelImage): Uint8Array {
  const { width: w, height: h } = mask;
  const at = (y: number, x: number): boolean => (y < h && x < w ? !!mask.data[y * w + x] : false);
  const b = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = at(y, x);
      let edge: boolean;
      if (y === h - 1 && x === w - 1) edge = false;
      else if (x === w - 1) edge = s !== at(y + 1, x);
      else if (y === h - 1) edge = s !== at(y, x + 1);
      else edge = s !== at(y, x + 1) || s !== at(y + 1, x) || s !== at(y + 1, x + 1);
      b[y * w + x] = edge ? 1 : 0;
    }
  }
  return b;
}

/** The dilation radius in pixels: ceil(bound_th · √(H² + W²)), or bound_th itself when ≥ 1. */
export function davisBoundaryRadius(width: number, height: number, boundTh = DAVIS_BOUND_TH): number {
  if (boundTh >= 1) {
    // The official code passes a fractional radius to skimage's disk, whose even-sized kernel
    // then has no centre; refuse rather than guess what that means.
    if (!Number.isInteger(boundTh)) throw new LoupeError('bad-input', `DAVIS bound_th ≥ 1 is a radius in pixels and must be an integer, got ${boundTh}`);
    return boundTh;
  }
  if (!(boundTh > 0)) throw new LoupeError('bad-input', `DAVIS bound_th must be > 0, got ${boundTh}`);
  // np.linalg.norm((H, W)) is sqrt(H·H + W·W); the same float ops here so the ceil agrees.
  return Math.ceil(boundTh * Math.sqrt(height * height + width * width));
}

/** Offsets (dy, dx) of skimage's disk(r): dx² + dy² ≤ r². */
function diskOffsets(r: number): [number, number][] {
  const out: [number, number][] = [];
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r) out.push([dy, dx]);
  return out;
}

/** Count of `from` boundary pixels with a `to` boundary pixel within the disk (= from ∧ dilate(to)). */
function matchedWithin(from: Uint8Array, to: Uint8Array, w: number, h: number, disk: readonly [number, number][]): number {
  let n = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!from[y * w + x]) continue;
      for (const [dy, dx] of disk) {
        const yy = y + dy;
        const xx = x + dx;
        if (yy >= 0 && yy < h && xx >= 0 && xx < w && to[yy * w + xx]) {
          n++;
          break;
        }
      }
    }
  }
  return n;
}

export interface BoundaryScore {
  f: number;
  precision: number;
  recall: number;
  /** Dilation radius used, in pixels. */
  radius: number;
}

/** F: the boundary F-measure of `f_measure` (void pixels are cleared from both masks first). */
export function davisBoundary(truth: PixelImage, predicted: PixelImage, o: { boundTh?: number; voidMask?: PixelImage } = {}): BoundaryScore {
  checkSameSize(truth, predicted, 'DAVIS F');
  const { width: w, height: h } = truth;
  const keep = (m: PixelImage): PixelImage => {
    if (!o.voidMask) return m;
    checkSameSize(m, o.voidMask, 'DAVIS F void mask');
    return { width: w, height: h, data: Array.from(m.data as ArrayLike<number | boolean>, (v, i) => !!v && !o.voidMask!.data[i]) };
  };
  const fgB = seg2bmap(keep(predicted));
  const gtB = seg2bmap(keep(truth));
  const radius = davisBoundaryRadius(w, h, o.boundTh);
  const disk = diskOffsets(radius);
  let nFg = 0;
  let nGt = 0;
  for (let i = 0; i < w * h; i++) {
    nFg += fgB[i]!;
    nGt += gtB[i]!;
  }
  let precision: number;
  let recall: number;
  if (nFg === 0 && nGt > 0) [precision, recall] = [1, 0];
  else if (nFg > 0 && nGt === 0) [precision, recall] = [0, 1];
  else if (nFg === 0 && nGt === 0) [precision, recall] = [1, 1];
  else {
    precision = matchedWithin(fgB, gtB, w, h, disk) / nFg;
    recall = matchedWithin(gtB, fgB, w, h, disk) / nGt;
  }
  const f = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { f, precision, recall, radius };
}

export interface DavisStatistics {
  /** Mean over frames (NaNs skipped, as nanmean). */
  mean: number;
  /** Fraction of frames above 0.5 (a NaN frame counts as not above, as in the official code). */
  recall: number;
  /** Mean of the first of four overlapping bins minus the mean of the last. */
  decay: number;
}

function nanMean(xs: readonly number[]): number {
  let s = 0;
  let n = 0;
  for (const x of xs) if (!Number.isNaN(x)) {
    s += x;
    n++;
  }
  return n ? s / n : NaN;
}

/** `db_statistics`: mean, recall and decay of per-frame scores. */
export function davisStatistics(perFrame: readonly number[]): DavisStatistics {
  const n = perFrame.length;
  const mean = nanMean(perFrame);
  const recall = n ? perFrame.filter((v) => v > 0.5).length / n : NaN;
  // Bin edges: round(linspace(1, n, 5) + 1e-10) − 1 (the 1e-10 makes .5 round up); the bins
  // are perFrame[ids[i] .. ids[i+1]] inclusive, so neighbours share an edge frame.
  const ids = [0, 1, 2, 3, 4].map((k) => Math.round(1 + (k * (n - 1)) / 4 + 1e-10) - 1);
  const bin = (i: number) => perFrame.slice(ids[i]!, ids[i + 1]! + 1);
  const decay = nanMean(bin(0)) - nanMean(bin(3));
  return { mean, recall, decay };
}

export interface DavisObjectScores {
  /** Object id in the annotation (1-based). */
  id: number;
  /** Per evaluated frame (all but the first and last). */
  j: number[];
  f: number[];
  jStats: DavisStatistics;
  fStats: DavisStatistics;
}

/**
 * One sequence, semi-supervised protocol: objects are ids 1..max of the first annotation (255 is
 * void and set to background, as `DAVIS.get_all_masks`); `predicted[t]` is the method's id mask
 * for frame t (frame 0's prediction is ignored). A predicted id above the object count is an
 * error (the official code aborts too); an object never predicted scores as an empty mask.
 */
export function davisSequence(truth: readonly PixelImage[], predicted: readonly PixelImage[], o: { boundTh?: number } = {}): DavisObjectScores[] {
  if (truth.length !== predicted.length) throw new LoupeError('bad-input', `DAVIS sequence: ${truth.length} annotated frames but ${predicted.length} predicted frames`);
  if (truth.length < 3) throw new LoupeError('bad-input', `DAVIS sequence: ${truth.length} frames; the protocol scores frames between the first and the last, so it needs at least 3`);
  truth.forEach((t, i) => checkSameSize(t, predicted[i]!, `DAVIS frame ${i}`));
  const ids = (m: PixelImage) => Array.from(m.data as ArrayLike<number | boolean>, (v) => (Number(v) === DAVIS_VOID_LABEL ? 0 : Number(v)));
  const first = ids(truth[0]!);
  const objects = first.reduce((a, b) => Math.max(a, b), 0);
  if (objects === 0) throw new LoupeError('bad-input', 'DAVIS sequence: the first annotation has no object (ids 1..254)');
  const frames = truth.slice(1, -1).map((t, k) => ({ t: ids(t), p: Array.from(predicted[k + 1]!.data as ArrayLike<number | boolean>, Number), w: t.width, h: t.height, k: k + 1 }));
  for (const fr of frames) {
    const maxPred = fr.p.reduce((a, b) => Math.max(a, b), 0);
    if (maxPred > objects) throw new LoupeError('bad-input', `DAVIS frame ${fr.k}: predicted object id ${maxPred} but the first annotation has ${objects} object(s)`);
  }
  const out: DavisObjectScores[] = [];
  for (let id = 1; id <= objects; id++) {
    const j: number[] = [];
    const f: number[] = [];
    for (const fr of frames) {
      const g: PixelImage = { width: fr.w, height: fr.h, data: fr.t.map((v) => (v === id ? 1 : 0)) };
      const p: PixelImage = { width: fr.w, height: fr.h, data: fr.p.map((v) => (v === id ? 1 : 0)) };
      j.push(davisJ(g, p));
      f.push(davisBoundary(g, p, { boundTh: o.boundTh }).f);
    }
    out.push({ id, j, f, jStats: davisStatistics(j), fStats: davisStatistics(f) });
  }
  return out;
}

export interface DavisSummary {
  /** Objects over all sequences (each object weighs the same, as in the official table). */
  objects: number;
  jMean: number;
  jRecall: number;
  jDecay: number;
  fMean: number;
  fRecall: number;
  fDecay: number;
  /** (J-Mean + F-Mean) / 2. */
  jAndFMean: number;
}

/** The global row of the official results table from every object of every sequence. */
export function davisSummary(objects: readonly DavisObjectScores[]): DavisSummary {
  if (!objects.length) throw new LoupeError('bad-input', 'DAVIS summary of zero objects');
  const avg = (pick: (o: DavisObjectScores) => number) => objects.reduce((s, o) => s + pick(o), 0) / objects.length;
  const jMean = avg((o) => o.jStats.mean);
  const fMean = avg((o) => o.fStats.mean);
  return {
    objects: objects.length,
    jMean,
    jRecall: avg((o) => o.jStats.recall),
    jDecay: avg((o) => o.jStats.decay),
    fMean,
    fRecall: avg((o) => o.fStats.recall),
    fDecay: avg((o) => o.fStats.decay),
    jAndFMean: (jMean + fMean) / 2,
  };
}
