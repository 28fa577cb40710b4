import { describe, expect, it } from 'vitest';
import { permutationTest } from '../../../src-shared/metrics/permutation.ts';

const meanDiff = (data: readonly number[]) => (labels: readonly number[]) => {
  let s1 = 0, n1 = 0, s0 = 0, n0 = 0;
  labels.forEach((l, i) => {
    if (l) {
      s1 += data[i]!;
      n1++;
    } else {
      s0 += data[i]!;
      n0++;
    }
  });
  return s1 / n1 - s0 / n0;
};

describe('permutation test', () => {
  it('p = (1 + #null ≥ observed) / (1 + n): 1/101 when no permutation reaches the observed split', () => {
    // 40 items, the 20 labelled 1 all larger than the 20 labelled 0: only the identity (1 in C(40,20)) reaches it.
    const data = Array.from({ length: 40 }, (_, i) => i);
    const labels = data.map((i) => (i >= 20 ? 1 : 0));
    const r = permutationTest(labels, meanDiff(data));
    expect(r.observed).toBe(20);
    expect(r.permutations).toBe(100);
    expect(r.nullDistribution).toHaveLength(100);
    expect(r.pValue).toBeCloseTo(1 / 101, 15);
    expect(Math.abs(r.nullMean)).toBeLessThan(3);
  });

  it('p = 1 when the statistic ignores the labels', () => {
    expect(permutationTest([1, 0, 1, 0], () => 0.5, { permutations: 20 }).pValue).toBe(1);
  });

  it('shuffles uniformly: the best of 6 labellings of 4 items is drawn about 1/6 of the time', () => {
    // data [4, 3, 2, 1], labels [1, 1, 0, 0]: mean difference 2 only for the identity split (1 of 6).
    const r = permutationTest([1, 1, 0, 0], meanDiff([4, 3, 2, 1]), { permutations: 3000, seed: 'uniform' });
    expect(r.observed).toBe(2);
    const share = r.nullDistribution.filter((v) => v >= 2).length / 3000;
    expect(Math.abs(share - 1 / 6)).toBeLessThan(4 * Math.sqrt((1 / 6) * (5 / 6) / 3000));
    expect(r.pValue).toBeCloseTo((1 + share * 3000) / 3001, 15);
  });

  it('keeps the label multiset, is seeded, and refuses fewer than 20 permutations', () => {
    const seen: string[] = [];
    permutationTest(['a', 'b', 'b', 'c'], (l) => {
      seen.push([...l].sort().join(''));
      return 0;
    });
    expect(new Set(seen)).toEqual(new Set(['abbc']));
    const stat = meanDiff([5, 1, 4, 2, 3, 0]);
    expect(permutationTest([1, 0, 1, 0, 1, 0], stat, { seed: 3 })).toEqual(permutationTest([1, 0, 1, 0, 1, 0], stat, { seed: 3 }));
    expect(() => permutationTest([1, 0], stat, { permutations: 19 })).toThrow(/at least 20 permutations/);
  });
});
