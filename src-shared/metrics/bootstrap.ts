/**
 * Percentile bootstrap intervals (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993,
 * ch. 13): resample the items with replacement B times, recompute the statistic, and take the
 * α/2 and 1 − α/2 quantiles of the B values (linear interpolation between order statistics,
 * numpy's default `percentile` method). Items are the unit of resampling everywhere, so paired
 * measurements (one item scored under two conditions) stay paired.
 *
 * Deterministic: the resampling stream is `createRng('bootstrap', seed)` (src-shared/world/rng.ts),
 * so the same inputs and seed give the same interval on any machine. scipy's bootstrap uses a
 * different generator, so intervals agree with it only statistically, not digit for digit.
 */
import { LoupeError } from '../contract/errors.ts';
import { createRng } from '../world/rng.ts';

export interface BootstrapOptions {
  /** Resamples B (default 2000; at least 100). */
  resamples?: number;
  /** Coverage of the interval (default 0.95). */
  confidence?: number;
  /** Seed of the resampling stream (default 0). */
  seed?: string | number;
}

export interface BootstrapInterval {
  /** The statistic on the data as given. */
  estimate: number;
  low: number;
  high: number;
  confidence: number;
  resamples: number;
}

/** Quantile q ∈ [0, 1] of ascending `sorted`, interpolating linearly (numpy 'linear'). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (!n) throw new LoupeError('bad-input', 'quantile of an empty list');
  if (!(q >= 0 && q <= 1)) throw new LoupeError('bad-input', `quantile q must be in [0, 1], got ${q}`);
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

function settings(o: BootstrapOptions): { resamples: number; confidence: number; seed: string | number } {
  const resamples = o.resamples ?? 2000;
  const confidence = o.confidence ?? 0.95;
  if (!(Number.isInteger(resamples) && resamples >= 100)) throw new LoupeError('bad-input', `bootstrap resamples must be an integer ≥ 100 (option 'resamples'), got ${resamples}`);
  if (!(confidence > 0 && confidence < 1)) throw new LoupeError('bad-input', `bootstrap confidence must be in (0, 1) (option 'confidence'), got ${confidence}`);
  return { resamples, confidence, seed: o.seed ?? 0 };
}

/**
 * The bootstrap distribution: `statistic(indices)` on B resamples of `n` item indices (each an
 * Int32Array of n draws with replacement). Exposed so tests can check it against the exact
 * resampling distribution and so callers can build other intervals.
 */
export function bootstrapDistribution(n: number, statistic: (indices: Int32Array) => number, o: BootstrapOptions = {}): Float64Array {
  if (!(Number.isInteger(n) && n > 0)) throw new LoupeError('bad-input', `bootstrap needs at least one item, got ${n}`);
  const { resamples, seed } = settings(o);
  const rng = createRng('bootstrap', seed);
  const out = new Float64Array(resamples);
  const idx = new Int32Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rng.next() * n);
    out[r] = statistic(idx);
  }
  return out;
}

/** Percentile interval from a bootstrap distribution. */
export function percentileInterval(estimate: number, distribution: Float64Array, confidence: number): BootstrapInterval {
  const sorted = Float64Array.from(distribution).sort();
  const a = (1 - confidence) / 2;
  return { estimate, low: quantileSorted(sorted, a), high: quantileSorted(sorted, 1 - a), confidence, resamples: distribution.length };
}

function meanOf(values: ArrayLike<number>, idx?: Int32Array): number {
  let s = 0;
  const n = idx ? idx.length : values.length;
  for (let i = 0; i < n; i++) s += values[idx ? idx[i]! : i]!;
  return s / n;
}

/** Percentile CI of the mean of `values` (items resampled). */
export function bootstrapMeanCI(values: ArrayLike<number>, o: BootstrapOptions = {}): BootstrapInterval {
  const { confidence } = settings(o);
  const dist = bootstrapDistribution(values.length, (idx) => meanOf(values, idx), o);
  return percentileInterval(meanOf(values), dist, confidence);
}

/** Percentile CI of mean(a) − mean(b) for paired measurements (item i is a[i] and b[i]; resampled together). */
export function bootstrapPairedDifferenceCI(a: ArrayLike<number>, b: ArrayLike<number>, o: BootstrapOptions = {}): BootstrapInterval {
  if (a.length !== b.length) throw new LoupeError('bad-input', `paired bootstrap needs the same items: ${a.length} values under A, ${b.length} under B`);
  const diff = Float64Array.from({ length: a.length }, (_, i) => a[i]! - b[i]!);
  return bootstrapMeanCI(diff, o);
}

export type Category = string | number;

/** Total-variation distance ½ Σ_k |p_k − q_k| between the empirical distributions of two answer lists. */
export function totalVariationOfAnswers(a: readonly Category[], b: readonly Category[]): number {
  return tvOfCounts(a, b, undefined, undefined);
}

function tvOfCounts(a: readonly Category[], b: readonly Category[], ia: Int32Array | undefined, ib: Int32Array | undefined): number {
  const na = ia ? ia.length : a.length;
  const nb = ib ? ib.length : b.length;
  // Integer counts per answer, so equal lists give exactly 0 and disjoint ones exactly 1.
  const counts = new Map<Category, [number, number]>();
  for (let i = 0; i < na; i++) {
    const k = a[ia ? ia[i]! : i]!;
    const c = counts.get(k) ?? [0, 0];
    c[0]++;
    counts.set(k, c);
  }
  for (let i = 0; i < nb; i++) {
    const k = b[ib ? ib[i]! : i]!;
    const c = counts.get(k) ?? [0, 0];
    c[1]++;
    counts.set(k, c);
  }
  let s = 0;
  if (na === nb) {
    for (const [ca, cb] of counts.values()) s += Math.abs(ca - cb);
    return s / (2 * na);
  }
  for (const [ca, cb] of counts.values()) s += Math.abs(ca / na - cb / nb);
  return s / 2;
}

/**
 * Percentile CI of the total-variation distance between two answer distributions, resampling
 * items. `paired` (default true): a[i] and b[i] are the same item under two conditions (answer
 * vs blind answer), drawn together; false: two independent samples, each resampled on its own.
 * TV of empirical distributions is biased upwards (sampling noise alone makes it > 0), so a low
 * end above 0 is not by itself evidence of a difference — compare with a permutation null.
 */
export function bootstrapTotalVariationCI(a: readonly Category[], b: readonly Category[], o: BootstrapOptions & { paired?: boolean } = {}): BootstrapInterval {
  const { confidence } = settings(o);
  if (!a.length || !b.length) throw new LoupeError('bad-input', `TV bootstrap needs answers on both sides (${a.length} and ${b.length})`);
  const estimate = totalVariationOfAnswers(a, b);
  if (o.paired ?? true) {
    if (a.length !== b.length) throw new LoupeError('bad-input', `paired TV bootstrap needs the same items: ${a.length} answers under A, ${b.length} under B (set paired: false for independent samples)`);
    return percentileInterval(estimate, bootstrapDistribution(a.length, (idx) => tvOfCounts(a, b, idx, idx), o), confidence);
  }
  // Independent samples: one stream draws A's indices, a second (seed suffixed) B's.
  const { resamples, seed } = settings(o);
  const rngB = createRng('bootstrap', seed, 'b');
  const idxB = new Int32Array(b.length);
  const dist = bootstrapDistribution(a.length, (idxA) => {
    for (let i = 0; i < b.length; i++) idxB[i] = Math.floor(rngB.next() * b.length);
    return tvOfCounts(a, b, idxA, idxB);
  }, { ...o, resamples, seed });
  return percentileInterval(estimate, dist, confidence);
}
