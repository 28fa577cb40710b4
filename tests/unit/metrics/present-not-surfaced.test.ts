import { describe, expect, it } from 'vitest';
import { presentNotSurfaced } from '../../../src-shared/metrics/present-not-surfaced.ts';

/** Deterministic pseudo-random bits. */
function bits(n: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 31;
  });
}

describe('present but not surfaced', () => {
  const n = 96;
  const truth = bits(n, 7);
  // The VLM answers wrong on every other item.
  const answerCorrect = truth.map((_, i) => i % 4 < 2);
  const wrong = answerCorrect.filter((c) => !c).length;

  it('140 readouts that carry no information flag at most 10% of wrong answers (any-stage counting flagged ~all)', () => {
    const stages = new Map(Array.from({ length: 140 }, (_, s) => [`s${s}`, bits(n, 100 + s)] as const));
    const anyStage = truth.filter((t, i) => !answerCorrect[i] && [...stages.values()].some((p) => p[i] === t)).length / wrong;
    expect(anyStage).toBeGreaterThan(0.8);
    const r = presentNotSurfaced(stages, truth, answerCorrect, 0.5);
    expect(r.rate).toBeLessThanOrEqual(0.1);
    expect(r.controlRate).toBeLessThanOrEqual(0.1);
  });

  it('an informative stage among noise is chosen on the other fold and flags exactly the wrong answers it gets right', () => {
    const informative = truth.map((t, i) => (i % 5 === 0 ? 1 - t : t)); // right on 80%
    const stages = new Map<string, number[]>([['noise', bits(n, 3)], ['layer.7', informative], ['noise2', bits(n, 4)]]);
    const r = presentNotSurfaced(stages, truth, answerCorrect, 0.5);
    expect(r.folds.map((f) => f.stage)).toEqual(['layer.7', 'layer.7']);
    expect(r.folds.every((f) => f.significant)).toBe(true);
    const expected = truth.flatMap((t, i) => (!answerCorrect[i] && informative[i] === t ? [i] : []));
    expect(r.items).toEqual(expected);
    expect(r.rate).toBeCloseTo(expected.length / wrong, 12);
    // With the predictions permuted across items the same stage carries nothing.
    expect(r.controlRate).toBeLessThan(0.1);
  });
});
