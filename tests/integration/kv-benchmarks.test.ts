/**
 * The K/V probes on the benchmarks' own formats, end to end: SPair-71k, DAVIS-2017 and RefCOCO
 * fixtures (tests/fixtures/benchmarks/, published layouts) imported through
 * `datasets/import-benchmark`, a vlm-forward of the bundled micro-llava with taps.imageKV and
 * imagesAlone, then `kv/probes`. Every figure is recomputed here from the stored K/V tensors with
 * the protocols written out plainly — the pixel → token map derived by hand from micro-llava's
 * preprocessor_config (CLIP: shortest edge → 64, centre crop 64×64, 8×8 patches), SPair's
 * nearest-neighbour transfer, DIFT's label propagation with its dense affinity matrix, the
 * referring region rule — and scored with the verified metric definitions (pck.ts keypoint rule,
 * davis.ts `davisSequence`, plain IoU sums). Rows must also carry a bootstrap interval holding the
 * estimate and ≥ 20 permutations.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { imageSize, readMask } from '../../src-main/experiments/inside-the-llm/images.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import type { DatasetItem, Label } from '../../src-shared/dataset/format.ts';
import { type PixelImage, davisSequence } from '../../src-shared/metrics/davis.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

const FIXTURES = resolve(__dirname, '../fixtures/benchmarks');

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());
const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

/** A kv/probes result row, as the contract types it. */
type Row = ResultOf<'kv/probes'>[number];

const GRID = 8;
const VIEW = 64;

/** micro-llava's view of a W×H image, from its preprocessor_config: resize the shortest edge to 64 (transformers.js rounding), centre-crop 64×64. */
function viewOf(width: number, height: number) {
  const f = Math.max(VIEW / width, VIEW / height);
  const w = Math.floor(Number((width * f).toFixed(2)));
  const h = Math.floor(Number((height * f).toFixed(2)));
  const sx = w / width;
  const sy = h / height;
  const left = Math.floor((w - VIEW) / 2);
  const top = Math.floor((h - VIEW) / 2);
  return {
    /** Cell of a continuous coordinate, or −1 when cropped away. */
    cell(x: number, y: number): number {
      const vx = x * sx - left;
      const vy = y * sy - top;
      if (vx < 0 || vy < 0 || vx > VIEW || vy > VIEW) return -1;
      return Math.min(GRID - 1, Math.floor((vy * GRID) / VIEW)) * GRID + Math.min(GRID - 1, Math.floor((vx * GRID) / VIEW));
    },
    centre(cell: number): [number, number] {
      const r = Math.floor(cell / GRID);
      const c = cell % GRID;
      return [((c + 0.5) * (VIEW / GRID) + left) / sx, ((r + 0.5) * (VIEW / GRID) + top) / sy];
    },
    /** Grid coordinates (align_corners=False) of a pixel centre, or null when cropped. */
    gridAt(px: number, py: number): [number, number] | null {
      const vx = (px + 0.5) * sx - left;
      const vy = (py + 0.5) * sy - top;
      if (vx < 0 || vy < 0 || vx > VIEW || vy > VIEW) return null;
      return [(vx * GRID) / VIEW - 0.5, (vy * GRID) / VIEW - 0.5];
    },
  };
}

/** Unit token vectors of image `image` in grid order, from a stored [heads, n, dim] tensor and image_token_map. */
function unitTokens(t: Record<string, HostTensor>, name: string, image: number): number[][] {
  const map = t.image_token_map!.data as Int32Array;
  const [heads = 0, n = 0, dim = 0] = t[name]!.shape;
  const f = toFloat32(t[name]!);
  const out: number[][] = new Array(GRID * GRID);
  for (let k = 0; k < map.length / 5; k++) {
    if (map[k * 5 + 1] !== image) continue;
    const v: number[] = [];
    for (let h = 0; h < heads; h++) for (let j = 0; j < dim; j++) v.push(f[(h * n + k) * dim + j]!);
    const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    out[map[k * 5 + 3]! * GRID + map[k * 5 + 4]!] = v.map((x) => x / norm);
  }
  return out;
}
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

function tensorsOf(runId: string, itemId: string): Record<string, HostTensor> {
  const r = engine.store.runs.results(runId).find((x) => x.itemId === itemId)!;
  const out: Record<string, HostTensor> = {};
  for (const blob of new Set(r.tensors.map((t) => t.blob))) Object.assign(out, engine.store.blobs.getTensors(blob));
  return out;
}

async function importBenchmark(format: string, path: string, options: object): Promise<{ id: string; path: string }> {
  const r = await call<{ dataset: { id: string; path: string } }>('datasets/import-benchmark', { format, path, options });
  return r.dataset;
}

async function items(datasetId: string): Promise<DatasetItem[]> {
  const r = await call<{ items: { id: string }[] }>('datasets/items', { datasetId, offset: 0, limit: 1000 });
  return r.items.map((i) => engine.store.datasets.item(datasetId, i.id));
}

async function forward(datasetId: string, spec: object): Promise<string> {
  const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId, spec: { storeDtype: 'float32', imagesAlone: true, ...spec, taps: { imageKV: true, ...(spec as { taps?: object }).taps } } });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', failed: 0 });
  return run.id;
}

const pick = (rows: Row[], probe: string, metric: string, layer: number, kind: string) => {
  const r = rows.find((x) => x.probe === probe && x.metric === metric && x.layer === layer && x.kind === kind);
  if (!r) throw new Error(`no row ${probe} ${metric} ${layer}.${kind}`);
  return r;
};

/** Every row: CI around the estimate, ≥ 20 permutations, p in (0, 1], encoded each image alone. */
function expectStatistics(rows: Row[]): void {
  for (const r of rows) {
    expect(r.permutations).toBeGreaterThanOrEqual(20);
    expect(r.p > 0 && r.p <= 1).toBe(true);
    if (r.low !== null && r.high !== null) {
      expect(r.low).toBeLessThanOrEqual(r.value + 1e-12);
      expect(r.high).toBeGreaterThanOrEqual(r.value - 1e-12);
    }
  }
}

const show = (rows: Row[]) =>
  console.log(rows.map((r) => `${r.probe} ${r.metric} L${r.layer}.${r.kind} n=${r.items} ${r.value.toFixed(4)} [${r.low?.toFixed(3)}, ${r.high?.toFixed(3)}] control ${r.control!.toFixed(4)} p=${r.p.toFixed(3)} (${r.permutations} perms)`).join('\n'));

describe('K/V probes on SPair-71k (PCK@α_bbox)', () => {
  it('reports PCK per keypoint and per image over every keypoint, equal to a hand recomputation', async () => {
    const ds = await importBenchmark('spair-71k', resolve(FIXTURES, 'spair-71k'), { split: 'test' });
    const list = await items(ds.id);
    for (const it of list) await call('datasets/set-question', { datasetId: ds.id, itemId: it.id, prompt: 'are these the same kind of object ?', choices: null, answer: null });
    const runId = await forward(ds.id, {});
    // The default α list, and wider thresholds so the recomputation is checked on non-zero PCKs too
    // (the micro model on 40-pixel fixture images transfers few keypoints within 0.15 of the box).
    const defaults = (await call<Row[]>('kv/probes', { runId, layers: [0] })).filter((r) => r.probe === 'correspondence' && r.layer === 0 && r.kind === 'value');
    expect(defaults.map((r) => r.metric)).toEqual([0.05, 0.1, 0.15].flatMap((a) => [`PCK@${a} (bbox, per image)`, `PCK@${a} (bbox, per keypoint)`]).sort((x, y) => x.localeCompare(y)));
    const ALPHAS = [0.05, 0.1, 0.15, 0.5, 1];
    const rows = (await call<Row[]>('kv/probes', { runId, alphas: ALPHAS })).filter((r) => r.probe === 'correspondence');
    show(rows.filter((r) => r.layer === 0));
    expectStatistics(rows);
    expect(rows.every((r) => r.encoding === 'each image alone' && r.notes.length === 0)).toBe(true);

    let checked = 0;
    for (const layer of [0, 3]) {
      for (const kind of ['key', 'value'] as const) {
        for (const alpha of ALPHAS) {
          let correct = 0;
          let visible = 0;
          const fractions: number[] = [];
          for (const item of list) {
            const t = tensorsOf(runId, item.id);
            const src = unitTokens(t, `image_kv.${layer}.${kind}`, 0);
            const trg = unitTokens(t, `image_kv.${layer}.${kind}`, 1);
            const sa = imageSize(resolve(ds.path, item.images[0]!));
            const sb = imageSize(resolve(ds.path, item.images[1]!));
            const va = viewOf(sa.width, sa.height);
            const vb = viewOf(sb.width, sb.height);
            const box = item.labels.find((l) => l.kind === 'box' && l.image === 1) as Extract<Label, { kind: 'box' }>;
            const threshold = alpha * Math.max(box.box[2] - box.box[0], box.box[3] - box.box[1]);
            const kps = item.labels.filter((l): l is Extract<Label, { kind: 'pointPair' }> => l.kind === 'pointPair');
            let c = 0;
            for (const kp of kps) {
              const cell = va.cell(kp.a.at[0], kp.a.at[1]);
              if (cell < 0) continue; // cropped source keypoint: wrong
              const sims = trg.map((v) => dot(src[cell]!, v));
              const best = sims.indexOf(Math.max(...sims));
              const [x, y] = vb.centre(best);
              if (Math.hypot(x - kp.b.at[0], y - kp.b.at[1]) <= threshold) c++;
            }
            correct += c;
            visible += kps.length;
            fractions.push(c / kps.length);
          }
          expect(pick(rows, 'correspondence', `PCK@${alpha} (bbox, per keypoint)`, layer, kind).value).toBeCloseTo(correct / visible, 12);
          expect(pick(rows, 'correspondence', `PCK@${alpha} (bbox, per image)`, layer, kind).value).toBeCloseTo(fractions.reduce((s, x) => s + x, 0) / fractions.length, 12);
          expect(pick(rows, 'correspondence', `PCK@${alpha} (bbox, per keypoint)`, layer, kind).items).toBe(list.length);
          checked++;
        }
      }
    }
    expect(checked).toBe(20);
    expect(rows.some((r) => r.value > 0.2 && r.value < 1)).toBe(true); // the recomputation was not only checked on zeros
    console.log(`SPair: ${list.length} pairs, ${list.reduce((s, i) => s + i.labels.filter((l) => l.kind === 'pointPair').length, 0)} keypoints`);

    // The same items encoded in one prompt: the figure says so.
    const joint = await forward(ds.id, { imagesAlone: false });
    const jrows = (await call<Row[]>('kv/probes', { runId: joint, layers: [0] })).filter((r) => r.probe === 'correspondence');
    expect(jrows.every((r) => r.encoding === 'one prompt' && /joint encoding.*imagesAlone: true/.test(r.notes.join(' ')))).toBe(true);
    // More permutations on request; fewer than 20 refused.
    const more = await call<Row[]>('kv/probes', { runId, layers: [0], permutations: 25 });
    expect(more.every((r) => r.permutations === 25)).toBe(true);
    await expect(call('kv/probes', { runId, permutations: 10 })).rejects.toThrow(/permutations/);
  });
});

describe('K/V probes on DAVIS-2017 (J&F by label propagation)', () => {
  /** DIFT's eval_davis.py label propagation, written with dense matrices: topk 5, temperature 0.1, 7 previous frames, window 12. */
  function propagate(frames: number[][][], first: number[][]): number[][][] {
    const n = GRID * GRID;
    const out: number[][][] = [];
    for (let t = 1; t < frames.length; t++) {
      const ctx = [0, ...Array.from({ length: t - 1 }, (_, i) => i + 1).slice(-7)];
      const segs = ctx.map((f) => (f === 0 ? first : out[f - 1]!));
      const seg: number[][] = first.map(() => new Array<number>(n).fill(0));
      for (let q = 0; q < n; q++) {
        const aff: number[] = [];
        for (const f of ctx) {
          for (let p = 0; p < n; p++) {
            const near = Math.abs(Math.floor(q / GRID) - Math.floor(p / GRID)) <= 12 && Math.abs((q % GRID) - (p % GRID)) <= 12;
            aff.push(near ? Math.exp(dot(frames[t]![q]!, frames[f]![p]!) / 0.1) : 0);
          }
        }
        const kth = [...aff].sort((a, b) => b - a)[4]!;
        const kept = aff.map((a) => (a < kth ? 0 : a));
        const total = kept.reduce((s, a) => s + a, 0);
        kept.forEach((a, i) => {
          for (let c = 0; c < seg.length; c++) seg[c]![q]! += (a / total) * segs[Math.floor(i / n)]![c]![i % n]!;
        });
      }
      out.push(seg);
    }
    return out;
  }

  /** Bilinear upsampling (align_corners=False) to the frame's pixels, norm_mask, argmax; cropped pixels background. */
  function toPixels(seg: number[][], width: number, height: number): Uint8Array {
    const v = viewOf(width, height);
    const up = seg.map((ch) =>
      Array.from({ length: width * height }, (_, i) => {
        const g = v.gridAt(i % width, Math.floor(i / width));
        if (!g) return NaN;
        const [gx, gy] = g.map((u) => Math.max(0, u)) as [number, number];
        const c0 = Math.min(Math.floor(gx), GRID - 1);
        const r0 = Math.min(Math.floor(gy), GRID - 1);
        const c1 = Math.min(c0 + 1, GRID - 1);
        const r1 = Math.min(r0 + 1, GRID - 1);
        const lx = c0 === GRID - 1 ? 0 : gx - c0;
        const ly = r0 === GRID - 1 ? 0 : gy - r0;
        return (1 - ly) * ((1 - lx) * ch[r0 * GRID + c0]! + lx * ch[r0 * GRID + c1]!) + ly * ((1 - lx) * ch[r1 * GRID + c0]! + lx * ch[r1 * GRID + c1]!);
      }),
    );
    const norm = up.map((ch) => {
      const vals = ch.filter((x) => !Number.isNaN(x));
      const [min, max] = [Math.min(...vals), Math.max(...vals)];
      return max > 0 ? ch.map((x) => (max - min > 0 ? (x - min) / (max - min) : 0)) : ch;
    });
    return Uint8Array.from({ length: width * height }, (_, i) => {
      if (Number.isNaN(up[0]![i]!)) return 0;
      let best = 0;
      for (let c = 1; c < norm.length; c++) if (norm[c]![i]! > norm[best]![i]!) best = c;
      return best;
    });
  }

  it('propagates frame 0 over every frame and reports the official J, F and J&F, equal to a hand recomputation', async () => {
    const ds = await importBenchmark('davis-2017', resolve(FIXTURES, 'davis-2017'), { split: 'val' });
    const list = await items(ds.id);
    for (const it of list) await call('datasets/set-question', { datasetId: ds.id, itemId: it.id, prompt: 'what moves in this video ?', choices: null, answer: null });
    const runId = await forward(ds.id, {});
    const rows = (await call<Row[]>('kv/probes', { runId })).filter((r) => r.probe === 'propagation');
    show(rows.filter((r) => r.layer <= 1));
    expectStatistics(rows);
    expect(list.map((i) => i.images.length)).toEqual([4, 3]); // bike-packing, blackswan

    for (const layer of [0, 1, 2, 3]) {
      for (const kind of ['key', 'value'] as const) {
        const objects: { j: number; f: number }[] = [];
        for (const item of list) {
          const t = tensorsOf(runId, item.id);
          const frames = item.images.map((_, i) => unitTokens(t, `image_kv.${layer}.${kind}`, i));
          const masks = item.images.map((_, i) => readMask(resolve(ds.path, (item.labels.find((l) => l.kind === 'mask' && l.image === i) as Extract<Label, { kind: 'mask' }>).file)));
          const { width, height } = masks[0]!;
          const v = viewOf(width, height);
          const ids = Array.from({ length: GRID * GRID }, (_, c) => {
            const [x, y] = v.centre(c);
            return masks[0]!.ids[Math.floor(y) * width + Math.floor(x)]!;
          });
          const channels = Math.max(...masks[0]!.ids) + 1;
          const first = Array.from({ length: channels }, (_, ch) => ids.map((id) => (id === ch ? 1 : 0)));
          const soft = propagate(frames, first);
          const truth: PixelImage[] = masks.map((m) => ({ width: m.width, height: m.height, data: m.ids }));
          const predicted: PixelImage[] = [truth[0]!, ...soft.map((s) => ({ width, height, data: toPixels(s, width, height) }))];
          for (const o of davisSequence(truth, predicted)) objects.push({ j: o.jStats.mean, f: o.fStats.mean });
        }
        const jMean = objects.reduce((s, o) => s + o.j, 0) / objects.length;
        const fMean = objects.reduce((s, o) => s + o.f, 0) / objects.length;
        expect(objects.length).toBe(4); // bike-packing 3 objects + blackswan 1
        expect(pick(rows, 'propagation', 'J-Mean (DAVIS)', layer, kind).value).toBeCloseTo(jMean, 10);
        expect(pick(rows, 'propagation', 'F-Mean (DAVIS)', layer, kind).value).toBeCloseTo(fMean, 10);
        expect(pick(rows, 'propagation', 'J&F-Mean (DAVIS)', layer, kind).value).toBeCloseTo((jMean + fMean) / 2, 10);
        expect(pick(rows, 'propagation', 'J&F-Mean (DAVIS)', layer, kind).items).toBe(2);
      }
    }
  });
});

describe('K/V probes on RefCOCO (referring segmentation mIoU / cIoU)', () => {
  it('scores the expression region against the mask per image and cumulatively, equal to a hand recomputation', async () => {
    const ds = await importBenchmark('refcoco', resolve(FIXTURES, 'refcoco/lmms-lab/RefCOCO'), { split: 'val' });
    const list = await items(ds.id);
    // The lmms-lab prompt asks for a caption and does not contain the sentence; the probe needs the expression's tokens.
    for (const it of list) {
      const box = it.labels.find((l) => l.kind === 'box') as Extract<Label, { kind: 'box' }>;
      await call('datasets/set-question', { datasetId: ds.id, itemId: it.id, prompt: `where is the ${box.text} ?`, choices: null, answer: null });
    }
    const runId = await forward(ds.id, { taps: { imageKV: true, promptKV: true } });
    const rows = (await call<Row[]>('kv/probes', { runId })).filter((r) => r.probe === 'referring');
    show(rows.filter((r) => r.layer === 0));
    expectStatistics(rows);
    // A row without segmentation polygons has a box but no mask: box metrics only.
    const withMask = (await items(ds.id)).filter((i) => i.labels.some((l) => l.kind === 'mask')); // re-read: the prompts changed
    expect(withMask.length).toBeGreaterThanOrEqual(2);
    expect(pick(rows, 'referring', 'mean box IoU', 0, 'value').items).toBe(list.length);

    for (const layer of [0, 1, 2, 3]) {
      for (const kind of ['key', 'value'] as const) {
        const ious: number[] = [];
        let sumI = 0;
        let sumU = 0;
        for (const item of withMask) {
          const t = tensorsOf(runId, item.id);
          const box = item.labels.find((l) => l.kind === 'box') as Extract<Label, { kind: 'box' }>;
          const maskLabel = item.labels.find((l) => l.kind === 'mask') as Extract<Label, { kind: 'mask' }>;
          const words = item.prompt!.split(' ');
          const expr = box.text!.split(' ');
          const start = words.findIndex((_, i) => expr.every((w, j) => words[i + j] === w));
          const ptm = t.prompt_token_map!.data as Int32Array;
          const textRows = Array.from({ length: ptm.length / 3 }, (_, r) => r).filter((r) => ptm[r * 3 + 2]! >= start && ptm[r * 3 + 2]! < start + expr.length);
          const pt = t[`prompt_kv.${layer}.${kind}`]!;
          const [h, n, d] = pt.shape as [number, number, number];
          const pf = toFloat32(pt);
          const q = Array.from({ length: h * d }, (_, x) => textRows.reduce((s, r) => s + pf[(Math.floor(x / d) * n + r) * d + (x % d)]!, 0) / textRows.length);
          const qn = Math.sqrt(dot(q, q));
          const sims = unitTokens(t, `image_kv.${layer}.${kind}`, 0).map((v) => dot(v, q) / qn);
          const mean = sims.reduce((s, x) => s + x, 0) / sims.length;
          const std = Math.sqrt(sims.reduce((s, x) => s + (x - mean) ** 2, 0) / sims.length);
          const peak = sims.indexOf(Math.max(...sims));
          const thr = Math.min(sims[peak]!, mean + std);
          const region = new Set([peak]);
          const todo = [peak];
          while (todo.length) {
            const p = todo.pop()!;
            const [r, c] = [Math.floor(p / GRID), p % GRID];
            for (const [rr, cc] of [[r - 1, c], [r + 1, c], [r, c - 1], [r, c + 1]] as [number, number][]) {
              if (rr >= 0 && rr < GRID && cc >= 0 && cc < GRID && !region.has(rr * GRID + cc) && sims[rr * GRID + cc]! >= thr) {
                region.add(rr * GRID + cc);
                todo.push(rr * GRID + cc);
              }
            }
          }
          const mask = readMask(resolve(ds.path, maskLabel.file));
          const v = viewOf(mask.width, mask.height);
          let inter = 0;
          let union = 0;
          for (let y = 0; y < mask.height; y++) {
            for (let x = 0; x < mask.width; x++) {
              const cell = v.cell(x + 0.5, y + 0.5);
              const pred = cell >= 0 && region.has(cell);
              const truth = (maskLabel.ids ?? [1]).includes(mask.ids[y * mask.width + x]!);
              if (pred && truth) inter++;
              if (pred || truth) union++;
            }
          }
          ious.push(inter / union);
          sumI += inter;
          sumU += union;
        }
        expect(pick(rows, 'referring', 'mIoU (mean per-image IoU, pixels)', layer, kind).value).toBeCloseTo(ious.reduce((s, x) => s + x, 0) / ious.length, 12);
        expect(pick(rows, 'referring', 'cIoU (ΣI/ΣU, pixels)', layer, kind).value).toBeCloseTo(sumI / sumU, 12);
        expect(pick(rows, 'referring', 'cIoU (ΣI/ΣU, pixels)', layer, kind).items).toBe(withMask.length);
      }
    }
  });
});
