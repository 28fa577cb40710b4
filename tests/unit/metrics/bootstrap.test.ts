import { describe, expect, it } from 'vitest';
import { bootstrapDistribution, bootstrapMeanCI, bootstrapPairedDifferenceCI, bootstrapTotalVariationCI, quantileSorted, totalVariationOfAnswers } from '../../../src-shared/metrics/bootstrap.ts';
import { createRng } from '../../../src-shared/world/rng.ts';

describe('percentile bootstrap', () => {
  it('quantiles interpolate linearly between order statistics (numpy.percentile default)', () => {
    // numpy.percentile([1, 2, 3, 4], [25, 50, 90]) = [1.75, 2.5, 3.7]
    expect(quantileSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileSorted([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantileSorted([1, 2, 3, 4], 0.9)).toBeCloseTo(3.7, 15);
  });

  it('resamples with replacement: the bootstrap means of [0, 0, 1] follow Binomial(3, 1/3) / 3', () => {
    const data = [0, 0, 1];
    const B = 20000;
    const dist = bootstrapDistribution(3, (idx) => (data[idx[0]!]! + data[idx[1]!]! + data[idx[2]!]!) / 3, { resamples: B, seed: 'exact' });
    const freq = [0, 1, 2, 3].map((k) => dist.filter((v) => Math.round(v * 3) === k).length / B);
    const exact = [8 / 27, 12 / 27, 6 / 27, 1 / 27];
    // 4 standard errors of a proportion with B = 20000 is at most 0.0142.
    freq.forEach((f, k) => expect(Math.abs(f - exact[k]!)).toBeLessThan(4 * Math.sqrt((exact[k]! * (1 - exact[k]!)) / B)));
  });

  it('percentile interval of a two-point sample (hand-computed)', () => {
    // Means of resamples of [0, 10]: 0 (¼), 5 (½), 10 (¼). 95%: [0, 10]; 40% (quantiles 0.3, 0.7): [5, 5].
    const wide = bootstrapMeanCI([0, 10], { resamples: 4000 });
    expect([wide.estimate, wide.low, wide.high]).toEqual([5, 0, 10]);
    const narrow = bootstrapMeanCI([0, 10], { resamples: 4000, confidence: 0.4 });
    expect([narrow.low, narrow.high]).toEqual([5, 5]);
  });

  it('is deterministic per seed and changes with the seed', () => {
    const xs = Array.from({ length: 30 }, (_, i) => Math.sin(i) * 3);
    expect(bootstrapMeanCI(xs, { seed: 7 })).toEqual(bootstrapMeanCI(xs, { seed: 7 }));
    expect(bootstrapMeanCI(xs, { seed: 7 }).low).not.toBe(bootstrapMeanCI(xs, { seed: 8 }).low);
    expect(bootstrapMeanCI(xs).resamples).toBe(2000);
  });

  it('width matches the normal approximation 1.96·σ/√n for a large sample', () => {
    const rng = createRng('normal-width');
    const xs = Array.from({ length: 400 }, () => rng.next());
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    const ci = bootstrapMeanCI(xs, { resamples: 5000 });
    expect((ci.high - ci.low) / 2 / ((1.959964 * sd) / Math.sqrt(xs.length))).toBeGreaterThan(0.9);
    expect((ci.high - ci.low) / 2 / ((1.959964 * sd) / Math.sqrt(xs.length))).toBeLessThan(1.1);
  });

  it('95% intervals cover the true mean about 95% of the time', () => {
    // 300 samples of n = 40 from Uniform(0, 1) (true mean ½); percentile intervals run slightly
    // narrow for small n, so accept 0.89–0.99 (binomial sd of the rate at 300 trials ≈ 0.013).
    let covered = 0;
    const trials = 300;
    for (let t = 0; t < trials; t++) {
      const rng = createRng('coverage', t);
      const xs = Array.from({ length: 40 }, () => rng.next());
      const ci = bootstrapMeanCI(xs, { resamples: 1000, seed: t });
      if (ci.low <= 0.5 && 0.5 <= ci.high) covered++;
    }
    expect(covered / trials).toBeGreaterThan(0.89);
    expect(covered / trials).toBeLessThan(0.99);
  });

  it('paired differences resample items together', () => {
    const x = Array.from({ length: 50 }, (_, i) => Math.cos(i * 1.7) * 10);
    const ci = bootstrapPairedDifferenceCI(x.map((v) => v + 0.25), x);
    // Every item differs by exactly 0.25, so every resample does too (up to rounding).
    expect(ci.estimate).toBeCloseTo(0.25, 12);
    expect(ci.low).toBeCloseTo(0.25, 12);
    expect(ci.high).toBeCloseTo(0.25, 12);
    expect(() => bootstrapPairedDifferenceCI([1, 2], [1])).toThrow(/same items/);
  });

  it('refuses too few resamples, naming the option', () => {
    expect(() => bootstrapMeanCI([1, 2], { resamples: 10 })).toThrow(/resamples/);
  });
});

describe('total-variation bootstrap', () => {
  it('TV of answer distributions (hand-computed)', () => {
    // A: x ½, y ¼, z ¼; B: x ¼, y ¾ → ½(¼ + ½ + ¼) = ½.
    expect(totalVariationOfAnswers(['x', 'x', 'y', 'z'], ['x', 'y', 'y', 'y'])).toBeCloseTo(0.5, 15);
  });

  it('disjoint answers give TV 1 in every resample; identical lists give 0 at the estimate', () => {
    const a = Array.from({ length: 20 }, (_, i) => (i % 2 ? 'p' : 'q'));
    const sep = bootstrapTotalVariationCI(a, a.map(() => 'r'));
    expect([sep.estimate, sep.low, sep.high]).toEqual([1, 1, 1]);
    const same = bootstrapTotalVariationCI(a, a);
    expect([same.estimate, same.low, same.high]).toEqual([0, 0, 0]); // paired: the same items on both sides
    const indep = bootstrapTotalVariationCI(a, a, { paired: false });
    expect(indep.estimate).toBe(0);
    expect(indep.high).toBeGreaterThan(0); // independent resampling alone makes TV > 0: the upward bias
    expect(() => bootstrapTotalVariationCI(a, ['x'])).toThrow(/paired: false/);
  });

  it('the interval contains the estimate for a real difference', () => {
    const rng = createRng('tv');
    const a = Array.from({ length: 200 }, () => (rng.next() < 0.6 ? 'yes' : 'no'));
    const b = Array.from({ length: 200 }, () => (rng.next() < 0.4 ? 'yes' : 'no'));
    const ci = bootstrapTotalVariationCI(a, b);
    expect(ci.low).toBeLessThanOrEqual(ci.estimate);
    expect(ci.high).toBeGreaterThanOrEqual(ci.estimate);
    expect(ci.low).toBeGreaterThan(0.05);
  });
});
