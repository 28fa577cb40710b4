/**
 * "Visual representations inside the LLM" probes from image (and question) K/V tokens of real
 * vlm-forward runs on the micro model: segmentation (class-wise mIoU on pixels), point
 * correspondence (PCK), DAVIS mask propagation (J&F) and referring boxes, each against its
 * shuffled controls (≥ 20 permutations, null mean and p) with a bootstrap interval, or an
 * independent recomputation. The benchmark-format fixtures are in kv-benchmarks.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import type { DatasetManifest } from '../../src-shared/dataset/format.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

/** A kv/probes result row, as the contract types it. */
type Row = ResultOf<'kv/probes'>[number];

async function forward(datasetId: string, limit: number, taps: object): Promise<string> {
  const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId, spec: { limit, storeDtype: 'float32', taps } });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: limit, failed: 0 });
  return run.id;
}

const show = (rows: Row[]) => console.log(rows.map((r) => `${r.probe} ${r.metric} ${r.layer}.${r.kind} n=${r.items} ${r.value.toFixed(3)} (control ${r.control!.toFixed(3)})`).join('\n'));
const pick = (rows: Row[], probe: string, layer: number, kind: string, metric?: string) => rows.find((r) => r.probe === probe && r.layer === layer && r.kind === kind && (!metric || r.metric === metric))!;

describe('KV-token segmentation', () => {
  it('segments the marked object from value tokens far better than a shuffled-token control', async () => {
    const runId = await forward('colour-at-point', 48, { imageKV: true });
    const rows = await call<{ layer: number; kind: string; items: number; miou: number; controlMiou: number }[]>('kv/segmentation', { runId });
    expect(rows.map((r) => `${r.layer}.${r.kind}`)).toEqual(['0.key', '0.value', '1.key', '1.value', '2.key', '2.value', '3.key', '3.value']);
    const v0 = rows.find((r) => r.layer === 0 && r.kind === 'value')!;
    console.log(rows.map((r) => `${r.layer}.${r.kind} mIoU ${r.miou.toFixed(3)} (control ${r.controlMiou.toFixed(3)})`).join('\n'));
    expect(v0.items).toBe(48);
    expect(v0.miou).toBeGreaterThan(v0.controlMiou + 0.2);
    expect(v0.miou).toBeGreaterThan(5 * v0.controlMiou);
    for (const r of rows) expect(r.miou).toBeGreaterThanOrEqual(0);
    // kv/probes' segmentation rows are the same numbers.
    const probes = (await call<Row[]>('kv/probes', { runId })).filter((r) => r.probe === 'segmentation');
    expect(probes.map((r) => [r.layer, r.kind, r.items, r.value, r.control])).toEqual(rows.map((r) => [r.layer, r.kind, r.items, r.miou, r.controlMiou]));
  });

  it('few-shot: a linear token classifier trained on 8 items segments the other 40 far better than one trained on shuffled labels', async () => {
    const runId = await forward('colour-at-point', 48, { imageKV: true });
    // Two layers: 20 shuffled-label classifiers per tensor make every extra layer cost.
    const rows = (await call<Row[]>('kv/probes', { runId, layers: [0, 1] })).filter((r) => r.probe === 'segmentation-few-shot');
    show(rows);
    expect(rows.map((r) => `${r.layer}.${r.kind}`)).toEqual(['0.key', '0.value', '1.key', '1.value']);
    for (const r of rows) {
      expect(r).toMatchObject({ metric: 'class-wise mIoU (pixels, 8-shot)', items: 40, permutations: 20 });
      for (const x of [r.value, r.control!]) expect(x >= 0 && x <= 1).toBe(true);
    }
    const v0 = pick(rows, 'segmentation-few-shot', 0, 'value');
    expect(v0.value).toBeGreaterThan(v0.control! + 0.2);
    expect(v0.value).toBeGreaterThan(2 * v0.control!);
    // shots is a parameter: 4 training items leave 44 to evaluate.
    const four = pick(await call<Row[]>('kv/probes', { runId, shots: 4, layers: [0] }), 'segmentation-few-shot', 0, 'value');
    expect(four).toMatchObject({ metric: 'class-wise mIoU (pixels, 4-shot)', items: 44 });
  });

  it('explains what is missing when the run has no K/V captures', async () => {
    const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: 2 } });
    await engine.queue.drained();
    await expect(call('kv/segmentation', { runId: run.id })).rejects.toThrow(/taps.imageKV/);
  });
});

describe('KV-token correspondence and propagation', () => {
  it('finds corresponding points across two views from LLM layer-0 value tokens (PCK@0.1 ≫ shuffled control)', async () => {
    const runId = await forward('correspondence', 32, { imageKV: true });
    // The default capture is unchanged: no question K/V unless asked for.
    for (const r of engine.store.runs.results(runId)) expect(r.tensors.some((t) => t.name.startsWith('prompt_'))).toBe(false);
    const rows = await call<Row[]>('kv/probes', { runId, layers: [0, 1] });
    show(rows);
    // Two frames are no DAVIS sequence (it scores frames between the first and the last): no propagation rows.
    expect([...new Set(rows.map((r) => r.probe))]).toEqual(['segmentation', 'segmentation-few-shot', 'correspondence']);
    const v0 = pick(rows, 'correspondence', 0, 'value', 'PCK@0.1 (image size, per keypoint)');
    // The world's items have one keypoint and no object box: per keypoint = per image, normalised by the image size.
    expect(pick(rows, 'correspondence', 0, 'value', 'PCK@0.1 (image size, per image)').value).toBe(v0.value);
    expect(v0).toMatchObject({ items: 32, permutations: 20, encoding: 'one prompt' });
    expect(v0.notes.join(' ')).toMatch(/joint encoding.*imagesAlone/);
    expect(v0.value).toBeGreaterThan(v0.control! + 0.25);
    expect(v0.value).toBeGreaterThan(3 * v0.control!);
    expect(v0.p).toBeCloseTo(1 / 21, 12); // no permutation reached the observed PCK
    expect(v0.low! <= v0.value && v0.value <= v0.high!).toBe(true);
    for (const r of rows) for (const x of [r.value, r.control!]) expect(x >= 0 && x <= 1).toBe(true);
    // The default α list, per keypoint and per image.
    expect(rows.filter((r) => r.probe === 'correspondence' && r.layer === 0 && r.kind === 'value').map((r) => r.metric)).toEqual(
      [0.05, 0.1, 0.15].flatMap((a) => [`PCK@${a} (image size, per image)`, `PCK@${a} (image size, per keypoint)`]).sort((x, y) => x.localeCompare(y)),
    );
    // α is a parameter: a looser threshold can only admit more matches.
    const loose = pick(await call<Row[]>('kv/probes', { runId, alpha: 0.3, layers: [0] }), 'correspondence', 0, 'value', 'PCK@0.3 (image size, per keypoint)');
    expect(loose.value).toBeGreaterThanOrEqual(v0.value);
  });

  it('propagates the tracked object from the first to the last frame (J ≫ shuffled control)', async () => {
    const runId = await forward('temporal-correspondence', 32, { imageKV: true });
    const rows = await call<Row[]>('kv/probes', { runId, k: 5, layers: [0] });
    show(rows.filter((r) => r.probe !== 'segmentation'));
    const jf = pick(rows, 'propagation', 0, 'value', 'J&F-Mean (DAVIS)');
    const j = pick(rows, 'propagation', 0, 'value', 'J-Mean (DAVIS)');
    const f = pick(rows, 'propagation', 0, 'value', 'F-Mean (DAVIS)');
    expect(jf.items).toBe(32); // 4 frames with masks on each: every item is a sequence
    expect(jf.value).toBeCloseTo((j.value + f.value) / 2, 12);
    expect(jf.value).toBeGreaterThan(jf.control! + 0.1);
    expect(jf.value).toBeGreaterThan(3 * jf.control!);
    expect(jf.p).toBeCloseTo(1 / 21, 12);
    const pck = pick(rows, 'correspondence', 0, 'value', 'PCK@0.1 (image size, per keypoint)');
    expect(pck.value).toBeGreaterThan(pck.control! + 0.25);
  });
});

describe('KV-token referring expressions', () => {
  const manifest = JSON.parse(readFileSync(join(RESOURCES_DIR, 'datasets', 'referring', 'dataset.json'), 'utf8')) as DatasetManifest;
  const vocab = Object.entries((JSON.parse(readFileSync(join(RESOURCES_DIR, 'models', 'micro-llava', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab);
  const wordOf = new Map(vocab.map(([w, id]) => [id, w]));

  /** The referring score of one item, one layer × kind, written out from the tensors without the engine's helpers. */
  function recompute(itemId: string, tensors: Record<string, { shape: number[]; data: ArrayLike<number> }>, layer: number, kind: string): number {
    const item = manifest.items.find((i) => i.id === itemId)!;
    const label = item.labels.find((l) => l.kind === 'box')!;
    if (label.kind !== 'box') throw new Error('no box');
    const words = item.prompt!.split(' ');
    const expr = label.text!.split(' ');
    const start = words.findIndex((_, i) => expr.every((w, j) => words[i + j] === w));
    const ptm = tensors.prompt_token_map!.data;
    const textRows = Array.from({ length: ptm.length / 3 }, (_, r) => r).filter((r) => ptm[r * 3 + 2]! >= start && ptm[r * 3 + 2]! < start + expr.length);
    const vec = (t: { shape: number[]; data: ArrayLike<number> }, j: number) => {
      const [h, n, d] = t.shape as [number, number, number];
      return Array.from({ length: h * d }, (_, x) => Number(t.data[(Math.floor(x / d) * n + j) * d + (x % d)]));
    };
    const pt = tensors[`prompt_kv.${layer}.${kind}`]!;
    const it = tensors[`image_kv.${layer}.${kind}`]!;
    const rowsOfText = textRows.map((r) => vec(pt, r));
    const q = rowsOfText[0]!.map((_, x) => rowsOfText.reduce((s, v) => s + v[x]!, 0) / rowsOfText.length);
    const itm = tensors.image_token_map!.data;
    const sims = new Array<number>(64);
    for (let k = 0; k < itm.length / 5; k++) {
      const v = vec(it, k);
      const dot = v.reduce((s, x, i) => s + x * q[i]!, 0);
      sims[itm[k * 5 + 3]! * 8 + itm[k * 5 + 4]!] = dot / Math.sqrt(v.reduce((s, x) => s + x * x, 0) * q.reduce((s, x) => s + x * x, 0));
    }
    const mean = sims.reduce((s, x) => s + x, 0) / 64;
    const std = Math.sqrt(sims.reduce((s, x) => s + (x - mean) ** 2, 0) / 64);
    const peak = sims.indexOf(Math.max(...sims));
    const thr = Math.min(sims[peak]!, mean + std);
    const seen = new Set([peak]);
    const todo = [peak];
    while (todo.length) {
      const p = todo.pop()!;
      const [r, c] = [Math.floor(p / 8), p % 8];
      for (const [rr, cc] of [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]] as [number, number][]) {
        if (rr >= 0 && rr < 8 && cc >= 0 && cc < 8 && !seen.has(rr * 8 + cc) && sims[rr * 8 + cc]! >= thr) {
          seen.add(rr * 8 + cc);
          todo.push(rr * 8 + cc);
        }
      }
    }
    const rs = [...seen].map((p) => Math.floor(p / 8));
    const cs = [...seen].map((p) => p % 8);
    const px = 64 / 8; // 64×64 images on an 8×8 grid
    const box = [Math.min(...cs) * px, Math.min(...rs) * px, (Math.max(...cs) + 1) * px, (Math.max(...rs) + 1) * px];
    const g = label.box;
    const inter = Math.max(0, Math.min(box[2]!, g[2]) - Math.max(box[0]!, g[0])) * Math.max(0, Math.min(box[3]!, g[3]) - Math.max(box[1]!, g[1]));
    return inter / ((box[2]! - box[0]!) * (box[3]! - box[1]!) + (g[2] - g[0]) * (g[3] - g[1]) - inter);
  }

  it('captures K/V at the question tokens with their words, and grounds the expression as an independent recomputation does', async () => {
    const runId = await forward('referring', 12, { imageKV: true, promptKV: true });
    const results = engine.store.runs.results(runId);
    const tensorsOf = (i: number) => engine.store.blobs.getTensors(results[i]!.tensors[0]!.blob);
    // prompt_token_map: each stored token is the question word it claims to be; K/V per layer at those positions.
    for (let i = 0; i < results.length; i++) {
      const t = tensorsOf(i);
      const words = manifest.items.find((x) => x.id === results[i]!.itemId)!.prompt!.split(' ');
      const map = t.prompt_token_map!.data as Int32Array;
      expect(map.length / 3).toBe(words.length);
      for (let r = 0; r < map.length / 3; r++) expect(wordOf.get(map[r * 3 + 1]!)).toBe(words[map[r * 3 + 2]!]);
      expect(t['prompt_kv.0.value']!.shape).toEqual([2, words.length, 32]);
      expect(map[0]!).toBeGreaterThan(Math.max(...Array.from({ length: 64 }, (_, k) => (t.image_token_map!.data as Int32Array)[k * 5]!)));
    }

    const rows = (await call<Row[]>('kv/probes', { runId })).filter((r) => r.probe === 'referring');
    show(rows);
    // layers × key/value × (acc@IoU≥0.5, mean box IoU, mask mIoU, mask cIoU)
    expect(rows).toHaveLength(4 * 2 * 4);
    for (const r of rows) {
      expect(r.items).toBe(12);
      for (const x of [r.value, r.control!]) expect(x >= 0 && x <= 1).toBe(true);
    }
    // Every row is the mean of the per-item scores recomputed here from the stored tensors.
    for (const layer of [0, 1, 2, 3]) {
      for (const kind of ['key', 'value'] as const) {
        const ious = results.map((r, i) => recompute(r.itemId, toF32(tensorsOf(i)), layer, kind));
        expect(pick(rows, 'referring', layer, kind, 'mean box IoU').value).toBeCloseTo(ious.reduce((s, x) => s + x, 0) / ious.length, 9);
        expect(pick(rows, 'referring', layer, kind, 'acc@IoU≥0.5').value).toBeCloseTo(ious.filter((x) => x >= 0.5).length / ious.length, 9);
      }
    }
  });

  it('refuses runs without the K/V taps the probes need, naming the tap', async () => {
    const plain = await forward('correspondence', 2, {});
    await expect(call('kv/probes', { runId: plain })).rejects.toThrow(/taps\.imageKV/);
    const noPrompt = await forward('referring', 2, { imageKV: true });
    await expect(call('kv/probes', { runId: noPrompt })).rejects.toThrow(/taps\.promptKV/);
  });
});

function toF32(tensors: Record<string, { dtype: string; shape: number[]; data: unknown }>): Record<string, { shape: number[]; data: ArrayLike<number> }> {
  return Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, { shape: t.shape, data: t.dtype === 'int32' ? (t.data as Int32Array) : toFloat32(t as never) }]));
}
