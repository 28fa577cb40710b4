/**
 * Co-segmentation and class-name (text-token) semantic segmentation from K/V tokens ("Visual
 * representations inside the language model": MSRC co-segmentation, ImageNet-S semantic
 * segmentation) on a dataset built here from the bundled shape-at-point world: sets of three
 * images whose marked object is one shape, masks named by that shape, and prompts that name it.
 * Each kv/probes figure is checked against a recomputation written out below from the stored
 * K/V tensors and the mask PNGs (float64, its own 2-means, its own pixel → cell rule for the micro
 * model's 64×64 images on an 8×8 grid), not through the engine's helpers.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { tempDir } from '../helpers/fixtures.ts';

interface MaskLabel {
  kind: 'mask';
  image: number;
  file: string;
  ids: number[];
  name: string;
}
interface Item {
  id: string;
  images: string[];
  prompt: string;
  choices: string[];
  answer: string;
  labels: MaskLabel[];
}
/** A kv/probes result row, as the contract types it. */
type Row = ResultOf<'kv/probes'>[number];

const source = join(RESOURCES_DIR, 'datasets', 'shape-at-point');
const GRID = 8;
const SIZE = 64;

/** 8 co-segmentation sets (2 per shape, 3 images each), 12 single images, 2 prompts without the class name. */
function buildDataset(): { root: string; items: Item[] } {
  const manifest = JSON.parse(readFileSync(join(source, 'dataset.json'), 'utf8')) as { items: { images: string[]; answer: string; labels: { kind: string; file?: string; ids?: number[] }[] }[] };
  const byClass = new Map<string, (typeof manifest.items)[number][]>();
  for (const it of manifest.items) byClass.set(it.answer, [...(byClass.get(it.answer) ?? []), it]);
  const root = tempDir();
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'masks'));
  const items: Item[] = [];
  const copy = (src: (typeof manifest.items)[number], cls: string, image: number, tag: string) => {
    const mask = src.labels.find((l) => l.kind === 'mask')!;
    copyFileSync(join(source, src.images[0]!), join(root, 'images', `${tag}.png`));
    copyFileSync(join(source, mask.file!), join(root, 'masks', `${tag}.png`));
    return { image: `images/${tag}.png`, label: { kind: 'mask' as const, image, file: `masks/${tag}.png`, ids: mask.ids!, name: cls } };
  };
  const choices = ['yes', 'no'];
  [...byClass.keys()].sort().forEach((cls, c) => {
    const src = byClass.get(cls)!;
    for (let s = 0; s < 2; s++) {
      const parts = [0, 1, 2].map((k) => copy(src[s * 3 + k]!, cls, k, `coseg-${cls}-${s}-${k}`));
      items.push({ id: `coseg-${cls}-${s}`, images: parts.map((x) => x.image), prompt: `which object is the ${cls} ?`, choices, answer: 'yes', labels: parts.map((x) => x.label) });
    }
    for (let k = 0; k < 3; k++) {
      const x = copy(src[6 + k]!, cls, 0, `text-${cls}-${k}`);
      items.push({ id: `text-${cls}-${k}`, images: [x.image], prompt: `which object is the ${cls} ?`, choices, answer: 'yes', labels: [x.label] });
    }
    if (c < 2) {
      const x = copy(src[9]!, cls, 0, `unnamed-${cls}`);
      items.push({ id: `unnamed-${cls}`, images: [x.image], prompt: 'what shape is the object at the marker ?', choices, answer: 'yes', labels: [x.label] });
    }
  });
  writeFileSync(join(root, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'kv-cosegmentation', task: 'cosegmentation', items }));
  return { root, items };
}

let engine: Engine;
let runId: string;
let dataset: { root: string; items: Item[] };
const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

beforeAll(async () => {
  engine = await startTestEngine();
  dataset = buildDataset();
  const { id: datasetId } = await call<{ id: string }>('datasets/import', { path: dataset.root });
  const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId, spec: { storeDtype: 'float32', imagesAlone: true, taps: { imageKV: true, promptKV: true } } });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', done: dataset.items.length, failed: 0 });
  runId = run.id;
}, 300_000);
afterAll(() => engine?.close());

type Tensor = { shape: number[]; data: ArrayLike<number> };

function tensorsOf(itemId: string): Record<string, Tensor> {
  const r = engine.store.runs.results(runId).find((x) => x.itemId === itemId)!;
  const out: Record<string, Tensor> = {};
  for (const blob of new Set(r.tensors.map((t) => t.blob))) for (const [k, v] of Object.entries(engine.store.blobs.getTensors(blob))) out[k] = { shape: v.shape, data: toFloat32(v) };
  return out;
}

/** Token j of a [heads, n, dim] tensor, heads concatenated, float64. */
function vec(t: Tensor, j: number): number[] {
  const [h, n, d] = t.shape as [number, number, number];
  return Array.from({ length: h * d }, (_, x) => Number(t.data[(Math.floor(x / d) * n + j) * d + (x % d)]));
}
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const unit = (a: number[]) => {
  const n = Math.sqrt(dot(a, a));
  return a.map((x) => (n > 0 ? x / n : 0));
};

/** Image `image`'s 64 cells (row-major) as unit vectors of `image_kv.<layer>.<kind>`. */
function imageCells(t: Record<string, Tensor>, image: number, layer: number, kind: string): number[][] {
  const map = t.image_token_map!.data;
  const cells: number[][] = [];
  for (let k = 0; k < map.length / 5; k++) if (map[k * 5 + 1] === image && map[k * 5 + 3]! >= 0) cells[map[k * 5 + 3]! * GRID + map[k * 5 + 4]!] = unit(vec(t[`image_kv.${layer}.${kind}`]!, k));
  expect(cells.filter(Boolean).length).toBe(GRID * GRID);
  return cells;
}

/** The mask's object pixels (its ids) and each pixel's cell: 64×64 images on the micro model's 8×8 grid, 8 px a cell. */
function truthOf(label: MaskLabel): number[] {
  const png = PNG.sync.read(readFileSync(join(dataset.root, label.file)));
  expect([png.width, png.height]).toEqual([SIZE, SIZE]);
  return Array.from({ length: SIZE * SIZE }, (_, i) => (label.ids.includes(png.data[i * 4]!) ? 1 : 0));
}
const pixelsOf = (cells: number[]) => Array.from({ length: SIZE * SIZE }, (_, i) => cells[Math.floor(Math.floor(i / SIZE) / 8) * GRID + Math.floor((i % SIZE) / 8)]!);

/** 2-means as documented: seeds = least similar to the mean, then least similar to that seed; Lloyd to convergence. */
function twoMeansRef(x: number[][]): number[] {
  const mean = x[0]!.map((_, j) => x.reduce((s, r) => s + r[j]!, 0));
  const argmin = (c: number[]) => x.reduce((best, r, i) => (dot(c, r) < dot(c, x[best]!) ? i : best), 0);
  const a = argmin(mean);
  let cents = [x[a]!, x[argmin(x[a]!)]!];
  let assign: number[] = [];
  for (let step = 0; step < 100; step++) {
    const next = x.map((r) => (dot(cents[1]!, r) > dot(cents[0]!, r) ? 1 : 0));
    if (next.every((k, i) => k === assign[i])) break;
    assign = next;
    cents = [0, 1].map((k) => {
      const members = x.filter((_, i) => assign[i] === k);
      return members.length ? unit(members[0]!.map((_, j) => members.reduce((s, r) => s + r[j]!, 0))) : cents[k]!;
    });
  }
  return assign;
}

function cosegmentationRef(layer: number, kind: string): { J: number; P: number } {
  const perClass = new Map<string, { J: number; P: number; n: number }>();
  for (const item of dataset.items.filter((i) => i.images.length > 1)) {
    const t = tensorsOf(item.id);
    const grids = item.labels.map((l) => imageCells(t, l.image, layer, kind));
    const labels = twoMeansRef(grids.flat());
    const per = grids.map((_, k) => labels.slice(k * 64, (k + 1) * 64));
    const recur = [0, 1].map((c) => per.filter((g) => g.includes(c)).length);
    const border = [0, 1].map((c) => per.reduce((s, g) => s + g.filter((v, i) => v === c && (i < 8 || i >= 56 || i % 8 === 0 || i % 8 === 7)).length, 0));
    const size = [0, 1].map((c) => labels.filter((v) => v === c).length);
    const fg = recur[0] !== recur[1] ? (recur[1]! > recur[0]! ? 1 : 0) : border[0] !== border[1] ? (border[1]! < border[0]! ? 1 : 0) : size[1]! < size[0]! ? 1 : 0;
    item.labels.forEach((l, k) => {
      const truth = truthOf(l);
      const pred = pixelsOf(per[k]!.map((v) => (v === fg ? 1 : 0)));
      const inter = truth.filter((v, i) => v && pred[i]).length;
      const union = truth.filter((v, i) => v || pred[i]).length;
      const agree = truth.filter((v, i) => v === pred[i]).length;
      const s = perClass.get(l.name) ?? { J: 0, P: 0, n: 0 };
      perClass.set(l.name, { J: s.J + (union ? inter / union : 1), P: s.P + agree / truth.length, n: s.n + 1 });
    });
  }
  const cls = [...perClass.values()];
  return { J: cls.reduce((a, c) => a + c.J / c.n, 0) / cls.length, P: cls.reduce((a, c) => a + c.P / c.n, 0) / cls.length };
}

function textSegmentationRef(layer: number, kind: string): { miou: number; items: number } {
  const sums = new Map<string, { I: number; U: number }>();
  let items = 0;
  for (const item of dataset.items) {
    const words = item.prompt.split(' ');
    if (!item.labels.every((l) => words.includes(l.name))) continue;
    items++;
    const t = tensorsOf(item.id);
    const ptm = t.prompt_token_map!.data;
    for (const l of item.labels) {
      const w = words.lastIndexOf(l.name);
      const rows = Array.from({ length: ptm.length / 3 }, (_, r) => r).filter((r) => ptm[r * 3 + 2] === w);
      expect(rows.length).toBeGreaterThan(0);
      const vs = rows.map((r) => vec(t[`prompt_kv.${layer}.${kind}`]!, r));
      const q = unit(vs[0]!.map((_, j) => vs.reduce((s, v) => s + v[j]!, 0) / vs.length));
      const sims = imageCells(t, l.image, layer, kind).map((c) => dot(c, q));
      const thr = (sims.reduce((a, b) => a + b, 0) / sims.length + Math.max(...sims)) / 2;
      const pred = pixelsOf(sims.map((s) => (s >= thr ? 1 : 0)));
      const truth = truthOf(l);
      const s = sums.get(l.name) ?? { I: 0, U: 0 };
      sums.set(l.name, { I: s.I + truth.filter((v, i) => v && pred[i]).length, U: s.U + truth.filter((v, i) => v || pred[i]).length });
    }
  }
  const cls = [...sums.values()].filter((c) => c.U > 0);
  return { miou: cls.reduce((a, c) => a + c.I / c.U, 0) / cls.length, items };
}

const LAYERS = [0, 3];
const show = (rows: Row[]) => console.log(rows.map((r) => `${r.probe} ${r.metric} ${r.layer}.${r.kind} n=${r.items} ${r.value.toFixed(4)} [${r.low?.toFixed(3)}, ${r.high?.toFixed(3)}] (control ${r.control!.toFixed(4)}, p ${r.p.toFixed(3)})`).join('\n'));

describe('K/V co-segmentation and class-name segmentation', () => {
  it('co-segments each set of one class from its image K/V as an independent 2-means recomputation does, with controls and intervals', async () => {
    const rows = (await call<Row[]>('kv/probes', { runId, layers: LAYERS })).filter((r) => r.probe === 'cosegmentation');
    show(rows);
    expect(rows.map((r) => `${r.layer}.${r.kind} ${r.metric}`)).toEqual(
      ['Jaccard J (co-segmentation, pixels)', 'precision P (co-segmentation, pixels)'].flatMap((m) => LAYERS.flatMap((l) => ['key', 'value'].map((k) => `${l}.${k} ${m}`))),
    );
    // The layer-0 value tokens find the common object well above the shuffled control (p = 1/21: no permutation reached it).
    const v0 = rows.find((r) => r.layer === 0 && r.kind === 'value' && r.metric.startsWith('Jaccard'))!;
    expect(v0.value).toBeGreaterThan(3 * v0.control!);
    expect(v0.p).toBeCloseTo(1 / 21, 12);
    for (const layer of LAYERS) {
      for (const kind of ['key', 'value'] as const) {
        const ref = cosegmentationRef(layer, kind);
        const j = rows.find((r) => r.layer === layer && r.kind === kind && r.metric.startsWith('Jaccard'))!;
        const p = rows.find((r) => r.layer === layer && r.kind === kind && r.metric.startsWith('precision'))!;
        expect(j.value).toBeCloseTo(ref.J, 6);
        expect(p.value).toBeCloseTo(ref.P, 6);
        for (const r of [j, p]) {
          expect(r).toMatchObject({ items: 8, permutations: 20, encoding: 'each image alone', notes: [] });
          expect(r.low! <= r.value && r.value <= r.high!).toBe(true);
          expect(r.control! >= 0 && r.control! <= 1).toBe(true);
          expect(r.p > 0 && r.p <= 1).toBe(true);
        }
      }
    }
  });

  it('segments each image by its class name\'s question tokens as an independent recomputation does, and counts prompts without the name', async () => {
    const rows = (await call<Row[]>('kv/probes', { runId, layers: LAYERS })).filter((r) => r.probe === 'text-segmentation');
    show(rows);
    expect(rows.map((r) => `${r.layer}.${r.kind}`)).toEqual(['0.key', '0.value', '3.key', '3.value']);
    const v0 = rows.find((r) => r.layer === 0 && r.kind === 'value')!;
    expect(v0.value).toBeGreaterThan(3 * v0.control!);
    expect(v0.p).toBeCloseTo(1 / 21, 12);
    for (const r of rows) {
      const ref = textSegmentationRef(r.layer, r.kind);
      expect(ref.items).toBe(20);
      expect(r).toMatchObject({ metric: 'class-wise mIoU (pixels, class-name tokens)', items: 20, permutations: 20 });
      expect(r.value).toBeCloseTo(ref.miou, 6);
      expect(r.low! <= r.value && r.value <= r.high!).toBe(true);
      expect(r.control! >= 0 && r.control! <= 1).toBe(true);
      expect(r.notes).toEqual(['1 item(s) left out: its class name "circle" is not in its prompt', '1 item(s) left out: its class name "diamond" is not in its prompt']);
    }
  });

  it('without question K/V there is no class-name figure; a joint-prompt run marks co-segmentation as not the papers\' protocol', async () => {
    const { id: datasetId } = await call<{ id: string }>('datasets/import', { path: dataset.root });
    const run = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId, spec: { limit: 6, storeDtype: 'float32', taps: { imageKV: true } } });
    await engine.queue.drained();
    const rows = await call<Row[]>('kv/probes', { runId: run.id, layers: [0] });
    expect(rows.some((r) => r.probe === 'text-segmentation')).toBe(false);
    const coseg = rows.filter((r) => r.probe === 'cosegmentation');
    expect(coseg.length).toBe(4);
    // One prompt holds all three images: each later image's K/V attended to the earlier ones.
    for (const r of coseg) expect(r.notes.join(' ')).toMatch(/joint encoding.*imagesAlone/);
  });
});
