import { describe, expect, it } from 'vitest';
import { type AttentionSource, type ImageToken, headRow, layoutTokens, parseTokenMap, selectEdges, syntheticFlow, tensorAttention, traceFlow } from '../../../src-renderer/src/scene/flow-data.ts';

/** Rows given as nested arrays: att[layer][head][q][k]. */
function source(att: number[][][][]): AttentionSource {
  return { layers: att.length, heads: att[0]!.length, seq: att[0]![0]!.length, row: (l, h, q) => Float32Array.from(att[l]![h]![q]!) };
}

describe('token layout', () => {
  it('puts image tokens on their grid, text in a row below, centred', () => {
    // seq 6: text 0, a 2×2 image at positions 1..4 (row-major), text 5.
    const tokens: ImageToken[] = [0, 1, 2, 3].map((i) => ({ position: 1 + i, image: 0, tile: 0, row: i >> 1, col: i & 1 }));
    const l = layoutTokens(6, tokens, 1, 2);
    // Before centring: image (0,0) (1,0) (0,-1) (1,-1); text row at y = -(2-1) - 1 = -2: (0,-2), (1,-2).
    // Box x 0..1, y -2..0 → centre (0.5, -1).
    expect(Array.from(l.xy)).toEqual([-0.5, -1, -0.5, 1, 0.5, 1, -0.5, 0, 0.5, 0, 0.5, -1]);
    expect(Array.from(l.isImage)).toEqual([0, 1, 1, 1, 1, 0]);
    expect([l.width, l.height]).toEqual([1, 2]);
  });

  it('places two images side by side, gap cells apart', () => {
    const tokens: ImageToken[] = [
      { position: 0, image: 0, tile: 0, row: 0, col: 0 },
      { position: 1, image: 1, tile: 0, row: 0, col: 0 },
    ];
    const l = layoutTokens(2, tokens, 2);
    expect(l.xy[2]! - l.xy[0]!).toBe(3); // width 1 + gap 2
  });

  it('parses image_token_map rows', () => {
    const t = parseTokenMap({ dtype: 'int32', shape: [2, 5], data: Int32Array.from([7, 0, 0, 1, 2, 8, 1, 0, 3, 4]) });
    expect(t).toEqual([{ position: 7, image: 0, tile: 0, row: 1, col: 2 }, { position: 8, image: 1, tile: 0, row: 3, col: 4 }]);
  });
});

describe('edge selection', () => {
  // 1 layer, 2 heads, 3 tokens, causal.
  const att = [[
    [[1, 0, 0], [0.6, 0.4, 0], [0.1, 0.2, 0.7]],
    [[1, 0, 0], [0.2, 0.8, 0], [0.5, 0.5, 0]],
  ]];
  const src = source(att);

  it('aggregates heads: mean and max', () => {
    expect(Array.from(headRow(src, 0, 'mean', 2, new Float32Array(3)))).toEqual([0.30000001192092896, 0.3499999940395355, 0.3499999940395355]);
    expect(Array.from(headRow(src, 0, 'max', 1, new Float32Array(3)))).toEqual([0.6000000238418579, 0.800000011920929, 0]);
  });

  it('keeps weights ≥ threshold, skips zeros', () => {
    const e = selectEdges(src, { layerFrom: 0, layerTo: 0, head: 0, threshold: 0.5, maxEdges: 100 });
    // head 0: (q0,k0)=1, (q1,k0)=0.6, (q2,k2)=0.7
    expect(e.count).toBe(3);
    expect(Array.from(e.from)).toEqual([0, 0, 2]);
    expect(Array.from(e.to)).toEqual([0, 1, 2]);
    expect(Array.from(e.weight)).toEqual([1, 0.6000000238418579, 0.699999988079071]);
    expect(selectEdges(src, { layerFrom: 0, layerTo: 0, head: 0, threshold: 0, maxEdges: 100 }).count).toBe(6);
  });

  it('caps to the strongest maxEdges', () => {
    const e = selectEdges(src, { layerFrom: 0, layerTo: 0, head: 0, threshold: 0.05, maxEdges: 2 });
    expect(e.candidates).toBe(6);
    expect(e.truncated).toBe(true);
    expect(Array.from(e.weight)).toEqual([1, 0.699999988079071]);
  });

  it('reads stored [1, H, S, S] tensors by row', () => {
    const s = tensorAttention([{ dtype: 'float32', shape: [1, 2, 3, 3], data: Float32Array.from(att[0]!.flat(2)) }]);
    expect([s.layers, s.heads, s.seq]).toEqual([1, 2, 3]);
    expect(Array.from(s.row(0, 1, 1))).toEqual([0.20000000298023224, 0.800000011920929, 0]);
  });
});

describe('flow trace', () => {
  // 2 layers, seq 3. Layer 0: 0→1, 1→2 ; layer 1: 1→2, 2→2, 0→0.
  const e = {
    count: 5,
    layer: Uint16Array.from([0, 0, 1, 1, 1]),
    from: Uint32Array.from([0, 1, 1, 2, 0]),
    to: Uint32Array.from([1, 2, 2, 2, 0]),
    weight: new Float32Array(5).fill(1),
    truncated: false,
    candidates: 5,
  };

  it('backward from the top plane collects every edge feeding the token', () => {
    // (2, 2) ← layer 1 edges into 2: from 1 and 2 → (1,1), (1,2); ← layer 0: into 1 from 0, into 2 from 1.
    const t = traceFlow(e, 3, 2, 2, 'backward');
    expect(Array.from(t.edges)).toEqual([0, 1, 2, 3]);
    expect([...t.nodes].sort((a, b) => a - b)).toEqual([0 * 3 + 0, 0 * 3 + 1, 1 * 3 + 1, 1 * 3 + 2, 2 * 3 + 2]);
  });

  it('forward from the bottom plane', () => {
    // (0, 0) → layer 0: 0→1 → (1,1) → layer 1: 1→2 → (2,2).
    const t = traceFlow(e, 3, 0, 0, 'forward');
    expect(Array.from(t.edges)).toEqual([0, 2]);
    expect(t.nodes.size).toBe(3);
  });

  it('both directions from a middle plane', () => {
    // (1, 2): backward via edge 1 to (0,1); forward via edge 3 to (2,2).
    expect(Array.from(traceFlow(e, 3, 1, 2, 'both').edges)).toEqual([1, 3]);
  });
});

describe('synthetic flow', () => {
  it('is causal, normalised and deterministic', () => {
    const { source: s, tokens } = syntheticFlow({ layers: 2, heads: 2, grid: 4, textBefore: 2, textAfter: 3 });
    expect(s.seq).toBe(21);
    expect(tokens).toHaveLength(16);
    const r = Array.from(s.row(1, 1, 10));
    expect(r.slice(11).every((w) => w === 0)).toBe(true);
    expect(r.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(Array.from(s.row(1, 1, 10))).toEqual(r);
  });
});
