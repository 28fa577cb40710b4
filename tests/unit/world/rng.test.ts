import { describe, expect, it } from 'vitest';
import { createRng, hashSeed } from '../../../src-shared/world/rng.ts';
import { balancedIndex } from '../../../src-shared/world/balance.ts';

describe('world rng', () => {
  it('is a pure function of its seed parts', () => {
    const a = createRng(1, 'x');
    const b = createRng(1, 'x');
    const sa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(sa);
    const c = createRng(2, 'x');
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(sa);
    // Parts are delimited: ("1", "2x") and ("12", "x") are different streams.
    expect(hashSeed('1', '2x')).not.toEqual(hashSeed('12', 'x'));
  });

  it('draws uniform values in range', () => {
    const r = createRng('uniform');
    const hist = [0, 0, 0, 0, 0, 0];
    for (let i = 0; i < 60_000; i++) {
      const v = r.int(0, 5);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(5);
      hist[v]!++;
    }
    for (const h of hist) expect(Math.abs(h - 10_000)).toBeLessThan(400);
    const f = r.float(2, 3);
    expect(f >= 2 && f < 3).toBe(true);
    expect(r.shuffled([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it('balances answers exactly within each block', () => {
    for (const k of [2, 4, 5, 7]) {
      const counts = new Array<number>(k).fill(0);
      for (let i = 0; i < k * 9; i++) counts[balancedIndex(3, 't', 'test', i, k)]!++;
      expect(counts).toEqual(new Array<number>(k).fill(9));
    }
  });
});
