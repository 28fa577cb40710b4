/**
 * Every K/V probe figure is a function of per-item *sums*: each item contributes a few named
 * counts (PCK: correct and visible keypoints; class-wise mIoU: per-class intersection and union
 * pixels; J&F: summed per-object J and F and the object count …) and the figure is computed from
 * their totals. That one shape gives, for any figure:
 *
 * - the value: `finish(Σ items)`;
 * - a percentile bootstrap interval with items resampled (src-shared/metrics/bootstrap.ts): the
 *   same `finish` on the sums of each resample, so ratio metrics (ΣI/ΣU, Σcorrect/Σvisible) and
 *   class means are resampled as the statistic they are, not as a mean of per-item ratios;
 * - the shuffled control as a permutation null: permutation s is applied to every item at once
 *   and gives one null figure `finish(Σ items' null stats under s)`; the control reported is the
 *   mean of those figures and p = (1 + #{null ≥ observed}) / (1 + S), as permutation.ts
 *   (Phipson & Smyth 2010);
 * - a paired bootstrap interval of the difference between two runs over their shared items
 *   (kv/compare): both runs' sums drawn with the same item indices.
 */
import { bootstrapDistribution, percentileInterval } from '../../../src-shared/metrics/bootstrap.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

/** One item's contribution: named counts that add across items. */
export type Stat = Record<string, number>;
/** A figure from the summed stats (NaN when undefined, e.g. no visible keypoint). */
export type Finish = (sum: Stat) => number;

/** The smallest number of shuffled controls a figure may report (issue 22: ≥ 20 permutations). */
export const MIN_PERMUTATIONS = 20;

export interface StatisticsOptions {
  /** Shuffled controls per figure (≥ 20). */
  permutations: number;
  /** Bootstrap resamples (≥ 100). */
  resamples: number;
  /** Bootstrap seed. */
  seed: number;
}

export interface ItemStat {
  stat: Stat;
  /** The item's stat under each permutation s (length = permutations). */
  nulls: Stat[];
}

export interface Figure {
  value: number;
  /** 95% percentile bootstrap interval, items resampled. */
  low: number;
  high: number;
  /** Mean of the permutation null. */
  control: number;
  /** One-sided permutation p of value ≥ null. */
  p: number;
  permutations: number;
}

export function addInto(total: Stat, s: Stat): Stat {
  for (const k in s) total[k] = (total[k] ?? 0) + s[k]!;
  return total;
}

function sumOf(stats: readonly Stat[], idx?: Int32Array): Stat {
  const total: Stat = {};
  if (idx) for (let i = 0; i < idx.length; i++) addInto(total, stats[idx[i]!]!);
  else for (const s of stats) addInto(total, s);
  return total;
}

/** NaN-safe: a resample whose figure is undefined (no visible keypoint drawn) is left out of the interval. */
function interval(estimate: number, dist: Float64Array): { low: number; high: number } {
  const finite = dist.filter((v) => Number.isFinite(v));
  if (finite.length < dist.length / 2) return { low: NaN, high: NaN };
  const ci = percentileInterval(estimate, Float64Array.from(finite), 0.95);
  return { low: ci.low, high: ci.high };
}

export function figure(items: readonly ItemStat[], finish: Finish, o: StatisticsOptions): Figure {
  if (!items.length) throw new LoupeError('bad-input', 'a K/V probe figure needs at least one item');
  const stats = items.map((i) => i.stat);
  const value = finish(sumOf(stats));
  const dist = bootstrapDistribution(items.length, (idx) => finish(sumOf(stats, idx)), { resamples: o.resamples, seed: o.seed });
  const { low, high } = interval(value, dist);
  const S = items[0]!.nulls.length;
  if (S < MIN_PERMUTATIONS) throw new LoupeError('bad-input', `a K/V probe control needs at least ${MIN_PERMUTATIONS} permutations (option 'permutations'), got ${S}`);
  const nulls = Array.from({ length: S }, (_, s) => finish(sumOf(items.map((i) => i.nulls[s]!))));
  const finite = nulls.filter((v) => Number.isFinite(v));
  const control = finite.length ? finite.reduce((a, b) => a + b, 0) / finite.length : NaN;
  const p = (1 + finite.filter((v) => v >= value).length) / (1 + finite.length);
  return { value, low, high, control, p, permutations: S };
}

/** Paired bootstrap interval of finish(B) − finish(A) over items both runs scored (same indices drawn for both). */
export function pairedDifference(a: readonly Stat[], b: readonly Stat[], finish: Finish, o: StatisticsOptions): { delta: number; low: number; high: number } {
  if (a.length !== b.length || !a.length) throw new LoupeError('bad-input', `paired difference needs the same items in both runs (${a.length} and ${b.length})`);
  const delta = finish(sumOf(b)) - finish(sumOf(a));
  const dist = bootstrapDistribution(a.length, (idx) => finish(sumOf(b, idx)) - finish(sumOf(a, idx)), { resamples: o.resamples, seed: o.seed });
  return { delta, ...interval(delta, dist) };
}

// The figures in use, each a function of summed counts.

/** Σx / Σn: a mean over items (or keypoints, pixels …). */
export const meanOf =
  (x = 'x', n = 'n'): Finish =>
  (s) =>
    (s[n] ?? 0) > 0 ? (s[x] ?? 0) / s[n]! : NaN;

/** Mean over classes c with ΣU_c > 0 of ΣI_c / ΣU_c (keys `I:<class>`, `U:<class>`): class-wise mIoU. */
export const classMeanIoU: Finish = (s) => {
  let sum = 0;
  let n = 0;
  for (const k in s) {
    if (!k.startsWith('U:') || !(s[k]! > 0)) continue;
    sum += (s[`I:${k.slice(2)}`] ?? 0) / s[k]!;
    n++;
  }
  return n ? sum / n : NaN;
};

/** Mean over classes c of Σ<key>:c / Σn:c (co-segmentation: classes weigh the same). */
export const classMeanOf =
  (key: string): Finish =>
  (s) => {
    let sum = 0;
    let n = 0;
    for (const k in s) {
      if (!k.startsWith('n:') || !(s[k]! > 0)) continue;
      sum += (s[`${key}:${k.slice(2)}`] ?? 0) / s[k]!;
      n++;
    }
    return n ? sum / n : NaN;
  };

/** DAVIS J&F-Mean: (ΣJ/Σobjects + ΣF/Σobjects) / 2 with each object's per-frame mean J and F. */
export const davisJandF: Finish = (s) => ((s.objects ?? 0) > 0 ? ((s.J ?? 0) / s.objects! + (s.F ?? 0) / s.objects!) / 2 : NaN);
