/**
 * The capture-size estimate (jobs/estimate) against the bytes a real micro-llava vlm-forward run
 * writes, for several capture selections; and jobs/start's refusal when the data folder is too
 * small (LOUPE_TEST_FREE_BYTES fakes the free space: capture-estimate.ts freeBytesOf).
 */
import { statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

interface Estimate {
  itemBytes: number;
  items: number;
  runBytes: number;
  freeBytes: number;
  fits: boolean;
}

const target = { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point' };

describe('capture estimate', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(() => engine?.close());
  afterEach(() => {
    delete process.env.LOUPE_TEST_FREE_BYTES;
  });

  /** Sum over the run's items of the size of each item's blob (an item's own bytes, even where two items share a blob). */
  function bytesWritten(runId: string): number {
    let total = 0;
    for (const r of engine.store.runs.results(runId)) for (const blob of new Set(r.tensors.map((t) => t.blob))) total += statSync(engine.store.blobs.pathOf(blob)).size;
    return total;
  }

  const selections: [string, object][] = [
    ['image K/V, fp16', { limit: 4, taps: { imageKV: true } }],
    ['everything, fp32', { limit: 3, storeDtype: 'float32', taps: { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true } }],
    ['layers 1,3 · head 0 · image rows · top-5 attention', { limit: 3, taps: { imageKV: true, llmLayers: true, attention: true, layers: [1, 3], heads: [0], tokens: 'image', attentionMode: 'topk', attentionTopK: 5 } }],
    ['question K/V + question rows, stride 2, head-summed attention', { limit: 3, taps: { promptKV: true, llmLayers: true, attention: true, tokens: 'question', tokenStride: 2, attentionMode: 'headsum', layerStride: 2 } }],
  ];

  it.each(selections)('%s: estimate within 5%% of the bytes written', async (_label, spec) => {
    const est = await callEngine<Estimate>(engine, 'jobs/estimate', { ...target, spec });
    const run = await callEngine<{ id: string }>(engine, 'jobs/start', { ...target, spec });
    await engine.queue.drained();
    const done = engine.store.runs.get(run.id);
    expect(done.status).toBe('done');
    const written = bytesWritten(run.id);
    expect(written).toBeGreaterThan(0);
    expect(est.items).toBe(done.total);
    expect(Math.abs(est.runBytes - written) / written).toBeLessThan(0.05);
    expect(est.freeBytes).toBeGreaterThan(0);
  });

  it('jobs/start refuses a run larger than the free space, naming both numbers, and writes no run', async () => {
    const spec = { limit: 4, storeDtype: 'float32', taps: { imageKV: true, llmLayers: true } };
    const est = await callEngine<Estimate>(engine, 'jobs/estimate', { ...target, spec });
    const before = engine.store.runs.list().length;
    process.env.LOUPE_TEST_FREE_BYTES = String(est.runBytes - 1);
    const refused = callEngine(engine, 'jobs/start', { ...target, spec });
    await expect(refused).rejects.toMatchObject({ code: 'storage' });
    const message = ((await refused.catch((e: Error) => e)) as Error).message;
    expect(message).toContain(`${est.runBytes} bytes`);
    expect(message).toContain(`${est.runBytes - 1} bytes`);
    expect(message).toMatch(/free space/i);
    expect(message).toContain('taps.layers');
    expect(engine.store.runs.list().length).toBe(before);
    // Exactly enough space: accepted.
    process.env.LOUPE_TEST_FREE_BYTES = String(est.runBytes);
    const ok = await callEngine<{ id: string }>(engine, 'jobs/start', { ...target, spec });
    await engine.queue.drained();
    expect(engine.store.runs.get(ok.id).status).toBe('done');
  });
});
