import { describe, expect, it } from 'vitest';
import { viridis } from '../../../src-renderer/src/scene/colormap.ts';
import type { ImageToken } from '../../../src-renderer/src/scene/flow-data.ts';
import { argmax, cosine, cosineMap, heatRgb, listStages, paintCells, pcaRgb, stageGrid } from '../../../src-renderer/src/scene/similarity.ts';

describe('cosine maps', () => {
  it('computes cosine on hand cases', () => {
    expect(cosine([1, 0], [0, 1])).toBe(0);
    expect(cosine([1, 0], [-2, 0])).toBe(-1);
    expect(cosine([1, 1], [1, 0])).toBeCloseTo(Math.SQRT1_2, 12);
    expect(cosine([0, 0], [1, 0])).toBe(0);
  });

  it('maps a query over a 2×2 grid and finds the best match', () => {
    const grid = { rows: 2, cols: 2, dim: 2, vecs: Float32Array.from([1, 0, 0, 1, -1, 0, 3, 4]) };
    const m = cosineMap([0.6, 0.8], grid);
    // [0.6, 0.8, -0.6, (1.8 + 3.2)/5 = 1]
    expect(Array.from(m).map((v) => +v.toFixed(6))).toEqual([0.6, 0.8, -0.6, 1]);
    expect(argmax(m)).toBe(3);
    expect(argmax([])).toBe(-1);
  });

  it('colours the map with viridis, the best cell at the top of the ramp', () => {
    const rgb = heatRgb([0, 0.5, 1]);
    expect(Array.from(rgb.subarray(0, 3))).toEqual([68, 1, 84]);
    expect(Array.from(rgb.subarray(6, 9))).toEqual([253, 231, 37]);
    expect(viridis(0.5)).toEqual([33, 144, 141]);
  });

  it('paints cells into canvas pixels', () => {
    // 1×2 cells on a 4×2 canvas: left half red, right half blue.
    const px = paintCells(Uint8Array.from([255, 0, 0, 0, 0, 255]), 1, 2, 4, 2);
    expect(Array.from(px.subarray(4, 8))).toEqual([255, 0, 0, 255]); // (1, 0)
    expect(Array.from(px.subarray((1 * 4 + 2) * 4, (1 * 4 + 2) * 4 + 4))).toEqual([0, 0, 255, 255]); // (2, 1)
  });
});

describe('stage grids', () => {
  it('orders stages vision → projector → LLM (hidden, K, V per layer)', () => {
    const names = ['image_kv.0.value', 'text.hidden_states.1', 'projector', 'image_kv.0.key', 'vision.hidden_states.1', 'text.hidden_states.0', 'vision.hidden_states.0', 'text.attentions.0'];
    expect(listStages(names).map((s) => s.label)).toEqual(['vision layer 0', 'vision layer 1', 'projector', 'LLM layer 0 hidden', 'LLM layer 0 K', 'LLM layer 0 V', 'LLM layer 1 hidden']);
  });

  it('drops CLS from vision states and indexes by image', () => {
    // 2 images, CLS + 2×2 patches, dim 1: values = image*10 + position.
    const data = Float32Array.from({ length: 10 }, (_, i) => Math.floor(i / 5) * 10 + (i % 5));
    const g = stageGrid({ kind: 'vision', layer: 0 }, { dtype: 'float32', shape: [2, 5, 1], data }, [], 1);
    expect([g.rows, g.cols, g.dim]).toEqual([2, 2, 1]);
    expect(Array.from(g.vecs)).toEqual([11, 12, 13, 14]);
  });

  it('gathers LLM hidden states and K heads through the token map', () => {
    // seq 4, dim 1 (value = position); image 0 is 1×2 at positions 3 (col 0) and 1 (col 1).
    const tokens: ImageToken[] = [
      { position: 1, image: 0, tile: 0, row: 0, col: 1 },
      { position: 3, image: 0, tile: 0, row: 0, col: 0 },
    ];
    const h = stageGrid({ kind: 'llm', layer: 0 }, { dtype: 'float32', shape: [1, 4, 1], data: Float32Array.from([0, 1, 2, 3]) }, tokens, 0);
    expect(Array.from(h.vecs)).toEqual([3, 1]);
    // K: [2 heads, 2 tokens, 1]: head h token j = 10h + j. Cell (0,0) is token j=1 → [1, 11].
    const k = stageGrid({ kind: 'key', layer: 0 }, { dtype: 'float32', shape: [2, 2, 1], data: Float32Array.from([0, 1, 10, 11]) }, tokens, 0);
    expect([k.dim, ...k.vecs]).toEqual([2, 1, 11, 0, 10]);
  });

  it('colours grids by a joint PCA: equal patches equal colours, the main axis ordered', () => {
    // Patches along one direction (x = 0, 1, 2, 3) with a small orthogonal wiggle.
    const a = { rows: 1, cols: 2, dim: 2, vecs: Float32Array.from([0, 0, 1, 0.1]) };
    const b = { rows: 1, cols: 2, dim: 2, vecs: Float32Array.from([2, 0, 0, 0]) };
    const [ra, rb] = pcaRgb([a, b]);
    expect(Array.from(ra!.subarray(0, 3))).toEqual(Array.from(rb!.subarray(3, 6)));
    const first = [ra![0]!, ra![3]!, rb![0]!];
    // The first component follows x (in one sign or the other): 0 and 2 at the extremes.
    expect([first[0], first[2]].sort((x, y) => x! - y!)).toEqual([0, 255]);
    expect(first[1]).toBeGreaterThan(Math.min(first[0]!, first[2]!));
    expect(first[1]).toBeLessThan(Math.max(first[0]!, first[2]!));
  });
});
