/**
 * `imagesAlone`: multi-image items take each image's K/V from a pass with that image alone (as
 * the papers encode images), not from the one prompt where the second image's tokens attended to
 * the first (issue 22 error 9). Checked against a direct single-image forward pass.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { gatherSequence } from '../../src-main/engine/vlm/slicing.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { relativeError } from '../helpers/reference.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());
const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

async function forward(spec: object): Promise<string> {
  const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'correspondence', spec: { limit: 3, storeDtype: 'float32', taps: { imageKV: true }, ...spec } });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', failed: 0 });
  return run.id;
}

const tensorsOf = (runId: string, k: number): Record<string, HostTensor> => {
  const r = engine.store.runs.results(runId)[k]!;
  const out: Record<string, HostTensor> = {};
  for (const blob of new Set(r.tensors.map((t) => t.blob))) Object.assign(out, engine.store.blobs.getTensors(blob));
  return out;
};

/** Tokens of image `image` (rows of image_token_map) from a [heads, n, dim] tensor, as a flat array. */
function imageRows(t: Record<string, HostTensor>, name: string, image: number): Float32Array {
  const map = t.image_token_map!.data as Int32Array;
  const [heads = 0, n = 0, dim = 0] = t[name]!.shape;
  const f = toFloat32(t[name]!);
  const ks = Array.from({ length: map.length / 5 }, (_, k) => k).filter((k) => map[k * 5 + 1] === image);
  const out = new Float32Array(heads * ks.length * dim);
  for (let h = 0; h < heads; h++) ks.forEach((k, j) => out.set(f.subarray((h * n + k) * dim, (h * n + k + 1) * dim), (h * ks.length + j) * dim));
  return out;
}

describe('imagesAlone', () => {
  it("stores each image's K/V from its own pass: equal to a single-image forward, unlike the one-prompt K/V", async () => {
    const alone = await forward({ imagesAlone: true });
    const joint = await forward({});
    const a = tensorsOf(alone, 0);
    const j = tensorsOf(joint, 0);
    expect(engine.store.runs.results(alone)[0]!.values.imageKv).toBe('each image alone');
    expect(a.image_token_map!.shape).toEqual(j.image_token_map!.shape);

    // The second image's tokens from a forward pass with that image only.
    const item = engine.store.datasets.item('correspondence', engine.store.runs.results(alone)[0]!.itemId);
    const dataset = engine.store.datasets.get('correspondence');
    const folder = openModelFolder(engine.store.models.get('micro-llava').path);
    const vlm = await Vlm.open(folder, engine.compute, 'images-alone-check');
    const single = await vlm.forward(item.prompt!, { kind: 'files', paths: [join(dataset.path, item.images[1]!)] }, { decoderTaps: ['present.1.value'] });
    const direct = toFloat32(gatherSequence(single.taps['present.1.value']!, single.imageTokens.map((t) => t.position)));
    expect(relativeError(imageRows(a, 'image_kv.1.value', 1), direct)).toBe(0);
    // In the one prompt the second image attended to the first: its layer-1 values differ.
    expect(relativeError(imageRows(j, 'image_kv.1.value', 1), direct)).toBeGreaterThan(1e-3);
    // The first image comes first in both prompts: the same K/V either way.
    expect(relativeError(imageRows(a, 'image_kv.1.value', 0), imageRows(j, 'image_kv.1.value', 0))).toBeLessThan(1e-6);

    const rows = await call<{ probe: string }[]>('kv/probes', { runId: alone });
    expect(rows.some((r) => r.probe === 'correspondence')).toBe(true);
    await expect(call('kv/key-tokens', { runId: alone })).rejects.toThrow(/imagesAlone/);
  });
});
