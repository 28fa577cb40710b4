/**
 * Streamed statistics (vlm-forward spec.stream) on the micro model: the key variance the
 * worker accumulates as items pass equals the one kv/key-tokens computes from the same run's
 * stored fp32 K/V; the streamed feature means and Gram matrices equal a recomputation from the
 * run's stored hidden states (plain loops here, float64); a run that streams but stores nothing
 * stores only its token maps and still answers kv/key-tokens; and the per-run result does not grow with items.
 */
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { readFileSync } from 'node:fs';
import type { Engine } from '../../src-main/engine/engine.ts';
import { streamedStatsPath } from '../../src-main/jobs/stream-request.ts';
import { streamedKeyTokens } from '../../src-main/experiments/inside-the-llm/streamed-key-variance.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

type KeyTokens = ResultOf<'kv/key-tokens'>;
const target = { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point' };

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

async function run(spec: object): Promise<string> {
  const r = await callEngine<{ id: string }>(engine, 'jobs/start', { ...target, spec });
  await engine.queue.drained();
  const info = engine.store.runs.get(r.id);
  expect(info.status, `${info.error} ${JSON.stringify(engine.store.runs.failures(r.id, 0, 1))}`).toBe('done');
  return r.id;
}

const statsFile = (runId: string) => streamedStatsPath(dirname(engine.store.blobs.root), runId);

describe('streamed statistics', () => {
  it('key variance streamed = key variance from the same run\'s stored K/V; features and Gram = recomputed from stored hidden states', async () => {
    const id = await run({ limit: 8, storeDtype: 'float32', taps: { imageKV: true, llmLayers: true }, stream: { keyVariance: true, features: [2], gram: [2] } });
    const stored = await callEngine<KeyTokens>(engine, 'kv/key-tokens', { runId: id, maxPerLayer: 1000 });
    const streamed = streamedKeyTokens(engine.store, id, { maxPerLayer: 1000 })!;
    expect(streamed.items).toBe(8);
    // kv/key-tokens took the stored K/V here (the run has them), the other the stream.
    expect(stored.rule).not.toContain('streamed');
    expect(streamed.layers.map((l) => l.layer)).toEqual([0, 1, 2, 3]);
    expect(stored.layers.map((l) => l.layer)).toEqual([0, 1, 2, 3]);
    const key = (r: KeyTokens['tokens'][number]) => `${r.layer}:${r.image}:${r.tile}:${r.row}:${r.col}`;
    const byKey = new Map(stored.tokens.map((r) => [key(r), r]));
    expect(streamed.tokens.length).toBe(stored.tokens.length);
    let worst = 0;
    for (const r of streamed.tokens) {
      const s = byKey.get(key(r))!;
      expect(s, key(r)).toBeDefined();
      worst = Math.max(worst, Math.abs(r.variance - s.variance) / Math.max(1e-30, s.variance));
      expect(r.items).toBe(s.items);
      expect(r.flagged).toBe(s.flagged);
      expect(r.meanNorm).toBeCloseTo(s.meanNorm, 9);
      expect(r.inputNormalised!).toBeCloseTo(s.inputNormalised!, 9);
    }
    expect(worst).toBeLessThan(1e-9);

    // Features and Gram at layer 2 from the stored fp32 hidden states (hidden_states.2 of the LLM), recomputed in float64.
    const file = decodeSafetensors(readFileSync(statsFile(id)));
    const items = engine.store.runs.results(id).map((r) => {
      const t: Record<string, HostTensor> = {};
      for (const b of new Set(r.tensors.map((x) => x.blob))) Object.assign(t, engine.store.blobs.getTensors(b));
      return t;
    });
    const hiddenName = Object.keys(items[0]!).find((n) => /hidden_states\.2$/.test(n))!;
    expect(hiddenName).toBeDefined();
    const width = items[0]![hiddenName]!.shape.at(-1)!;
    const positions = (t: Record<string, HostTensor>) => Array.from((t.image_token_map!.data as Int32Array).filter((_, i) => i % 5 === 0));
    const T = positions(items[0]!).length;
    const mean = new Float64Array(T * width);
    const gram = new Float64Array(width * width);
    for (const t of items) {
      const h = toFloat32(t[hiddenName]!);
      positions(t).forEach((p, j) => {
        for (let d = 0; d < width; d++) mean[j * width + d]! += h[p * width + d]! / items.length;
        for (let a = 0; a < width; a++) for (let b = 0; b < width; b++) gram[a * width + b]! += (h[p * width + a]! * h[p * width + b]!) / T / items.length;
      });
    }
    const meanStreamed = file.tensors['mean_features.2']!;
    const gramStreamed = file.tensors['gram.2']!;
    expect(meanStreamed.shape).toEqual([T, width]);
    expect(gramStreamed.shape).toEqual([width, width]);
    const rel = (got: Float32Array, want: Float64Array) => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < want.length; i++) {
        num = Math.max(num, Math.abs(got[i]! - want[i]!));
        den = Math.max(den, Math.abs(want[i]!));
      }
      return num / den;
    };
    expect(rel(meanStreamed.data as Float32Array, mean)).toBeLessThan(1e-6);
    expect(rel(gramStreamed.data as Float32Array, gram)).toBeLessThan(1e-6);
  });

  it('a stream-only run stores no K/V, answers kv/key-tokens, and its result does not grow with items', async () => {
    const few = await run({ limit: 3, taps: {}, stream: { keyVariance: true } });
    const many = await run({ limit: 12, taps: {}, stream: { keyVariance: true } });
    // Only the small image_token_map is stored per item (no K/V, no hidden states).
    for (const id of [few, many]) for (const r of engine.store.runs.results(id)) expect(r.tensors.map((t) => t.name)).toEqual(['image_token_map']);
    const kt = await callEngine<KeyTokens>(engine, 'kv/key-tokens', { runId: many });
    expect(kt.items).toBe(12);
    expect(kt.rule).toContain('streamed');
    expect(kt.layers).toHaveLength(4);
    // One file per run whose size depends on the places and layers, not on the item count (the digits of n aside).
    const a = statSync(statsFile(few)).size;
    const b = statSync(statsFile(many)).size;
    expect(Math.abs(a - b)).toBeLessThan(0.01 * a);
  });
});
