import { describe, expect, it } from 'vitest';
import { recovery, recoveryTable } from '../../../src-shared/metrics/recovery.ts';
import { compareRuns, summarize, wilson } from '../../../src-shared/metrics/summary.ts';

describe('metric summaries', () => {
  it('Wilson interval matches the textbook values', () => {
    // 8/10: Wilson 95% ≈ [0.4902, 0.9433]; 0/20 → [0, 0.1611].
    const [lo, hi] = wilson(8, 10);
    expect(lo).toBeCloseTo(0.4902, 3);
    expect(hi).toBeCloseTo(0.9433, 3);
    const [lo0, hi0] = wilson(0, 20);
    expect(lo0).toBe(0);
    expect(hi0).toBeCloseTo(0.1611, 3);
  });

  it('treats 0/1 metrics as binary and others with a t-free normal interval', () => {
    expect(summarize('correct', [1, 0, 1, 1])).toMatchObject({ n: 4, mean: 0.75, binary: true });
    const s = summarize('norm', [1, 2, 3, 4]);
    expect(s.binary).toBe(false);
    expect(s.mean).toBe(2.5);
    // sd = 1.2910, half-width = 1.96 · 1.2910 / 2 = 1.2652
    expect(s.high - s.mean).toBeCloseTo(1.2652, 3);
  });

  it('compares runs on their shared items and reports differences to the first run', () => {
    const a = [{ itemId: 'x', metrics: { correct: 1 } }, { itemId: 'y', metrics: { correct: 0 } }, { itemId: 'z', metrics: { correct: 1 } }];
    const b = [{ itemId: 'x', metrics: { correct: 0 } }, { itemId: 'y', metrics: { correct: 0 } }];
    const { metrics, sharedItems } = compareRuns([a, b]);
    expect(sharedItems).toBe(2);
    expect(metrics[0]!.perRun.map((s) => s!.mean)).toEqual([0.5, 0]);
    expect(metrics[0]!.diffs).toEqual([0, -0.5]);
  });
});


describe('recovery under ablation', () => {
  it('is (ablated − floor) / (intact − floor), null when intact is at the floor', () => {
    expect(recovery(0.7, 0.9, 0.5)).toBeCloseTo(0.5, 12);
    expect(recovery(0.5, 0.9, 0.5)).toBe(0);
    expect(recovery(0.9, 0.9, 0.5)).toBe(1);
    expect(recovery(0.6, 0.5, 0.5)).toBeNull();
    const t = recoveryTable([{ stage: 'enc', accuracy: 0.8 }, { stage: 'llm', accuracy: 0.6 }], [[{ stage: 'enc', accuracy: 0.2 }, { stage: 'llm', accuracy: 0.6 }]], () => 0.2);
    expect(t.map((r) => r.recovery[0])).toEqual([0, 1]);
    // Each stage its own floor: the answer against the blind answer (0.4), features against chance (0.25).
    const u = recoveryTable([{ stage: 'enc', accuracy: 0.75 }, { stage: 'answer', accuracy: 0.8 }], [[{ stage: 'enc', accuracy: 0.5 }, { stage: 'answer', accuracy: 0.6 }]], (s) => (s === 'answer' ? 0.4 : 0.25));
    expect(u[0]!.recovery[0]).toBeCloseTo(0.5, 12);
    expect(u[1]!.recovery[0]).toBeCloseTo(0.5, 12);
  });
});
