import { describe, expect, it } from 'vitest';
import { recoveryWithInterval } from '../../../src-shared/metrics/recovery.ts';

const ones = (n: number) => new Uint8Array(n).fill(1);
const pattern = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => (i < k ? 1 : 0));

describe('recovery with a paired bootstrap interval', () => {
  it('is (ablated − floor) / (intact − floor) on the data, with an interval around it', () => {
    // intact 40/40, ablated 30/40, chance 0.5: (0.75 − 0.5) / (1 − 0.5) = 0.5.
    const r = recoveryWithInterval(ones(40), pattern(40, 30), 0.5);
    expect(r.recovery).toBeCloseTo(0.5, 12);
    expect(r.intactAboveFloor).toBe(true);
    expect(r.interval![0]).toBeLessThanOrEqual(0.5);
    expect(r.interval![1]).toBeGreaterThanOrEqual(0.5);
    // Binomial sd of the ablated rate is √(.75·.25/40) ≈ 0.068 → recovery sd ≈ 0.137: a 95% interval about ±0.27 wide.
    expect(r.interval![1] - r.interval![0]).toBeGreaterThan(0.3);
    expect(r.interval![1] - r.interval![0]).toBeLessThan(0.8);
  });

  it('an ablation that changes nothing recovers exactly 1, with a degenerate interval', () => {
    const x = pattern(30, 25);
    const r = recoveryWithInterval(x, x, 0.25);
    expect(r.recovery).toBe(1);
    expect(r.interval).toEqual([1, 1]);
  });

  it('is not defined when the intact run is within noise of the floor (the 3.50 / −3.17 case)', () => {
    // intact 11/20 against chance 0.5: a span of 0.05 whose interval reaches 0.
    const r = recoveryWithInterval(pattern(20, 11), pattern(20, 17), 0.5);
    expect(r.recovery).toBeNull();
    expect(r.interval).toBeNull();
    expect(r.intactAboveFloor).toBe(false);
    expect(r.reason).toMatch(/within noise of 0: recovery is not defined/);
  });

  it('resamples a per-item blind floor with the items', () => {
    // Answer row: intact right on all 30, blind right on the first 10 (floor 1/3), ablated right on 20.
    const r = recoveryWithInterval(ones(30), pattern(30, 20), pattern(30, 10));
    expect(r.recovery).toBeCloseTo((20 / 30 - 10 / 30) / (1 - 10 / 30), 12);
    expect(r.interval![0]).toBeLessThan(r.recovery!);
    expect(r.interval![1]).toBeGreaterThan(r.recovery!);
  });

  it('refuses outcomes of different items', () => {
    expect(() => recoveryWithInterval(ones(3), ones(4), 0.5)).toThrow(/same items/);
  });
});
