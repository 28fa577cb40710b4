import { describe, expect, it } from 'vitest';
import { gramCosine, gramVector, nearestMeanLeaveOneOut, nearestMeanShuffledAccuracy } from '../../src-shared/metrics/gram.ts';

describe('Gram-matrix readout', () => {
  it('gramVector is the upper triangle of FᵀF/n with off-diagonals weighted by √2', () => {
    // Two 2-vectors: (1, 2) and (3, 4). FᵀF = [[10, 14], [14, 20]], n = 2 → [[5, 7], [7, 10]].
    const g = gramVector([1, 2, 3, 4], 2);
    expect(Array.from(g)).toEqual([5, Math.fround(7 * Math.SQRT2), 10]);
    // So the dot product of two triangles is the Frobenius inner product of the full matrices.
    const h = gramVector([0, 1, 1, 0], 2); // [[0.5, 0], [0, 0.5]]
    const dot = g.reduce((s, v, i) => s + v * h[i]!, 0);
    expect(dot).toBeCloseTo(5 * 0.5 + 10 * 0.5, 5);
  });

  it('refuses a row count that is not whole', () => {
    expect(() => gramVector([1, 2, 3], 2)).toThrow(/whole number/);
  });

  it('nearest class mean, leave-one-out, on hand-made items', () => {
    // Class 0 points along x, class 1 along y; item 4 is a class-1 item that looks like class 0.
    const x = [[1, 0.1], [1, -0.1], [0.1, 1], [-0.1, 1], [1, 0]].map((r) => Float32Array.from(r));
    const y = [0, 0, 1, 1, 1];
    expect(nearestMeanLeaveOneOut(x, y, 2)).toEqual([0, 0, 1, 1, 0]);
    // Leave-one-out matters: item 0's own vector is excluded from class 0's mean, which is then item 1 alone.
    const lonely = [[1, 0], [0, 1], [0, 1]].map((r) => Float32Array.from(r));
    expect(nearestMeanLeaveOneOut(lonely, [0, 1, 1], 2)).toEqual([1, 1, 1]);
  });

  it('the shuffled-label control of a separable set is far below its accuracy', () => {
    const x = Array.from({ length: 40 }, (_, i) => Float32Array.from(i % 2 ? [1, 0.05 * (i % 5)] : [0.05 * (i % 7), 1]));
    const y = x.map((_, i) => i % 2);
    const p = nearestMeanLeaveOneOut(x, y, 2);
    expect(p.filter((v, i) => v === y[i]).length / y.length).toBe(1);
    expect(nearestMeanShuffledAccuracy(x, y, 2)).toBeLessThan(0.75);
  });
});

describe('gramCosine (kernel form) equals the cosine of explicitly formed Gram matrices', () => {
  it('matches FᵀF/n built entry by entry, for regions of different sizes', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const dim = 5;
    const a = Float64Array.from({ length: 7 * dim }, rand);
    const b = Float64Array.from({ length: 3 * dim }, rand);
    const gram = (x: Float64Array) => {
      const n = x.length / dim;
      const g = new Float64Array(dim * dim);
      for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) for (let r = 0; r < n; r++) g[i * dim + j]! += (x[r * dim + i]! * x[r * dim + j]!) / n;
      return g;
    };
    const ga = gram(a);
    const gb = gram(b);
    const dot = (x: Float64Array, y: Float64Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    const want = dot(ga, gb) / Math.sqrt(dot(ga, ga) * dot(gb, gb));
    expect(gramCosine(a, b, dim)).toBeCloseTo(want, 12);
    expect(gramCosine(a, a, dim)).toBeCloseTo(1, 12);
    expect(() => gramCosine(a, b.subarray(1), dim)).toThrow(/whole numbers/);
  });
});
