/**
 * Linear probes for readouts: multinomial logistic regression (softmax, L2) on standardised
 * features, k-fold cross-validated, with a shuffled-label control so "above chance" means
 * the features hold the label, not that the probe memorised noise.
 * Small and dependency-free on purpose: probes are Loupe's own method, on ≤ thousands of
 * items × ≤ a few thousand dims, where full-batch gradient descent is fast and exact enough.
 */
export interface ProbeOptions {
  folds?: number;
  epochs?: number;
  learningRate?: number;
  l2?: number;
  seed?: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export function shuffle<T>(xs: T[], seed: number): T[] {
  const r = rng(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Trains on (x, y) and returns a predictor. x: n rows of d features; y: class indices < classes. */
export function fitSoftmax(x: Float32Array[], y: number[], classes: number, o: ProbeOptions = {}): (row: Float32Array) => number {
  const n = x.length;
  const d = x[0]?.length ?? 0;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (const row of x) for (let j = 0; j < d; j++) mean[j]! += row[j]! / n;
  for (const row of x) for (let j = 0; j < d; j++) std[j]! += (row[j]! - mean[j]!) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]!) || 1;
  const z = x.map((row) => Float64Array.from(row, (v, j) => (v - mean[j]!) / std[j]!));
  const w = new Float64Array(classes * (d + 1));
  const lr = o.learningRate ?? 0.5;
  const l2 = o.l2 ?? 1e-3;
  const p = new Float64Array(classes);
  const grad = new Float64Array(w.length);
  for (let epoch = 0; epoch < (o.epochs ?? 200); epoch++) {
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < classes; c++) {
        let s = w[c * (d + 1) + d]!;
        for (let j = 0; j < d; j++) s += w[c * (d + 1) + j]! * z[i]![j]!;
        p[c] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += p[c] = Math.exp(p[c]! - max);
      for (let c = 0; c < classes; c++) {
        const g = p[c]! / sum - (c === y[i] ? 1 : 0);
        for (let j = 0; j < d; j++) grad[c * (d + 1) + j]! += (g * z[i]![j]!) / n;
        grad[c * (d + 1) + d]! += g / n;
      }
    }
    for (let k = 0; k < w.length; k++) w[k]! -= lr * (grad[k]! + (k % (d + 1) === d ? 0 : l2 * w[k]!));
  }
  return (row) => {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = w[c * (d + 1) + d]!;
      for (let j = 0; j < d; j++) s += (w[c * (d + 1) + j]! * (row[j]! - mean[j]!)) / std[j]!;
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    return best;
  };
}

export interface ProbeResult {
  /** Out-of-fold predictions, one per item (class index). */
  predictions: number[];
  accuracy: number;
  /** Same probe on labels shuffled across items: the chance a probe can reach by memorising. */
  shuffledAccuracy: number;
}

function crossValidate(x: Float32Array[], y: number[], classes: number, o: ProbeOptions): number[] {
  const folds = Math.min(o.folds ?? 5, x.length);
  const order = shuffle(Array.from({ length: x.length }, (_, i) => i), o.seed ?? 1);
  const pred = new Array<number>(x.length).fill(0);
  for (let f = 0; f < folds; f++) {
    const test = order.filter((_, k) => k % folds === f);
    const train = order.filter((_, k) => k % folds !== f);
    const model = fitSoftmax(train.map((i) => x[i]!), train.map((i) => y[i]!), classes, o);
    for (const i of test) pred[i] = model(x[i]!);
  }
  return pred;
}

export function probe(x: Float32Array[], y: number[], classes: number, o: ProbeOptions = {}): ProbeResult {
  const predictions = crossValidate(x, y, classes, o);
  const shuffled = shuffle(y, (o.seed ?? 1) + 7919);
  const control = crossValidate(x, shuffled, classes, o);
  const acc = (p: number[], t: number[]) => p.filter((v, i) => v === t[i]).length / Math.max(1, t.length);
  return { predictions, accuracy: acc(predictions, y), shuffledAccuracy: acc(control, shuffled) };
}

/** Total-variation distance between two distributions over the same outcomes. */
export function totalVariation(p: number[], q: number[]): number {
  let s = 0;
  for (let i = 0; i < Math.max(p.length, q.length); i++) s += Math.abs((p[i] ?? 0) - (q[i] ?? 0));
  return s / 2;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! ** 2;
    nb += b[i]! ** 2;
  }
  return dot / (Math.sqrt(na * nb) || 1);
}
