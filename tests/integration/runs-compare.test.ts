/** Comparing saved runs and exporting a run's tensors for Python. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

async function run(spec: object): Promise<string> {
  const r: { id: string } = await call('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec });
  await engine.queue.drained();
  return r.id;
}

describe('runs/compare', () => {
  it('puts the VLM and its blind baseline side by side with differences computed per shared item', async () => {
    const seen = await run({ limit: 12, image: 'image' });
    const blind = await run({ limit: 8, image: 'blank' });
    const cmp: { sharedItems: number; metrics: { name: string; perRun: { mean: number; n: number; binary: boolean }[]; diffs: (number | null)[] }[] } = await call('runs/compare', { runIds: [seen, blind] });
    expect(cmp.sharedItems).toBe(8);
    const correct = cmp.metrics.find((m) => m.name === 'correct')!;
    const byHand = (id: string) => {
      const rs = engine.store.runs.results(id).slice(0, 8);
      return rs.reduce((s, r) => s + r.metrics.correct!, 0) / rs.length;
    };
    expect(correct.perRun.map((s) => s.n)).toEqual([8, 8]);
    expect(correct.perRun[0]!.binary).toBe(true);
    expect(correct.perRun[0]!.mean).toBeCloseTo(byHand(seen), 12);
    expect(correct.diffs[1]).toBeCloseTo(byHand(blind) - byHand(seen), 12);
    await expect(call('runs/compare', { runIds: [seen] })).rejects.toThrow(/runIds/);
  });
});

describe('runs/export-tensors', () => {
  it('writes one safetensors file with every item tensor and the run provenance', async () => {
    const id = await run({ limit: 3, storeDtype: 'float32', taps: { projector: true } });
    const out: { path: string; tensors: number } = await call('runs/export-tensors', { runId: id });
    expect(out.tensors).toBe(3 * 2); // projector + image_token_map per item
    const file = readFileSync(out.path);
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(file.buffer, file.byteOffset, file.byteLength));
    expect(metadata).toMatchObject({ run: id, kind: 'vlm-forward', model_hash: engine.store.models.get('micro-llava').hash });
    const first = engine.store.runs.results(id)[0]!;
    const meta = first.tensors.find((t) => t.name === 'projector')!;
    expect(Array.from(toFloat32(tensors[`${first.itemId}/projector`]!))).toEqual(Array.from(toFloat32(engine.store.blobs.getTensors(meta.blob).projector!)));
  });
});
