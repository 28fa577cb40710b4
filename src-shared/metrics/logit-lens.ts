/**
 * Object-part identifiability through the LogitLens ("LLMs can compensate for deficient visual
 * representations"): at each LLM layer, an image token's hidden state is decoded with the
 * model's own final norm + lm_head into a vocabulary distribution; a part is identifiable at a
 * layer when its name ranks high at one of the tokens over it.
 *
 * - rank of a token in a row of logits: 1 + #{v : z_v > z_t} + #{v < t : z_v = z_t} — the
 *   position of t in a stable descending sort (ties broken towards the lower token id), 1 = top.
 *   Ranks of logits equal ranks of probabilities (softmax is monotonic).
 * - a part's rank at a layer: the best (lowest) rank over the image tokens covering its mask.
 * - per part × layer: median rank (mean of the two middle ranks for an even count) with a
 *   percentile-bootstrap 95 % interval (part instances resampled, bootstrap.ts), mean rank, and
 *   the top-k hit rate (rank ≤ k) with a Wilson 95 % interval (binary outcomes).
 */
import { type BootstrapOptions, bootstrapDistribution, percentileInterval } from './bootstrap.ts';
import { wilson } from './summary.ts';

/** Rank (1-based) of token `target` in `logits[offset … offset + vocab)`; ties go to the lower token id. */
export function tokenRank(logits: ArrayLike<number>, target: number, vocab = logits.length, offset = 0): number {
  if (!(target >= 0 && target < vocab)) throw new Error(`token ${target} is outside the vocabulary (0…${vocab - 1})`);
  const z = logits[offset + target]!;
  let rank = 1;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v]!;
    if (x > z || (x === z && v < target)) rank++;
  }
  return rank;
}

/** The part's rank: the best rank over its tokens. */
export function bestRank(ranks: readonly number[]): number {
  if (!ranks.length) throw new Error('a part needs at least one token to rank');
  return Math.min(...ranks);
}

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Percentile-bootstrap interval of the median (bootstrap.ts's resampling stream and percentile rule).
 * A resample's median is read from draw counts over the sorted values — O(n) per resample, no sort —
 * which is the same statistic as sorting the resample (ties are equal values either way).
 */
export function bootstrapMedianCI(values: readonly number[], o: BootstrapOptions = {}): { low: number; high: number } {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const counts = new Int32Array(n);
  const at = (k: number): number => {
    // The k-th (0-based) smallest of the resample.
    let c = 0;
    for (let i = 0; i < n; i++) if ((c += counts[i]!) > k) return sorted[i]!;
    return sorted[n - 1]!;
  };
  const dist = bootstrapDistribution(
    n,
    (idx) => {
      counts.fill(0);
      for (const i of idx) counts[i]!++;
      const m = n >> 1;
      return n % 2 ? at(m) : (at(m - 1) + at(m)) / 2;
    },
    o,
  );
  const { low, high } = percentileInterval(median(values), dist, o.confidence ?? 0.95);
  return { low, high };
}

/** Resamples for the lens's median intervals: fewer than bootstrap.ts's default, as a run has a row per part × layer. */
export const LENS_RESAMPLES = 1000;

export interface RankSummary {
  /** Part instances ranked. */
  n: number;
  medianRank: number;
  /** Percentile-bootstrap 95 % interval of the median rank. */
  medianLow: number;
  medianHigh: number;
  meanRank: number;
  /** Instances with rank ≤ topK. */
  hits: number;
  hitRate: number;
  /** Wilson 95 % interval of the hit rate. */
  hitLow: number;
  hitHigh: number;
}

export function summarizeRanks(ranks: readonly number[], topK: number): RankSummary {
  const n = ranks.length;
  const hits = ranks.filter((r) => r <= topK).length;
  const [hitLow, hitHigh] = wilson(hits, n);
  const ci = n ? bootstrapMedianCI(ranks, { resamples: LENS_RESAMPLES }) : { low: NaN, high: NaN };
  return { n, medianRank: median(ranks), medianLow: ci.low, medianHigh: ci.high, meanRank: n ? ranks.reduce((a, b) => a + b, 0) / n : NaN, hits, hitRate: n ? hits / n : NaN, hitLow, hitHigh };
}

/** Chance hit rate: a uniformly random rank among `vocab` is ≤ k with probability k / vocab. */
export const chanceHitRate = (topK: number, vocab: number): number => Math.min(1, topK / vocab);
