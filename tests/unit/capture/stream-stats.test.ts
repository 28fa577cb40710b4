/**
 * Streaming statistics (compute/capture/stream-stats.ts) on hand-computed cases: key variance
 * = population variance summed over dimensions, per place; feature means; Gram Xᵀ X / T; and
 * the accumulators' retained bytes do not grow with the number of items.
 */
import { describe, expect, it } from 'vitest';
import { type StreamRequest, StreamStats } from '../../../src-main/compute/capture/stream-stats.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';

/** [1, heads, seq, dim] from rows[h][pos] = vector. */
function kv(rows: number[][][]): HostTensor {
  const heads = rows.length;
  const seq = rows[0]!.length;
  const dim = rows[0]![0]!.length;
  return { dtype: 'float32', shape: [1, heads, seq, dim], data: Float32Array.from(rows.flat(2)) };
}

const slots = [
  { key: '0:0:0:0', position: 1, image: 0, tile: 0, row: 0, col: 0 },
  { key: '0:0:0:1', position: 2, image: 0, tile: 0, row: 0, col: 1 },
];

describe('streamed statistics', () => {
  it('key variance per place = (1/N) Σ ‖k − k̄‖² over heads and dims, by hand', () => {
    const s = new StreamStats();
    const req: StreamRequest = { id: 'r', slots, keyVariance: { layers: [0] } };
    // Place 0:0:0:0 (position 1) keys over 3 items, 2 heads × 1 dim: (1,2), (3,2), (5,8).
    // Mean (3, 4); deviations² : (4+4)+(0+4)+(4+16) = 32 → variance 32/3.
    // Place 0:0:0:1 (position 2) is the same key every time → 0.
    const items = [
      [[[9], [1], [7]], [[9], [2], [7]]],
      [[[9], [3], [7]], [[9], [2], [7]]],
      [[[9], [5], [7]], [[9], [8], [7]]],
    ];
    for (const rows of items) s.add(req, (n) => (n === 'present.0.key' || n === 'present.0.value' ? kv(rows) : undefined));
    const kvr = JSON.parse(s.result().metadata.keyVariance!) as { layers: { layer: number; slots: { key: string; n: number; variance: number; meanNorm: number }[] }[] };
    const [a, b] = kvr.layers[0]!.slots;
    expect(a).toMatchObject({ key: '0:0:0:0', n: 3 });
    expect(a!.variance).toBeCloseTo(32 / 3, 12);
    expect(a!.meanNorm).toBeCloseTo((Math.hypot(1, 2) + Math.hypot(3, 2) + Math.hypot(5, 8)) / 3, 12);
    expect(b!.variance).toBe(0);
    expect(s.result().metadata.items).toBe('3');
  });

  it('feature means and Gram Xᵀ X / T, by hand', () => {
    const s = new StreamStats();
    const req: StreamRequest = { id: 'r', slots, features: [{ layer: 2, source: 'h' }], gram: [{ layer: 2, source: 'h' }] };
    // hidden [1, seq 3, width 2]; image tokens at positions 1, 2.
    const h1: HostTensor = { dtype: 'float32', shape: [1, 3, 2], data: Float32Array.from([0, 0, 1, 2, 3, 4]) };
    const h2: HostTensor = { dtype: 'float32', shape: [1, 3, 2], data: Float32Array.from([0, 0, 3, 0, 1, 0]) };
    s.add(req, () => h1);
    s.add(req, () => h2);
    const { tensors } = s.result();
    // Means per place: position 1: ((1,2)+(3,0))/2 = (2,1); position 2: ((3,4)+(1,0))/2 = (2,2).
    expect(Array.from(tensors['mean_features.2']!.data as Float32Array)).toEqual([2, 1, 2, 2]);
    // Item 1: X = [[1,2],[3,4]] → XᵀX = [[10,14],[14,20]] / 2 = [[5,7],[7,10]];
    // item 2: X = [[3,0],[1,0]] → [[10,0],[0,0]] / 2 = [[5,0],[0,0]]; mean [[5,3.5],[3.5,5]].
    expect(Array.from(tensors['gram.2']!.data as Float32Array)).toEqual([5, 3.5, 3.5, 5]);
  });

  it('retained bytes stay flat as items stream (2 items vs 50)', () => {
    const s = new StreamStats();
    const req: StreamRequest = { id: 'r', slots, keyVariance: { layers: [0, 1] }, features: [{ layer: 1, source: 'h' }], gram: [{ layer: 1, source: 'h' }] };
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5;
    const item = () => {
      const k: HostTensor = { dtype: 'float32', shape: [1, 2, 3, 4], data: Float32Array.from({ length: 24 }, rnd) };
      const h: HostTensor = { dtype: 'float32', shape: [1, 3, 8], data: Float32Array.from({ length: 24 }, rnd) };
      return (n: string) => (n === 'h' ? h : k);
    };
    for (let i = 0; i < 2; i++) s.add(req, item());
    const few = s.retainedBytes();
    for (let i = 0; i < 48; i++) s.add(req, item());
    // 2 layers × 2 places × (mean+M2) × 8 dims × 8 B + input (layer 0 values) 2 × 2 × 8 × 8 + features 2 × 2 × 8 × 8 + Gram 8 × 8 × 8.
    expect(few).toBe(2 * 2 * 2 * 8 * 8 + 2 * 2 * 8 * 8 + 2 * 2 * 8 * 8 + 8 * 8 * 8);
    expect(s.retainedBytes()).toBe(few);
  });
});
