import { describe, expect, it } from 'vitest';
import { cosine, fitSoftmax, probe, totalVariation } from '../../../src-shared/metrics/probe.ts';

function blobs(n: number, seed = 3): { x: Float32Array[]; y: number[] } {
  // Three well-separated Gaussian-ish clusters in 5-D (deterministic pseudo-noise).
  let s = seed;
  const noise = () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.6;
  const x: Float32Array[] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    x.push(Float32Array.from({ length: 5 }, (_, j) => (j === c ? 2 : 0) + noise()));
    y.push(c);
  }
  return { x, y };
}

describe('linear probe', () => {
  it('separates separable classes and the shuffled control stays near chance', () => {
    const { x, y } = blobs(90);
    const r = probe(x, y, 3, { folds: 5 });
    expect(r.accuracy).toBeGreaterThan(0.95);
    expect(r.shuffledAccuracy).toBeLessThan(0.6);
  });

  it('is at chance on features that carry no label', () => {
    const { x } = blobs(90);
    const y = x.map((_, i) => Math.floor(i / 3) % 3); // unrelated to the cluster
    expect(probe(x, y, 3).accuracy).toBeLessThan(0.55);
  });

  it('fits a hand-checkable 1-D threshold', () => {
    const x = [-2, -1, -0.5, 0.5, 1, 2].map((v) => Float32Array.of(v));
    const y = [0, 0, 0, 1, 1, 1];
    const f = fitSoftmax(x, y, 2, { epochs: 300 });
    expect([-3, -0.2, 0.2, 3].map((v) => f(Float32Array.of(v)))).toEqual([0, 0, 1, 1]);
  });
});

describe('distances', () => {
  it('total variation and cosine on hand-computed cases', () => {
    expect(totalVariation([0.5, 0.5, 0], [0, 0.5, 0.5])).toBeCloseTo(0.5, 12);
    expect(totalVariation([1, 0], [1, 0])).toBe(0);
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 2, 3], [2, 4, 6])).toBeCloseTo(1, 12);
    expect(cosine([1, 0], [-1, 0])).toBe(-1);
  });
});
