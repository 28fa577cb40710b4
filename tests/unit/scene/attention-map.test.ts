import { describe, expect, it } from 'vitest';
import { attentionOnImages } from '../../../src-renderer/src/scene/attention-map.ts';
import { type ImageToken, tensorAttention } from '../../../src-renderer/src/scene/flow-data.ts';

/**
 * Hand-made attention: 2 layers, 2 heads, seq 7 = text 0, image 0 as a 2×2 grid at positions
 * 1..4 (row-major), image 1 as a 1×1 grid at position 5, text 6 (the query).
 */
const SEQ = 7;
function tensor() {
  const data = new Float32Array(2 * 2 * SEQ * SEQ);
  const set = (l: number, h: number, q: number, row: number[]) => data.set(row, ((l * 2 + h) * SEQ + q) * SEQ);
  // Layer 1, query 6: head 0 and head 1.
  set(1, 0, 6, [0.3, 0.1, 0.2, 0.0, 0.05, 0.15, 0.2]);
  set(1, 1, 6, [0.1, 0.3, 0.0, 0.4, 0.05, 0.05, 0.1]);
  // Layer 0, query 6: everything on image 1.
  set(0, 0, 6, [0, 0, 0, 0, 0, 1, 0]);
  set(0, 1, 6, [0, 0, 0, 0, 0, 1, 0]);
  // Layer 1, query 3 (an image token): its own previous token.
  set(1, 0, 3, [0, 0, 0.5, 0.5, 0, 0, 0]);
  set(1, 1, 3, [0, 0, 0.5, 0.5, 0, 0, 0]);
  return [0, 1].map((l) => ({ dtype: 'float32' as const, shape: [1, 2, SEQ, SEQ], data: data.slice(l * 2 * SEQ * SEQ, (l + 1) * 2 * SEQ * SEQ) }));
}
const tokens: ImageToken[] = [
  ...[0, 1, 2, 3].map((i) => ({ position: 1 + i, image: 0, tile: 0, row: i >> 1, col: i & 1 })),
  { position: 5, image: 1, tile: 0, row: 0, col: 0 },
];

describe('attention on the image', () => {
  const src = tensorAttention(tensor());

  it('places one head’s weights from the query on each image’s grid', () => {
    const maps = attentionOnImages(src, tokens, 6, 1, 1);
    expect(maps.map((m) => [m.image, m.rows, m.cols])).toEqual([[0, 2, 2], [1, 1, 1]]);
    expect(Array.from(maps[0]!.values)).toEqual(Array.from(Float32Array.from([0.3, 0.0, 0.4, 0.05])));
    expect(maps[0]!.argmax).toBe(2); // row 1, col 0
    expect(maps[0]!.max).toBeCloseTo(0.4, 6);
    expect(Array.from(maps[1]!.values)).toEqual([Math.fround(0.05)]);
  });

  it('means over heads (and max), the default head filter', () => {
    const mean = attentionOnImages(src, tokens, 6, 1, 'mean');
    expect(Array.from(mean[0]!.values).map((v) => +v.toFixed(6))).toEqual([0.2, 0.1, 0.2, 0.05]);
    expect(mean[1]!.values[0]).toBeCloseTo(0.1, 6);
    expect(mean[0]!.argmax).toBe(0); // ties keep the first cell
    const max = attentionOnImages(src, tokens, 6, 1, 'max');
    expect(Array.from(max[0]!.values).map((v) => +v.toFixed(6))).toEqual([0.3, 0.2, 0.4, 0.05]);
  });

  it('follows the layer and the query', () => {
    const l0 = attentionOnImages(src, tokens, 6, 0, 'mean');
    expect(Array.from(l0[0]!.values)).toEqual([0, 0, 0, 0]);
    expect(l0[0]!.max).toBe(0);
    expect(l0[1]!.max).toBe(1);
    const q3 = attentionOnImages(src, tokens, 3, 1, 0);
    expect(Array.from(q3[0]!.values)).toEqual([0, 0.5, 0.5, 0]);
  });

  it('leaves cells with no image token at 0 and orders tiles within an image', () => {
    const sparse: ImageToken[] = [
      { position: 2, image: 0, tile: 1, row: 0, col: 1 },
      { position: 1, image: 0, tile: 0, row: 0, col: 0 },
    ];
    const maps = attentionOnImages(src, sparse, 6, 1, 1);
    expect(maps.map((m) => [m.tile, m.rows, m.cols])).toEqual([[0, 1, 1], [1, 1, 2]]);
    expect(Array.from(maps[1]!.values)).toEqual([0, 0]);
    expect(attentionOnImages(src, [], 6, 1, 0)).toEqual([]);
  });

  it('rejects out-of-range input with a bad-input error naming it', () => {
    expect(() => attentionOnImages(src, tokens, 7, 1, 0)).toThrow(/query position 7 is outside the sequence of 7/);
    expect(() => attentionOnImages(src, tokens, 6, 2, 0)).toThrow(/layer 2 is outside 0..1/);
    expect(() => attentionOnImages(src, tokens, 6, 1, 2)).toThrow(/head 2 is outside 0..1/);
    expect(() => attentionOnImages(src, [{ position: 9, image: 0, tile: 0, row: 0, col: 0 }], 6, 1, 0)).toThrow(expect.objectContaining({ code: 'bad-input' }));
  });
});
