/** Zero-shot segmentation from the LLM's image value tokens vs a shuffled-token control. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

describe('KV-token segmentation', () => {
  it('segments the marked object from value tokens far better than a shuffled-token control', async () => {
    const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: 48, storeDtype: 'float32', taps: { imageKV: true } } });
    await engine.queue.drained();
    const rows = await call<{ layer: number; kind: string; items: number; miou: number; controlMiou: number }[]>('kv/segmentation', { runId: run.id });
    expect(rows.map((r) => `${r.layer}.${r.kind}`)).toEqual(['0.key', '0.value', '1.key', '1.value', '2.key', '2.value', '3.key', '3.value']);
    const v0 = rows.find((r) => r.layer === 0 && r.kind === 'value')!;
    console.log(rows.map((r) => `${r.layer}.${r.kind} mIoU ${r.miou.toFixed(3)} (control ${r.controlMiou.toFixed(3)})`).join('\n'));
    expect(v0.items).toBe(48);
    expect(v0.miou).toBeGreaterThan(v0.controlMiou + 0.2);
    expect(v0.miou).toBeGreaterThan(5 * v0.controlMiou);
    for (const r of rows) expect(r.miou).toBeGreaterThanOrEqual(0);
  });

  it('explains what is missing when the run has no K/V captures', async () => {
    const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: 2 } });
    await engine.queue.drained();
    await expect(call('kv/segmentation', { runId: run.id })).rejects.toThrow(/taps.imageKV/);
  });
});
