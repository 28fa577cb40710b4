/**
 * DAVIS-2017 importer: the fixture (tools/benchmark-fixtures/build_davis.py, published layout,
 * indexed PNGs with the DAVIS palette) imported through `datasets/import-benchmark`; frames,
 * mask pixels, ids and meta compared with the builder's truth (expected.json, written from the
 * arrays it drew); split/subset/limit, progress, and refusals that leave nothing behind.
 */
import { copyFileSync, cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { Label } from '../../src-shared/dataset/format.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type Imported, importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/davis-2017');
const ROOT = join(FIXTURE, 'DAVIS');

interface Truth {
  frameSize: [number, number];
  splits: Record<string, string[]>;
  sequences: Record<string, { split: string; frames: string[]; objectIds: number[]; annotated: Record<string, { ids: number[]; void: number; pixels: number[] }> }>;
  duplicateColourPalette: { ids: number[]; pixels: number[] };
}
const truth = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as Truth;
const [W, H] = truth.frameSize;

const h = importHarness('davis-2017');
const { events, call, manifestOf, importBenchmark: importDavis } = h;

async function maskPixels(id: number): Promise<{ shape: number[]; pixels: number[] }> {
  const { response, tensor } = await dispatch(h.engine.handlers, { t: 'req', id: 9, method: 'labels/mask', params: { id } });
  if (!response.ok) throw LoupeError.from(response.error);
  return { shape: tensor!.header.shape, pixels: Array.from(tensor!.data as ArrayLike<number>) };
}

type Stored = { id: number; label: Label };

/** Every frame, mask label, mask pixel and meta field of `seq` against the builder's truth. */
async function expectSequence(imported: Imported, seq: string): Promise<void> {
  const t = truth.sequences[seq]!;
  const manifest = manifestOf(imported);
  const item = manifest.items.find((i) => i.id === seq)!;
  expect(item.images).toHaveLength(t.frames.length);
  item.images.forEach((rel, k) => expect(readFileSync(join(imported.dataset.path, rel)).equals(readFileSync(join(ROOT, 'JPEGImages/480p', seq, `${t.frames[k]}.jpg`)))).toBe(true));
  expect(item.meta).toEqual({
    sequence: seq,
    split: t.split,
    resolution: '480p',
    frameCount: t.frames.length,
    frames: t.frames,
    annotatedFrames: Object.keys(t.annotated),
    objectIds: t.objectIds,
    firstFrameObjectIds: t.annotated[t.frames[0]!]!.ids,
  });
  const stored = await call<Stored[]>('labels/list', { datasetId: imported.dataset.id, itemId: seq });
  const masks = stored.filter((s) => s.label.kind === 'mask');
  expect(masks.map((m) => t.frames[(m.label as { image: number }).image])).toEqual(Object.keys(t.annotated));
  for (const m of masks) {
    const label = m.label as Extract<Label, { kind: 'mask' }>;
    const want = t.annotated[t.frames[label.image]!]!;
    expect(label.ids).toEqual(want.ids);
    const got = await maskPixels(m.id);
    expect(got.shape).toEqual([H, W]);
    expect(got.pixels).toEqual(want.pixels);
  }
}

describe('DAVIS-2017 importer', () => {
  it('the fixture defeats a colour-channel reader: ids 1 and 3 share red, ids 1 and 2 share blue', () => {
    const png = PNG.sync.read(readFileSync(join(ROOT, 'Annotations/480p/bike-packing/00000.png')));
    const ids = truth.sequences['bike-packing']!.annotated['00000']!.pixels;
    const rgbaOf = (id: number) => [...png.data.subarray(ids.indexOf(id) * 4, ids.indexOf(id) * 4 + 3)];
    expect([rgbaOf(1), rgbaOf(2), rgbaOf(3)]).toEqual([[128, 0, 0], [0, 128, 0], [128, 128, 0]]);
  });

  it('imports val: one item per sequence, every frame, every mask pixel and id as drawn; progress by frame', async () => {
    events.length = 0;
    const r = await importDavis(FIXTURE, { split: 'val' });
    const seqs = truth.splits.val!;
    const frames = seqs.reduce((n, s) => n + truth.sequences[s]!.frames.length, 0);
    const masks = seqs.reduce((n, s) => n + Object.keys(truth.sequences[s]!.annotated).length, 0);
    expect(r).toMatchObject({ items: seqs.length, labels: masks, warnings: [], dataset: { itemCount: seqs.length } });
    expect(r.dataset.path.startsWith(join(h.engine.options.dataDir, 'datasets'))).toBe(true);
    for (const seq of seqs) await expectSequence(r, seq);
    // blackswan's last frame is annotated with no object in it.
    expect(truth.sequences.blackswan!.annotated['00002']!.ids).toEqual([]);

    const mine = events.filter((e) => e.format === 'davis-2017');
    expect(mine[0]).toEqual({ format: 'davis-2017', phase: 'reading', done: 0, total: null });
    expect(mine[1]).toEqual({ format: 'davis-2017', phase: 'frames', done: 0, total: frames });
    expect(mine.at(-2)).toEqual({ format: 'davis-2017', phase: 'frames', done: frames, total: frames });
    expect(mine.at(-1)).toEqual({ format: 'davis-2017', phase: 'done', done: seqs.length, total: seqs.length });
    const framePhase = mine.filter((e) => e.phase === 'frames').map((e) => e.done);
    expect(framePhase).toEqual([...framePhase].sort((a, b) => a - b));
  });

  it('sets void (255) to background as davis2017-evaluation does, and says so; limit and subset pick sequences', async () => {
    const limited = await importDavis(join(FIXTURE, 'DAVIS'), { split: 'train', limit: 1 });
    expect(limited.items).toBe(1);
    const voids = Object.values(truth.sequences[truth.splits.train![0]!]!.annotated).reduce((n, a) => n + a.void, 0);
    expect(voids).toBe(3);
    expect(limited.warnings).toEqual([`${voids} void pixels (value 255) set to background, as davis2017-evaluation does`]);
    await expectSequence(limited, truth.splits.train![0]!);

    const picked = await importDavis(FIXTURE, { split: 'train', subset: ['boxing-fisheye'] });
    expect(picked.items).toBe(1);
    await expectSequence(picked, 'boxing-fisheye');
    expect(truth.sequences['boxing-fisheye']!.objectIds).toEqual([1, 2, 3, 4]);
  });

  it('test-dev: every frame, the first one annotated', async () => {
    const r = await importDavis(FIXTURE, { split: 'test-dev' });
    expect(r).toMatchObject({ items: 1, labels: 1 });
    await expectSequence(r, 'aerobatics');
  });

  it('reads palette indices, not colours: a palette that repeats a colour still gives each id', async () => {
    const copy = tempDir('loupe-davis-');
    cpSync(FIXTURE, copy, { recursive: true });
    copyFileSync(join(copy, 'extra/duplicate-colour-palette.png'), join(copy, 'DAVIS/Annotations/480p/bike-packing/00001.png'));
    const r = await importDavis(copy, { split: 'val', subset: ['bike-packing'] });
    const stored = await call<Stored[]>('labels/list', { datasetId: r.dataset.id, itemId: 'bike-packing' });
    const second = stored.find((s) => s.label.kind === 'mask' && s.label.image === 1)!;
    expect((second.label as { ids: number[] }).ids).toEqual(truth.duplicateColourPalette.ids);
    expect((await maskPixels(second.id)).pixels).toEqual(truth.duplicateColourPalette.pixels);
  });

  it('refuses broken folders by file name and leaves nothing under <data>/datasets/', async () => {
    const broken = (edit: (root: string) => void): string => {
      const copy = tempDir('loupe-davis-bad-');
      cpSync(FIXTURE, copy, { recursive: true });
      edit(join(copy, 'DAVIS'));
      return copy;
    };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [broken((r) => copyFileSync(join(r, '../extra/wrong-size.png'), join(r, 'Annotations/480p/blackswan/00001.png'))), { split: 'val' }, /annotation Annotations\/480p\/blackswan\/00001\.png is 31×24 but its frame JPEGImages\/480p\/blackswan\/00001\.jpg is 32×24/],
      [broken((r) => copyFileSync(join(r, '../extra/rgb-annotation.png'), join(r, 'Annotations/480p/blackswan/00000.png'))), { split: 'val' }, /Annotations\/480p\/blackswan\/00000\.png .* is an RGB PNG; an annotation must be an indexed/],
      [broken((r) => copyFileSync(join(r, 'Annotations/480p/bear/00000.png'), join(r, 'Annotations/480p/bear/00009.png'))), { split: 'train' }, /annotation Annotations\/480p\/bear\/00009\.png .* has no frame JPEGImages\/480p\/bear\/00009\.jpg/],
      [broken((r) => writeFileSync(join(r, 'ImageSets/2017/val.txt'), 'bike-packing\nno-such-seq\n')), { split: 'val' }, /frames of sequence no-such-seq: JPEGImages\/480p\/no-such-seq is missing from/],
      [broken((r) => rmSync(join(r, 'Annotations/480p/blackswan'), { recursive: true })), { split: 'val' }, /annotations of sequence blackswan: Annotations\/480p\/blackswan is missing from/],
      [FIXTURE, { split: 'val', subset: ['blackswan', 'nope'] }, /DAVIS-2017 val has no sequence nope \(ImageSets\/2017\/val\.txt\)/],
      [FIXTURE, { split: 'test' }, /DAVIS-2017 has no split 'test' \(ImageSets\/2017 lists train, val, test-dev, test-challenge\)/],
      [FIXTURE, { split: 'test-challenge' }, /ImageSets\/2017\/test-challenge\.txt is missing from/],
      [tempDir('loupe-empty-'), {}, /is not a DAVIS-2017 folder/],
      [broken((r) => renameSync(join(r, 'JPEGImages/480p'), join(r, 'JPEGImages/Full-Resolution'))), {}, /JPEGImages has no 480p\/ folder \(it has Full-Resolution\); the importer reads the 480p release/],
    ];
    // the writer's abort must remove the staging folder (some cases fail after frames were copied)
    for (const [path, options, message] of cases) await h.expectRefused(() => importDavis(path, options), message, `${path} ${JSON.stringify(options)}`);
  });
});
