/**
 * Few-shot foreground segmentation from patch tokens: a linear foreground/background classifier
 * (softmax regression with 2 classes on standardised features, probe.ts) on individual tokens,
 * trained on every token of the first `shots` items with per-token labels from each item's
 * ground-truth patch mask, evaluated as mean IoU over the remaining items. Control: the same
 * classifier trained on the training labels shuffled among the training tokens (fixed seed),
 * so "above control" means the tokens hold the object, not that the probe fits noise.
 */
import { type ProbeOptions, fitSoftmax, shuffle } from './probe.ts';
import { iou } from './segmentation.ts';

export interface SegmentationItem {
  /** n tokens × d features, row-major (row p = patch p). */
  x: Float32Array;
  /** Ground-truth foreground per patch, length n. */
  truth: ArrayLike<boolean | number>;
}

export interface FewShotResult {
  /** Held-out items evaluated. */
  items: number;
  miou: number;
  control: number;
}

/** null when there is no held-out item (items.length ≤ shots) or shots < 1. */
export function fewShotSegmentation(items: readonly SegmentationItem[], d: number, shots: number, o: ProbeOptions = {}): FewShotResult | null {
  if (shots < 1 || items.length <= shots || d < 1) return null;
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  for (const item of items.slice(0, shots)) {
    const n = item.truth.length;
    if (item.x.length !== n * d) throw new Error(`few-shot segmentation: ${item.x.length} features for ${n} patches × ${d} dims`);
    for (let p = 0; p < n; p++) {
      rows.push(item.x.subarray(p * d, (p + 1) * d));
      labels.push(item.truth[p] ? 1 : 0);
    }
  }
  const model = fitSoftmax(rows, labels, 2, o);
  const control = fitSoftmax(rows, shuffle(labels, (o.seed ?? 1) + 7919), 2, o);
  const heldOut = items.slice(shots);
  const miouOf = (predict: (row: Float32Array) => number) =>
    heldOut.reduce((s, item) => {
      const n = item.truth.length;
      const pred = Array.from({ length: n }, (_, p) => predict(item.x.subarray(p * d, (p + 1) * d)) === 1);
      return s + iou(pred, item.truth);
    }, 0) / heldOut.length;
  return { items: heldOut.length, miou: miouOf(model), control: miouOf(control) };
}
