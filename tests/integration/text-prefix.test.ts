/**
 * The text-prefix control (issue 6): `textPrefix` puts words in the user turn before the first
 * image, so every image token sits later by the prefix's token count. Checked on the micro model:
 *   - the prompt has the prefix right before `<image>` (and before the question without an image);
 *   - image_token_map positions shift by exactly the prefix's token count, the patch grid unchanged;
 *   - LLM layer-0 VALUES at the image tokens equal the unprefixed run's up to float error (a
 *     layer-0 value is a function of the token's own embedding alone), while layer-0 KEYS differ
 *     (RoPE rotates them by the new positions) and deeper layers' values differ (they attend to
 *     the prefix);
 *   - kv/compare gives the K/V probe table of both runs per layer; the layer-0 value rows agree,
 *     and so do the layer-0 key rows (a common RoPE shift keeps cosine similarities).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { VlmProcessing } from '../../src-main/engine/vlm/processing.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

const MODEL_DIR = join(RESOURCES_DIR, 'models', 'micro-llava');
const PREFIX = 'there are objects in the image';
const N = 32;

let engine: Engine;
let processing: VlmProcessing;
beforeAll(async () => {
  engine = await startTestEngine();
  processing = await VlmProcessing.load(MODEL_DIR, openModelFolder(MODEL_DIR).preprocessor);
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

function itemTensors(runId: string) {
  return engine.store.runs.results(runId).map((r) => {
    const t: Record<string, HostTensor> = {};
    for (const b of new Set(r.tensors.map((x) => x.blob))) Object.assign(t, engine.store.blobs.getTensors(b));
    return { itemId: r.itemId, metrics: r.metrics, values: r.values, t };
  });
}

function maxAbsDiff(a: HostTensor, b: HostTensor): { diff: number; scale: number } {
  const x = toFloat32(a);
  const y = toFloat32(b);
  expect(x.length).toBe(y.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return { diff, scale };
}

describe('text-prefix control', () => {
  it('puts the prefix in the user turn right before the first image (before the question without one)', () => {
    const q = 'what colour is the object at the marker ?';
    expect(processing.prompt(q, 1)).toBe(`USER: <image>\n${q} ASSISTANT:`);
    expect(processing.prompt(q, 1, { text: PREFIX, imageToken: '<image>' })).toBe(`USER: ${PREFIX} <image>\n${q} ASSISTANT:`);
    expect(processing.prompt(q, 2, { text: PREFIX, imageToken: '<image>' })).toBe(`USER: ${PREFIX} <image>\n<image>\n${q} ASSISTANT:`);
    expect(processing.prompt(q, 0, { text: PREFIX, imageToken: '<image>' })).toBe(`USER: ${PREFIX} ${q} ASSISTANT:`);
    expect(processing.prompt(q, 1, { text: '  ', imageToken: '<image>' })).toBe(processing.prompt(q, 1));
    expect(() => processing.prompt(q, 1, { text: 'a <image> b', imageToken: '<image>' })).toThrow(/must not contain the image placeholder/);
  });

  it('shifts the image tokens by the prefix length; layer-0 values stay, keys and deeper layers move; probes of both runs side by side', async () => {
    const prefixTokens = processing.tokenIdsOf(PREFIX);
    expect(prefixTokens).toHaveLength(6);
    expect(prefixTokens).not.toContain(3); // every word is in the micro vocabulary (3 = <unk>)
    const start = async (extra: object) => {
      const run = await call<RunInfo>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: N, storeDtype: 'float32', taps: { imageKV: true }, ...extra } });
      await engine.queue.drained();
      expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: N, failed: 0 });
      return run.id;
    };
    const plainId = await start({});
    const prefixedId = await start({ textPrefix: PREFIX });
    expect(engine.store.runs.get(prefixedId).spec.textPrefix).toBe(PREFIX);
    expect(engine.store.runs.get(plainId).spec.textPrefix).toBeUndefined();

    const plain = itemTensors(plainId);
    const prefixed = itemTensors(prefixedId);
    const worst = { value0: 0, key0: Infinity, deeper: Infinity };
    for (let i = 0; i < N; i++) {
      const a = plain[i]!;
      const b = prefixed[i]!;
      expect(b.itemId).toBe(a.itemId);
      expect(b.metrics.promptTokens).toBe(a.metrics.promptTokens! + prefixTokens.length);
      expect(String(b.values.prompt)).toBe(String(a.values.prompt).replace('USER: <image>', `USER: ${PREFIX} <image>`));
      const ma = a.t.image_token_map!.data as Int32Array;
      const mb = b.t.image_token_map!.data as Int32Array;
      expect(mb.length).toBe(ma.length);
      for (let r = 0; r < ma.length / 5; r++) {
        expect(mb[r * 5]).toBe(ma[r * 5]! + prefixTokens.length);
        expect(Array.from(mb.subarray(r * 5 + 1, r * 5 + 5))).toEqual(Array.from(ma.subarray(r * 5 + 1, r * 5 + 5)));
      }
      const v0 = maxAbsDiff(b.t['image_kv.0.value']!, a.t['image_kv.0.value']!);
      worst.value0 = Math.max(worst.value0, v0.diff / v0.scale);
      const k0 = maxAbsDiff(b.t['image_kv.0.key']!, a.t['image_kv.0.key']!);
      worst.key0 = Math.min(worst.key0, k0.diff / k0.scale);
      for (const layer of [1, 2, 3]) {
        const d = maxAbsDiff(b.t[`image_kv.${layer}.value`]!, a.t[`image_kv.${layer}.value`]!);
        worst.deeper = Math.min(worst.deeper, d.diff / d.scale);
      }
    }
    console.log('text prefix, relative max |Δ| over items:', { layer0Values: worst.value0, layer0KeysSmallest: worst.key0, deeperValuesSmallest: worst.deeper });
    expect(worst.value0).toBeLessThanOrEqual(1e-6);
    expect(worst.key0).toBeGreaterThan(1e-2);
    expect(worst.deeper).toBeGreaterThan(1e-3);

    const cmp = await call<ResultOf<'kv/compare'>>('kv/compare', { baseRunId: plainId, runId: prefixedId });
    console.log(
      `answer accuracy ${cmp.answer.base!.accuracy.toFixed(3)} → ${cmp.answer.other!.accuracy.toFixed(3)} with the prefix\n` +
        cmp.probes.map((r) => `${r.probe} ${r.metric} L${r.layer}.${r.kind}: ${r.base!.toFixed(3)} → ${r.other!.toFixed(3)} (Δ ${r.delta!.toFixed(3)}; controls ${r.baseControl!.toFixed(3)}, ${r.otherControl!.toFixed(3)})`).join('\n'),
    );
    expect(cmp.sharedItems).toBe(N);
    const seg = cmp.probes.filter((r) => r.probe === 'segmentation');
    expect(seg.map((r) => `${r.layer}.${r.kind}`)).toEqual(['0.key', '0.value', '1.key', '1.value', '2.key', '2.value', '3.key', '3.value']);
    for (const r of seg) {
      expect(r.items).toBe(N);
      for (const x of [r.base!, r.other!]) expect(x >= 0 && x <= 1).toBe(true);
      expect(r.delta).toBeCloseTo(r.other! - r.base!, 12);
    }
    // Identical layer-0 values (to float error) segment identically.
    expect(Math.abs(seg.find((r) => r.layer === 0 && r.kind === 'value')!.delta!)).toBeLessThanOrEqual(1e-9);
    // Layer-0 keys moved, but by the same RoPE shift for every image token: rotations compose, so
    // their cosine similarities — all the segmentation probe reads — stay (up to float rounding).
    expect(Math.abs(seg.find((r) => r.layer === 0 && r.kind === 'key')!.delta!)).toBeLessThanOrEqual(0.02);
    // Each run's table is kv/probes of that run.
    const own = (await call<{ probe: string; layer: number; kind: string; value: number }[]>('kv/probes', { runId: prefixedId })).filter((r) => r.probe === 'segmentation');
    expect(own.map((r) => r.value)).toEqual(seg.map((r) => r.other));
  });

  it('refuses a prefix that contains the image placeholder when the run is started, creating no run', async () => {
    const before = engine.store.runs.list().length;
    await expect(call<RunInfo>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: 1, textPrefix: 'look <image>' } })).rejects.toThrow(
      /textPrefix (must not contain the image placeholder|contains the model's special token) <image>/,
    );
    expect(engine.store.runs.list()).toHaveLength(before);
  });
});
