/**
 * RefCOCO importer: the fixtures (tools/benchmark-fixtures/build_refcoco.py — lmms-lab/RefCOCO and
 * RefCOCOg parquet with embedded images, val in two shards; jxu124/refcoco refs parquet beside a
 * COCO train2014/ folder) imported through `datasets/import-benchmark` and compared with the
 * builder's expected.json: ids, prompts, sentences, boxes converted from COCO xywh, polygons, mask
 * pixel counts (the builder counts with its own point-in-polygon test), image bytes; variant/split
 * subsets, limit across row groups and shards, progress, and refusals that leave nothing behind.
 */
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, truncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { Label } from '../../src-shared/dataset/format.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/refcoco');

interface Expected {
  id: string;
  variant: string;
  split: string;
  prompt: string | null;
  sentences: string[];
  box: [number, number, number, number];
  bbox: number[];
  polygons: [number, number][][] | null;
  maskPixels: number | null;
  imageSha256: string;
  imageSize: [number, number];
}
const truth = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { lmms: Expected[]; jxu124: Expected[] };

const h = importHarness('refcoco');
const { events, manifestOf, importBenchmark: importRefcoco } = h;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Non-zero pixels of a greyscale mask PNG and its size. */
function maskCount(path: string): { count: number; width: number; height: number } {
  const png = PNG.sync.read(readFileSync(path));
  let count = 0;
  for (let i = 0; i < png.width * png.height; i++) if (png.data[i * 4]! > 0) count++;
  return { count, width: png.width, height: png.height };
}

/** Every field of an imported item against the builder's truth. */
function expectItem(root: string, item: ReturnType<typeof manifestOf>['items'][number], want: Expected, file: string): void {
  expect(item.id).toBe(want.id);
  expect(item.prompt ?? null).toBe(want.prompt);
  expect(item.answer).toBe(want.sentences[0]);
  expect(item.images.map((p) => sha256(join(root, p)))).toEqual([want.imageSha256]);
  const box = item.labels.find((l) => l.kind === 'box');
  expect(box).toEqual({ kind: 'box', image: 0, box: want.box, text: want.sentences[0] });
  const mask = item.labels.find((l) => l.kind === 'mask') as Extract<Label, { kind: 'mask' }> | undefined;
  if (want.polygons === null) expect(mask).toBeUndefined();
  else {
    expect(mask).toMatchObject({ kind: 'mask', image: 0, ids: [1], name: want.sentences[0], polygons: want.polygons });
    expect(maskCount(join(root, mask!.file))).toEqual({ count: want.maskPixels, width: want.imageSize[0], height: want.imageSize[1] });
  }
  expect(item.meta).toMatchObject({ task: `refcoco:${want.variant}`, variant: want.variant, split: want.split, sentences: want.sentences, bbox: want.bbox, file });
}

describe('RefCOCO import (lmms-lab layout, images embedded)', () => {
  it('imports both variants, every shard, with boxes, masks and sentences as the builder wrote them', async () => {
    events.length = 0;
    const r = await importRefcoco(join(FIXTURE, 'lmms-lab'));
    expect(r.items).toBe(truth.lmms.length);
    expect(r.dataset.task).toBe('refcoco');
    expect(r.warnings).toEqual(['1 RefCOCO refs have no polygon segmentation (crowd RLE or empty) and got a box only']);
    const items = manifestOf(r).items;
    // Files in path order (testA before val; val shard 0 before shard 1; RefCOCO before RefCOCOg), rows in file order.
    expect(items.map((i) => i.id)).toEqual(['refcoco:testA:0', 'refcoco:val:0', 'refcoco:val:1', 'refcoco:val:2', 'refcoco:val:3', 'refcocog:val:g0']);
    const fileOf = (id: string) =>
      id.startsWith('refcocog') ? 'RefCOCOg/data/val-00000-of-00001.parquet' : id.includes('testA') ? 'RefCOCO/data/testA-00000-of-00001.parquet' : id.endsWith(':3') ? 'RefCOCO/data/val-00001-of-00002.parquet' : 'RefCOCO/data/val-00000-of-00002.parquet';
    for (const want of truth.lmms) expectItem(r.dataset.path, items.find((i) => i.id === want.id)!, want, fileOf(want.id));
    // Rows of one COCO image share one image file.
    expect(items[1]!.images).toEqual(items[2]!.images);
    expect(r.labels).toBe(truth.lmms.length + truth.lmms.filter((e) => e.polygons).length);
    expect(events.at(-1)).toEqual({ format: 'refcoco', phase: 'done', done: truth.lmms.length, total: truth.lmms.length });
  });

  it('keeps the variants, split and number of items asked for', async () => {
    const g = await importRefcoco(join(FIXTURE, 'lmms-lab'), { subset: ['RefCOCOg'] });
    expect(manifestOf(g).items.map((i) => i.id)).toEqual(['refcocog:val:g0']);
    const val = await importRefcoco(join(FIXTURE, 'lmms-lab'), { subset: ['refcoco'], split: 'val', limit: 3 });
    expect(manifestOf(val).items.map((i) => i.id)).toEqual(['refcoco:val:0', 'refcoco:val:1', 'refcoco:val:2']);
    const one = await importRefcoco(join(FIXTURE, 'lmms-lab', 'RefCOCO'), { split: 'testA' });
    expect(manifestOf(one).items.map((i) => i.id)).toEqual(['refcoco:testA:0']);
    await expect(importRefcoco(join(FIXTURE, 'lmms-lab'), { subset: ['refcoco+'] })).rejects.toThrow(/nothing matches subset \["refcoco\+"\] split \(any\) \(found refcoco\/testA, refcoco\/val, refcocog\/val\)/);
  });

  it('refuses a renamed column by file, column and the columns found; nothing left behind', async () => {
    await h.expectRefused(
      () => importRefcoco(join(FIXTURE, 'renamed-column')),
      'RefCOCO/data/val-00000-of-00001.parquet: column "bbox" missing for a RefCOCO file (lmms-lab layout) (columns found: question_id, image, question, answer, segmentation, box, iscrowd, file_name)',
    );
  });

  it('refuses a truncated shard naming it; nothing left behind', async () => {
    const copy = join(tempDir('loupe-refcoco-'), 'RefCOCO');
    cpSync(join(FIXTURE, 'lmms-lab', 'RefCOCO'), copy, { recursive: true });
    truncateSync(join(copy, 'data', 'val-00001-of-00002.parquet'), 4000);
    await h.expectRefused(() => importRefcoco(copy), /^data\/val-00001-of-00002\.parquet is not a readable parquet file/);
  });
});

describe('RefCOCO import (jxu124 refs layout, COCO images beside it)', () => {
  it('reads the refs, finds the COCO image in train2014/ and rasterises every polygon of the annotation', async () => {
    const r = await importRefcoco(join(FIXTURE, 'jxu124'));
    expect(r.warnings).toEqual([]);
    const items = manifestOf(r).items;
    expect(items.map((i) => i.id)).toEqual(truth.jxu124.map((e) => e.id));
    for (const [k, want] of truth.jxu124.entries()) expectItem(r.dataset.path, items[k]!, want, 'refcoco/data/validation-00000-of-00001-6fb1cc7e9f1ab2f8.parquet');
    expect(items[0]!.images).toEqual(items[1]!.images);
  });

  it('says which COCO image is missing when the train2014 folder is not there; nothing left behind', async () => {
    const copy = join(tempDir('loupe-refcoco-'), 'refcoco');
    cpSync(join(FIXTURE, 'jxu124', 'refcoco'), copy, { recursive: true });
    await h.expectRefused(() => importRefcoco(copy), /COCO image COCO_train2014_000000000009\.jpg not found in .*needs the COCO train2014 images beside it/);
  });
});
