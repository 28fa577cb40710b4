/**
 * McNemar's test for paired binary outcomes (the same items scored correct/incorrect under two
 * conditions: model A vs B, intact vs ablated). Only the discordant pairs carry information:
 * b = items right under A and wrong under B, c = wrong under A and right under B; under H0
 * (equal accuracy) b ~ Binomial(b + c, ½).
 *
 * - Exact (small counts): two-sided binomial p = min(1, 2·P(X ≤ min(b, c))), X ~ Bin(b+c, ½) —
 *   what scipy.stats.binomtest(b, b+c, 0.5) gives for this symmetric case (1 when b = c);
 *   statistic = min(b, c) as statsmodels' `mcnemar(exact=True)` reports it.
 * - Chi-square with Edwards' continuity correction: (|b − c| − 1)² / (b + c), p from χ²(1) —
 *   statsmodels `mcnemar(exact=False, correction=True)`, unclamped as there (b = c gives 1/(b+c)).
 * `auto` (default) uses the exact test when b + c < 25, the common rule of thumb (the chi-square
 * approximation is for large discordant counts, as statsmodels' docs say of `exact=False`).
 */
import { LoupeError } from '../contract/errors.ts';
import { binomialCdf, chiSquareSurvival } from './distributions.ts';

export type McNemarMethod = 'exact-binomial' | 'chi-square-corrected';

export interface McNemarResult {
  /** Right under A, wrong under B. */
  b: number;
  /** Wrong under A, right under B. */
  c: number;
  statistic: number;
  pValue: number;
  test: McNemarMethod;
}

export interface McNemarOptions {
  /** 'auto' (default): exact below `exactBelow` discordant pairs, chi-square otherwise. */
  method?: 'auto' | McNemarMethod;
  /** Discordant-pair count from which 'auto' switches to chi-square (default 25). */
  exactBelow?: number;
}

export function mcnemarFromCounts(b: number, c: number, o: McNemarOptions = {}): McNemarResult {
  if (!(Number.isInteger(b) && Number.isInteger(c) && b >= 0 && c >= 0)) throw new LoupeError('bad-input', `McNemar counts must be non-negative integers, got b=${b}, c=${c}`);
  const n = b + c;
  const method = o.method ?? 'auto';
  // No discordant pairs: no evidence either way; the chi-square statistic would be 0/0.
  const test: McNemarMethod = n === 0 ? 'exact-binomial' : method === 'auto' ? (n < (o.exactBelow ?? 25) ? 'exact-binomial' : 'chi-square-corrected') : method;
  if (test === 'exact-binomial') {
    const k = Math.min(b, c);
    const pValue = n === 0 || b === c ? 1 : Math.min(1, 2 * binomialCdf(k, n, 0.5));
    return { b, c, statistic: k, pValue, test };
  }
  const statistic = (Math.abs(b - c) - 1) ** 2 / n;
  return { b, c, statistic, pValue: chiSquareSurvival(statistic, 1), test };
}

/** McNemar on per-item outcomes of the same items under A and B (truthy = correct). */
export function mcnemar(a: ArrayLike<boolean | number>, bOutcomes: ArrayLike<boolean | number>, o: McNemarOptions = {}): McNemarResult {
  if (a.length !== bOutcomes.length) throw new LoupeError('bad-input', `McNemar needs paired outcomes: ${a.length} items under A but ${bOutcomes.length} under B`);
  let b = 0;
  let c = 0;
  for (let i = 0; i < a.length; i++) {
    const x = !!a[i];
    const y = !!bOutcomes[i];
    if (x && !y) b++;
    else if (!x && y) c++;
  }
  return mcnemarFromCounts(b, c, o);
}
