/** The key-token finder's statistic, flag rule and blocking spec on hand-made tensors with hand-computed answers. */
import { describe, expect, it } from 'vitest';
import { AblationSpec } from '../../src-shared/ablation/spec.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { blockingSpec, keyTokens, layerStats, median, tokenVector } from '../../src-main/experiments/inside-the-llm/key-tokens.ts';
import type { Store } from '../../src-main/store/store.ts';
import { RunningVariance } from '../../src-shared/metrics/running-variance.ts';

const f32 = (shape: number[], data: number[]): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });

describe('RunningVariance (the key-token statistic)', () => {
  it('is (1/N) Σ ‖k − k̄‖², summed over dimensions, and tracks the mean norm', () => {
    const w = new RunningVariance(2);
    for (const v of [
      [1, 0],
      [3, 0],
      [2, 3],
    ])
      w.add(v);
    // dim 0: 1, 3, 2 → mean 2, Σ(d²) = 2; dim 1: 0, 0, 3 → mean 1, Σ(d²) = 1 + 1 + 4 = 6 → (2 + 6) / 3.
    expect(w.variance()).toBeCloseTo(8 / 3, 12);
    expect(w.meanNorm()).toBeCloseTo((1 + 3 + Math.sqrt(13)) / 3, 12);
    expect(() => w.add([1])).toThrow(/expected 2/);
  });

  it('addAt reads a row of a larger array (the streamed path) exactly as add reads the vector, and refuses a row past the end', () => {
    const rows = new RunningVariance(2);
    const vectors = new RunningVariance(2);
    const flat = [9, 1, 0, 3, 0, 2, 3];
    for (const at of [1, 3, 5]) rows.addAt(flat, at);
    for (const v of [[1, 0], [3, 0], [2, 3]]) vectors.add(v);
    expect([rows.n, rows.variance(), rows.meanNorm()]).toEqual([vectors.n, vectors.variance(), vectors.meanNorm()]);
    expect(() => rows.addAt(flat, 6)).toThrow(/runs past the 7 given/);
  });

  it('keeps a tiny variance on top of a huge mean (no sum-of-squares cancellation)', () => {
    const w = new RunningVariance(1);
    for (const v of [1e8 + 1, 1e8 - 1, 1e8 + 1, 1e8 - 1]) w.add([v]);
    expect(w.variance()).toBeCloseTo(1, 9);
  });
});

describe('layerStats (normalisation and flag rule)', () => {
  const v = [0, 4 / 3, 10 / 3, 20 / 3];
  it('normalises by the layer mean, z-scores by the layer sd, flags below threshold × median', () => {
    const s = layerStats(v, 0.25);
    const mean = 17 / 6;
    const sd = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / 4);
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.median).toBeCloseTo(7 / 3, 12);
    expect(s.normalised).toEqual(v.map((x) => x / s.mean));
    s.z.forEach((z, i) => expect(z).toBeCloseTo((v[i]! - mean) / sd, 12));
    expect(s.flagged).toEqual([true, false, false, false]); // 0 < 0.25 · 7/3; 4/3 is not
    expect(layerStats(v, 0.6).flagged).toEqual([true, true, false, false]); // 4/3 < 0.6 · 7/3 = 1.4
  });

  it('flags nothing in a layer of equal variances or with a zero median', () => {
    expect(layerStats([2, 2, 2, 2], 0.99).flagged).toEqual([false, false, false, false]);
    expect(layerStats([2, 2, 2, 2]).z).toEqual([0, 0, 0, 0]);
    expect(layerStats([0, 0, 0, 5], 1).flagged).toEqual([false, false, false, false]);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
  });
});

describe('tokenVector', () => {
  it('concatenates one token over the heads of a [heads, n, dim] tensor', () => {
    // heads 2, n 3, dim 2: value = 100h + 10j + x
    const t = f32([2, 3, 2], [0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121]);
    expect(Array.from(tokenVector(t, 1))).toEqual([10, 11, 110, 111]);
  });
});

describe('blockingSpec', () => {
  const slot = (patch: number) => ({ image: 0, tile: 0, row: patch < 0 ? -1 : Math.floor(patch / 8), col: patch < 0 ? -1 : patch % 8, patch });
  it('blocks text → the flagged patches per layer, sharing edits between layers with the same set', () => {
    const spec = blockingSpec(
      new Map([
        [0, [slot(5), slot(3)]],
        [1, []],
        [2, [slot(3), slot(5)]],
        [3, [slot(7), slot(-1)]],
      ]),
    )!;
    expect(AblationSpec.parse(spec)).toEqual(spec);
    expect(spec.edits).toEqual([
      { op: 'block', part: 'llm', layers: [0, 2], heads: 'all', queries: { kind: 'text' }, keys: { kind: 'patches', indices: [3, 5] }, excludeSelf: false },
      { op: 'block', part: 'llm', layers: [3], heads: 'all', queries: { kind: 'text' }, keys: { kind: 'patches', indices: [7] }, excludeSelf: false },
      { op: 'block', part: 'llm', layers: [3], heads: 'all', queries: { kind: 'text' }, keys: { kind: 'cls' }, excludeSelf: false },
    ]);
    expect(blockingSpec(new Map([[0, []]]))).toBeNull();
  });
});

describe('keyTokens over a hand-made run', () => {
  // 3 items; 2×2 grid at positions 1..4 (BOS at 0, text at 5 and 6); 2 KV heads × headDim 1.
  // Layer 0 keys: token 0 is [1, 1] in every item; token j > 0 is [i·j, −i] (item i) → variance
  // j²·(2/3) + 2/3: 4/3, 10/3, 20/3. Layer 1 keys: token j is [i, j] → 2/3 for every token.
  // Layer-0 values (the tokens' inputs) follow the layer-0 key pattern: token 0's input is constant too.
  const map = { dtype: 'int32' as const, shape: [4, 5], data: Int32Array.from([1, 0, 0, 0, 0, 2, 0, 0, 0, 1, 3, 0, 0, 1, 0, 4, 0, 0, 1, 1]) };
  const kv = (f: (i: number, j: number, h: number) => number, i: number) => f32([2, 4, 1], [0, 1].flatMap((h) => [0, 1, 2, 3].map((j) => f(i, j, h))));
  const layer0 = (i: number, j: number, h: number) => (j === 0 ? 1 : h === 0 ? i * j : -i);
  const layer1 = (i: number, j: number, h: number) => (h === 0 ? i : j);
  // Layer-0 attention, one head, 7 × 7: text query 5 gives position 1 (token 0) 0.5, query 6 gives it 0.3.
  const attention = () => {
    const a = new Array<number>(49).fill(0);
    a[5 * 7 + 1] = 0.5;
    a[6 * 7 + 1] = 0.3;
    a[6 * 7 + 2] = 0.2;
    return f32([1, 1, 7, 7], a);
  };
  const blobs: Record<string, Record<string, HostTensor>> = Object.fromEntries(
    [0, 1, 2].map((i) => [
      `b${i}`,
      { image_token_map: map, 'image_kv.0.key': kv(layer0, i), 'image_kv.0.value': kv(layer0, i), 'image_kv.1.key': kv(layer1, i), 'image_kv.1.value': kv(layer1, i), 'text.attentions.0': attention() },
    ]),
  );
  const run = { id: 'r1', kind: 'vlm-forward', name: 'hand', modelId: 'm', datasetId: 'd', spec: { limit: 3, taps: { imageKV: true } } };
  const store = {
    runs: {
      get: () => run,
      results: () => [0, 1, 2].map((i) => ({ itemId: `i${i}`, metrics: {}, values: {}, tensors: Object.keys(blobs[`b${i}`]!).map((name) => ({ name, blob: `b${i}` })) })),
    },
    // A blob folder with no streamed statistics beside it (run-stats/), as for a run that stored its K/V.
    blobs: { getTensors: (b: string) => blobs[b]!, root: '/nonexistent/loupe-data/blobs' },
  } as unknown as Store;

  it('lists per-layer variances, the flagged token, its attention, and the blocking run', () => {
    const r = keyTokens(store, 'r1', { maxPerLayer: 2 });
    expect(r.items).toBe(3);
    expect(r.layers).toEqual([
      { layer: 0, tokens: 4, meanVariance: expect.closeTo(17 / 6, 10), medianVariance: expect.closeTo(7 / 3, 10), flagged: 1 },
      { layer: 1, tokens: 4, meanVariance: expect.closeTo(2 / 3, 10), medianVariance: expect.closeTo(2 / 3, 10), flagged: 0 },
    ]);
    const l0 = r.tokens.filter((t) => t.layer === 0);
    expect(l0.map((t) => [t.row, t.col, t.patch, t.flagged])).toEqual([
      [0, 0, 0, true],
      [0, 1, 1, false],
    ]);
    expect(l0[0]!.variance).toBe(0);
    expect(l0[1]!.variance).toBeCloseTo(4 / 3, 10);
    expect(l0[1]!.normalised).toBeCloseTo(4 / 3 / (17 / 6), 10);
    expect(l0[0]!.meanNorm).toBeCloseTo(Math.SQRT2, 6);
    expect(l0[0]!.attention).toBeCloseTo(0.4, 6); // mean of 0.5 and 0.3 over the two text queries
    expect(l0[1]!.attention).toBeCloseTo(0.1, 6); // position 2: 0 and 0.2
    // Input variation from the layer-0 values (not from layer 1's): token 0 constant, token 1 at 4/3 ÷ 17/6.
    expect(l0[0]!.inputNormalised).toBe(0);
    expect(l0[1]!.inputNormalised).toBeCloseTo(4 / 3 / (17 / 6), 10);
    expect(r.tokens.find((t) => t.layer === 1 && t.patch === 0)!.inputNormalised).toBe(0);
    expect(r.tokens.filter((t) => t.layer === 1).every((t) => t.attention === null && !t.flagged)).toBe(true);
    expect(r.ablation).toEqual({ edits: [{ op: 'block', part: 'llm', layers: [0], heads: 'all', queries: { kind: 'text' }, keys: { kind: 'patches', indices: [0] }, excludeSelf: false }] });
    expect(r.blockingRun).toMatchObject({ kind: 'vlm-forward', modelId: 'm', datasetId: 'd', name: 'hand · key tokens blocked', spec: { limit: 3, taps: { imageKV: true }, ablation: r.ablation } });
  });

  it('with inputFloor, does not flag a token whose input never changes', () => {
    const r = keyTokens(store, 'r1', { inputFloor: 0.5 });
    expect(r.inputFloor).toBe(0.5);
    expect(r.layers.map((l) => l.flagged)).toEqual([0, 0]);
    expect(r.ablation).toBeNull();
    expect(r.blockingRun).toBeNull();
  });

  it('refuses runs without image keys or with a single item', () => {
    const one = { ...store, runs: { ...store.runs, results: () => store.runs.results('r1').slice(0, 1) } } as unknown as Store;
    expect(() => keyTokens(one, 'r1')).toThrow(/at least 2/);
    const none = { ...store, runs: { ...store.runs, results: () => [] } } as unknown as Store;
    expect(() => keyTokens(none, 'r1')).toThrow(/taps\.imageKV/);
  });
});
