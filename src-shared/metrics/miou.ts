/**
 * Dataset-level segmentation scores, each under the name its benchmarks use.
 *
 * - Class-wise mIoU (semantic segmentation: PASCAL VOC, ADE20K, Cityscapes, COCO-Stuff): per class,
 *   intersection and union are *summed over the whole dataset* first, IoU_c = ΣI_c / ΣU_c, and mIoU
 *   is the mean over classes with ΣU_c > 0 (present in the truth or the prediction somewhere — a
 *   class predicted but absent from the truth scores 0 and counts). Pixels whose truth is the ignore
 *   index (255 in VOC/ADE20K) are dropped from both. This is the confusion-matrix evaluation of
 *   Long et al.'s FCN code (`fast_hist`) and mmsegmentation `mean_iou` (nanmean over classes).
 * - Referring segmentation (RefCOCO/+/g; LAVT, CRIS, ReLA): `meanIoU` = mean over images of each
 *   image's IoU (papers call it "mIoU"), `cumulativeIoU` = ΣI / ΣU over all images ("oIoU" or
 *   "cIoU"; large objects weigh more), and Prec@X = fraction of images with IoU > X.
 * - Co-segmentation (Rubinstein et al., CVPR 2013, "Unsupervised Joint Object Discovery and
 *   Segmentation in Internet Images"; iCoseg, MSRC, Internet): per image Jaccard J = IoU of the
 *   foreground and precision P = fraction of pixels labelled correctly (foreground and
 *   background), averaged over the images of a class, then over classes.
 *
 * Masks are row-major arrays of equal length; a binary mask is any truthy/falsy values.
 */
import { LoupeError } from '../contract/errors.ts';

export type LabelMap = ArrayLike<number>;
export type BinaryMap = ArrayLike<number | boolean>;

/** Running per-class sums; add images with `addToClassIoU`, read with `classIoUResult`. */
export interface ClassIoUAccumulator {
  numClasses: number;
  ignoreIndex: number | null;
  /** Per class, summed over images: pixels in truth and prediction both, in the truth, in the prediction. */
  intersection: Float64Array;
  truthPixels: Float64Array;
  predictedPixels: Float64Array;
  images: number;
}

export function classIoUAccumulator(numClasses: number, o: { ignoreIndex?: number | null } = {}): ClassIoUAccumulator {
  if (!(Number.isInteger(numClasses) && numClasses > 0)) throw new LoupeError('bad-input', `mIoU needs a positive integer class count, got ${numClasses}`);
  return { numClasses, ignoreIndex: o.ignoreIndex ?? null, intersection: new Float64Array(numClasses), truthPixels: new Float64Array(numClasses), predictedPixels: new Float64Array(numClasses), images: 0 };
}

/** Adds one image's truth and prediction (class ids per pixel). */
export function addToClassIoU(acc: ClassIoUAccumulator, truth: LabelMap, predicted: LabelMap, imageName = `image ${acc.images}`): void {
  if (truth.length !== predicted.length) throw new LoupeError('bad-input', `mIoU ${imageName}: truth has ${truth.length} pixels, prediction ${predicted.length}`);
  const k = acc.numClasses;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    if (t === acc.ignoreIndex) continue;
    const p = predicted[i]!;
    if (!(Number.isInteger(t) && t >= 0 && t < k)) throw new LoupeError('bad-input', `mIoU ${imageName}: truth pixel ${i} has class ${t}, outside 0..${k - 1} (and not the ignore index ${acc.ignoreIndex ?? 'none'})`);
    if (!(Number.isInteger(p) && p >= 0 && p < k)) throw new LoupeError('bad-input', `mIoU ${imageName}: predicted pixel ${i} has class ${p}, outside 0..${k - 1}`);
    acc.truthPixels[t]! += 1;
    acc.predictedPixels[p]! += 1;
    if (t === p) acc.intersection[t]! += 1;
  }
  acc.images++;
}

export interface ClassIoUResult {
  /** IoU per class; null where the class is in neither truth nor prediction (ΣU = 0). */
  perClass: (number | null)[];
  /** Mean over the classes with a value. */
  mIoU: number;
  classesCounted: number;
  images: number;
}

export function classIoUResult(acc: ClassIoUAccumulator): ClassIoUResult {
  const perClass: (number | null)[] = [];
  let sum = 0;
  let counted = 0;
  for (let c = 0; c < acc.numClasses; c++) {
    // ΣU_c = Σ|truth_c| + Σ|pred_c| − Σ|both_c| (sums of per-image unions).
    const union = acc.truthPixels[c]! + acc.predictedPixels[c]! - acc.intersection[c]!;
    if (union === 0) perClass.push(null);
    else {
      const v = acc.intersection[c]! / union;
      perClass.push(v);
      sum += v;
      counted++;
    }
  }
  return { perClass, mIoU: counted ? sum / counted : NaN, classesCounted: counted, images: acc.images };
}

/** Class-wise mIoU of a whole dataset in one call. */
export function classMeanIoU(images: readonly { truth: LabelMap; predicted: LabelMap }[], numClasses: number, o: { ignoreIndex?: number | null } = {}): ClassIoUResult {
  const acc = classIoUAccumulator(numClasses, o);
  images.forEach((im, i) => addToClassIoU(acc, im.truth, im.predicted, `image ${i}`));
  return classIoUResult(acc);
}

/** Intersection and union of two binary masks (pixel counts). */
export function intersectionUnion(truth: BinaryMap, predicted: BinaryMap, what = 'mask'): { intersection: number; union: number } {
  if (truth.length !== predicted.length) throw new LoupeError('bad-input', `${what}: truth has ${truth.length} pixels, prediction ${predicted.length}`);
  let intersection = 0;
  let union = 0;
  for (let i = 0; i < truth.length; i++) {
    const g = !!truth[i];
    const p = !!predicted[i];
    if (g && p) intersection++;
    if (g || p) union++;
  }
  return { intersection, union };
}

export interface ReferringIoUResult {
  /** Mean of per-image IoU ("mIoU" in referring-segmentation papers). */
  meanIoU: number;
  /** ΣI / ΣU over all images ("oIoU" / "cIoU"). */
  cumulativeIoU: number;
  perImage: number[];
  /** Fraction of images with IoU > threshold, per threshold (Prec@0.5 … Prec@0.9). */
  precisionAt: { threshold: number; precision: number }[];
}

/**
 * Referring segmentation scores. `emptyEmpty` is the IoU of an image whose truth and prediction
 * are both empty: 1 as DAVIS J (default), or 0 as LAVT's `computeIoU` (`if U == 0: iou = 0`).
 * RefCOCO targets are never empty, so it matters only for generalised sets (gRefCOCO).
 */
export function referringIoU(images: readonly { truth: BinaryMap; predicted: BinaryMap }[], o: { emptyEmpty?: 0 | 1; thresholds?: readonly number[] } = {}): ReferringIoUResult {
  if (!images.length) throw new LoupeError('bad-input', 'referring IoU of zero images');
  const emptyEmpty = o.emptyEmpty ?? 1;
  let sumI = 0;
  let sumU = 0;
  const perImage = images.map((im, i) => {
    const { intersection, union } = intersectionUnion(im.truth, im.predicted, `referring image ${i}`);
    sumI += intersection;
    sumU += union;
    return union === 0 ? emptyEmpty : intersection / union;
  });
  const thresholds = o.thresholds ?? [0.5, 0.6, 0.7, 0.8, 0.9];
  return {
    meanIoU: perImage.reduce((a, b) => a + b, 0) / perImage.length,
    cumulativeIoU: sumU === 0 ? emptyEmpty : sumI / sumU,
    perImage,
    precisionAt: thresholds.map((threshold) => ({ threshold, precision: perImage.filter((v) => v > threshold).length / perImage.length })),
  };
}

export interface CosegmentationResult {
  /** Per class: mean Jaccard and mean precision over its images. */
  perClass: { name: string; jaccard: number; precision: number; images: number }[];
  /** Means over classes (each class weighs the same, as the benchmark tables). */
  jaccard: number;
  precision: number;
  perImage: { name: string; jaccard: number; precision: number }[];
}

/**
 * Co-segmentation J and P (Rubinstein et al. 2013). `emptyEmpty` is J for an image with no
 * foreground in truth or prediction (the Internet dataset's images without the object): 1
 * (default, as DAVIS J) or 0.
 */
export function cosegmentationScores(images: readonly { className: string; truth: BinaryMap; predicted: BinaryMap }[], o: { emptyEmpty?: 0 | 1 } = {}): CosegmentationResult {
  if (!images.length) throw new LoupeError('bad-input', 'co-segmentation scores of zero images');
  const emptyEmpty = o.emptyEmpty ?? 1;
  const perImage = images.map((im, i) => {
    const { intersection, union } = intersectionUnion(im.truth, im.predicted, `co-segmentation image ${i} (${im.className})`);
    let agree = 0;
    for (let p = 0; p < im.truth.length; p++) if (!!im.truth[p] === !!im.predicted[p]) agree++;
    return { name: im.className, jaccard: union === 0 ? emptyEmpty : intersection / union, precision: im.truth.length ? agree / im.truth.length : NaN };
  });
  const byClass = new Map<string, { j: number; p: number; n: number }>();
  for (const r of perImage) {
    const s = byClass.get(r.name) ?? { j: 0, p: 0, n: 0 };
    s.j += r.jaccard;
    s.p += r.precision;
    s.n++;
    byClass.set(r.name, s);
  }
  const perClass = [...byClass].map(([name, s]) => ({ name, jaccard: s.j / s.n, precision: s.p / s.n, images: s.n }));
  return {
    perClass,
    jaccard: perClass.reduce((a, c) => a + c.jaccard, 0) / perClass.length,
    precision: perClass.reduce((a, c) => a + c.precision, 0) / perClass.length,
    perImage,
  };
}
