import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { binomialCdf, chiSquareSurvival, lnGamma } from '../../../src-shared/metrics/distributions.ts';
import { mcnemar, mcnemarFromCounts } from '../../../src-shared/metrics/mcnemar.ts';

// Values from scipy / statsmodels (tools/metric-references/stats_reference.py).
interface McRow { b: number; c: number; exactP: number; statsmodelsExactStatistic: number; chiStatistic?: number; chiP?: number }
const ref = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/metric-references/stats.json'), 'utf8')) as {
  mcnemar: McRow[];
  chi2Sf: { x: number; df: number; sf: number }[];
  gammaln: { x: number; value: number }[];
  binomCdf: { k: number; n: number; p: number; cdf: number }[];
};

/** |a − b| relative to |b| (absolute below 1e-300). */
const relErr = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);

describe('distribution functions against scipy', () => {
  it('lnGamma matches scipy.special.gammaln to 1e-13 relative', () => {
    for (const r of ref.gammaln) expect(Math.abs(lnGamma(r.x) - r.value)).toBeLessThanOrEqual(1e-13 * Math.max(1, Math.abs(r.value)));
  });

  it('chi-square survival matches scipy.stats.chi2.sf to 1e-11 relative', () => {
    for (const r of ref.chi2Sf) expect(relErr(chiSquareSurvival(r.x, r.df), r.sf), `x=${r.x} df=${r.df}`).toBeLessThanOrEqual(1e-11);
  });

  it('binomial CDF matches scipy.stats.binom.cdf to 1e-11 relative', () => {
    for (const r of ref.binomCdf) expect(relErr(binomialCdf(r.k, r.n, r.p), r.cdf), `k=${r.k} n=${r.n} p=${r.p}`).toBeLessThanOrEqual(1e-11);
  });
});

describe('McNemar against scipy.stats.binomtest / chi2 and statsmodels', () => {
  it.each(ref.mcnemar.map((r) => [`b=${r.b} c=${r.c}`, r] as const))('%s', (_, r) => {
    const exact = mcnemarFromCounts(r.b, r.c, { method: 'exact-binomial' });
    expect(exact.test).toBe('exact-binomial');
    expect(relErr(exact.pValue, r.exactP)).toBeLessThanOrEqual(1e-11);
    expect(exact.statistic).toBe(r.statsmodelsExactStatistic);
    if (r.chiStatistic !== undefined) {
      const chi = mcnemarFromCounts(r.b, r.c, { method: 'chi-square-corrected' });
      expect(Math.abs(chi.statistic - r.chiStatistic)).toBeLessThanOrEqual(1e-12);
      expect(relErr(chi.pValue, r.chiP!)).toBeLessThanOrEqual(1e-11);
    }
    const auto = mcnemarFromCounts(r.b, r.c);
    expect(auto.test).toBe(r.b + r.c < 25 ? 'exact-binomial' : 'chi-square-corrected');
  });

  it('counts discordant pairs from per-item outcomes', () => {
    // Items: (A, B) = (1,1) (1,0) (1,0) (0,1) (0,0) (1,0) → b = 3, c = 1; exact p = 2·(1+4)/16 = 0.625.
    const r = mcnemar([1, 1, 1, 0, 0, 1], [1, 0, 0, 1, 0, 0]);
    expect([r.b, r.c, r.test]).toEqual([3, 1, 'exact-binomial']);
    expect(r.pValue).toBeCloseTo(0.625, 13);
    expect(() => mcnemar([1, 0], [1])).toThrow(/paired/);
  });
});
