/**
 * Dataset input (issue 23 items 4, 5, 10): colliding image names never give an item another
 * item's image; bundled datasets are read-only; labels off their image are refused, not clamped;
 * grey+alpha PNGs are images and masks. Pixel references come from Pillow
 * (tests/fixtures/input-limits/build_input_limits.py → expected.json), not from Loupe's decoder.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import { bytesToBase64 } from '../../src-shared/dataset/mask-codec.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_ID, tempDir } from '../helpers/fixtures.ts';

const FIX = join(REPO_ROOT, 'tests', 'fixtures', 'input-limits');
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as Record<string, { width: number; height: number; rgb: number[] }>;

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

async function image(datasetId: string, itemId: string): Promise<{ shape: number[]; data: number[] }> {
  const { response, tensor } = await dispatch(engine.handlers, { t: 'req', id: 1, method: 'datasets/image', params: { datasetId, itemId, index: 0 } });
  if (!response.ok) throw new Error(response.error.message);
  return { shape: tensor!.header.shape, data: Array.from(tensor!.data as Uint8Array) };
}

/** The item's image equals the reference pixels of `rel` (JPEG: within 3 levels, as decoders may round differently). */
async function expectImageOf(datasetId: string, itemId: string, rel: string) {
  const ref = expected[rel]!;
  const got = await image(datasetId, itemId);
  expect(got.shape).toEqual([ref.height, ref.width, 3]);
  if (rel.endsWith('.jpg')) expect(Math.max(...got.data.map((v, i) => Math.abs(v - ref.rgb[i]!)))).toBeLessThanOrEqual(3);
  else expect(got.data).toEqual(ref.rgb);
}

describe('colliding image names (item 4)', () => {
  it('gives x.jpg and x.png in one folder two items, each with its own image', async () => {
    const ds = await call<{ id: string }>('datasets/create', { name: 'collide one folder', task: 't' });
    const r = await call<{ added: number; skipped: number }>('datasets/add-images', { datasetId: ds.id, folder: join(FIX, 'collide-a') });
    expect(r).toMatchObject({ added: 2, skipped: 0 });
    const items = await call<{ items: { id: string; images: string[] }[] }>('datasets/items', { datasetId: ds.id, offset: 0, limit: 10 });
    // Sorted file names: x.jpg first keeps the plain stem; x.png gets its extension in the id.
    expect(items.items.map((i) => [i.id, i.images])).toEqual([
      ['x', ['images/x.jpg']],
      ['x-png', ['images/x.png']],
    ]);
    await expectImageOf(ds.id, 'x', 'collide-a/x.jpg');
    await expectImageOf(ds.id, 'x-png', 'collide-a/x.png');
  });

  it('gives two folders with the same file name two items and two files; adding a folder again adds nothing', async () => {
    const ds = await call<{ id: string }>('datasets/create', { name: 'collide two folders', task: 't' });
    await call('datasets/add-images', { datasetId: ds.id, folder: join(FIX, 'collide-a') });
    const r = await call<{ added: number }>('datasets/add-images', { datasetId: ds.id, folder: join(FIX, 'collide-b') });
    expect(r.added).toBe(1);
    const items = await call<{ items: { id: string; images: string[] }[] }>('datasets/items', { datasetId: ds.id, offset: 0, limit: 10 });
    expect(items.items.map((i) => [i.id, i.images])).toEqual([
      ['x', ['images/x.jpg']],
      ['x-png', ['images/x.png']],
      ['x-png-2', ['images/x-2.png']],
    ]);
    await expectImageOf(ds.id, 'x-png', 'collide-a/x.png');
    await expectImageOf(ds.id, 'x-png-2', 'collide-b/x.png');
    expect((await call<{ added: number; skipped: number }>('datasets/add-images', { datasetId: ds.id, folder: join(FIX, 'collide-b') })).added).toBe(0);
  });

  it('looks items up by id even when item order has gaps', async () => {
    const ds = await call<{ id: string }>('datasets/create', { name: 'gaps', task: 't' });
    // An ignored duplicate leaves ord 1 unused; the next item sits at ord 2 but position 1.
    engine.store.datasets.addItems(ds.id, [{ id: 'a', images: ['images/a.png'] }], 'h1');
    engine.store.datasets.addItems(ds.id, [{ id: 'a', images: ['images/dup.png'] }, { id: 'b', images: ['images/b.png'] }], 'h2');
    engine.store.datasets.addItems(ds.id, [{ id: 'c', images: ['images/c.png'] }], 'h3');
    expect(engine.store.datasets.item(ds.id, 'b').images).toEqual(['images/b.png']);
    expect(engine.store.datasets.item(ds.id, 'c').images).toEqual(['images/c.png']);
  });
});

describe('bundled datasets are read-only (item 5)', () => {
  it('refuses labels/put, labels/delete, labels/put-mask, set-question and add-images; the ground truth survives', async () => {
    const item = (await call<{ items: { id: string }[] }>('datasets/items', { datasetId: DATASET_ID, offset: 0, limit: 1 })).items[0]!.id;
    const before = await call<StoredLabel[]>('labels/list', { datasetId: DATASET_ID, itemId: item });
    expect(before.length).toBeGreaterThan(0);
    const readOnly = { code: 'bad-input', message: expect.stringMatching(/bundled with Loupe and read-only/) };
    await expect(call('labels/delete', { id: before[0]!.id })).rejects.toMatchObject(readOnly);
    await expect(call('labels/put', { datasetId: DATASET_ID, itemId: item, label: { kind: 'class', value: 'x' } })).rejects.toMatchObject(readOnly);
    await expect(call('labels/put', { datasetId: DATASET_ID, itemId: item, id: before[0]!.id, label: { kind: 'class', value: 'x' } })).rejects.toMatchObject(readOnly);
    await expect(call('labels/put-mask', { datasetId: DATASET_ID, itemId: item, image: 0, png: bytesToBase64(readFileSync(join(FIX, 'la8.png'))) })).rejects.toMatchObject(readOnly);
    await expect(call('datasets/set-question', { datasetId: DATASET_ID, itemId: item, prompt: 'p', choices: null, answer: null })).rejects.toMatchObject(readOnly);
    await expect(call('datasets/add-images', { datasetId: DATASET_ID, folder: join(FIX, 'collide-a') })).rejects.toMatchObject(readOnly);
    expect(await call<StoredLabel[]>('labels/list', { datasetId: DATASET_ID, itemId: item })).toEqual(before);
  });
});

describe('labels off their image (item 10)', () => {
  it('refuses points, pairs, boxes and polygons outside the image instead of clamping them', async () => {
    const ds = await call<{ id: string }>('datasets/create', { name: 'range', task: 't' });
    await call('datasets/add-images', { datasetId: ds.id, folder: join(FIX, 'collide-a') }); // x: 8×6, x-png: 5×4
    const put = (label: unknown) => call<StoredLabel>('labels/put', { datasetId: ds.id, itemId: 'x', label });
    const off = (re: RegExp) => ({ code: 'bad-input', message: expect.stringMatching(re) });
    await expect(put({ kind: 'point', image: 0, at: [8, 2] })).rejects.toMatchObject(off(/point \(8, 2\) lies outside the 8×6 image/));
    await expect(put({ kind: 'point', image: 0, at: [-0.5, 2] })).rejects.toMatchObject(off(/outside the 8×6 image/));
    await expect(put({ kind: 'point', image: 1, at: [1, 1] })).rejects.toMatchObject(off(/image #1 does not exist/));
    await expect(put({ kind: 'pointPair', a: { image: 0, at: [1, 1] }, b: { image: 0, at: [3, 6] } })).rejects.toMatchObject(off(/point b .*\(3, 6\) lies outside/));
    await expect(put({ kind: 'box', image: 0, box: [0, 0, 9, 6] })).rejects.toMatchObject(off(/box \[0, 0, 9, 6\] leaves the 8×6 image/));
    await expect(put({ kind: 'box', image: 0, box: [4, 1, 2, 3] })).rejects.toMatchObject(off(/empty or inverted/));
    await expect(put({ kind: 'mask', image: 0, file: 'masks/m.png', polygons: [[[0, 0], [9, 0], [0, 5]]] })).rejects.toMatchObject(off(/polygon vertex \(9, 0\)/));
    await expect(put({ kind: 'mask', image: 0, file: '../../etc/passwd' })).rejects.toMatchObject(off(/outside the dataset folder/));
    // The edges themselves are on the image: last pixel for points, the far edge for boxes.
    await expect(put({ kind: 'point', image: 0, at: [7.9, 5.9] })).resolves.toMatchObject({ label: { at: [7.9, 5.9] } });
    await expect(put({ kind: 'box', image: 0, box: [0, 0, 8, 6] })).resolves.toMatchObject({ label: { box: [0, 0, 8, 6] } });
    expect(await call<StoredLabel[]>('labels/list', { datasetId: ds.id, itemId: 'x' })).toHaveLength(2);
  });

  it('refuses a manifest whose labels leave their images', async () => {
    const dir = tempDir();
    cpSync(join(FIX, 'collide-a', 'x.png'), join(dir, 'x.png'));
    const manifest = (label: unknown) => JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'm', task: 't', items: [{ id: 'a', images: ['x.png'], labels: [label] }] });
    writeFileSync(join(dir, 'dataset.json'), manifest({ kind: 'box', image: 0, box: [0, 0, 6, 4] }));
    await expect(call('datasets/import', { path: dir })).rejects.toMatchObject({ code: 'bad-input', message: expect.stringMatching(/item a, label #0 \(box\): box \[0, 0, 6, 4\] leaves the 5×4 image/) });
    writeFileSync(join(dir, 'dataset.json'), manifest({ kind: 'box', image: 0, box: [0, 0, 5, 4] }));
    await expect(call('datasets/import', { path: dir })).resolves.toMatchObject({ itemCount: 1 });
  });
});

describe('grey+alpha PNGs (item 10)', () => {
  it('accepts 8- and 16-bit grey+alpha PNGs as images, with Pillow-equal pixels', async () => {
    const folder = tempDir();
    cpSync(join(FIX, 'la8.png'), join(folder, 'la8.png'));
    cpSync(join(FIX, 'la16.png'), join(folder, 'la16.png'));
    const ds = await call<{ id: string }>('datasets/create', { name: 'grey alpha', task: 't' });
    expect(await call('datasets/add-images', { datasetId: ds.id, folder })).toMatchObject({ added: 2, skipped: 0 });
    await expectImageOf(ds.id, 'la8', 'la8.png');
    await expectImageOf(ds.id, 'la16', 'la16.png');
  });

  it('accepts a grey+alpha PNG as a drawn mask: non-zero grey is inside', async () => {
    const folder = tempDir();
    cpSync(join(FIX, 'la8.png'), join(folder, 'la8.png'));
    const ds = await call<{ id: string }>('datasets/create', { name: 'grey alpha mask', task: 't' });
    await call('datasets/add-images', { datasetId: ds.id, folder });
    const label = await call<StoredLabel>('labels/put-mask', { datasetId: ds.id, itemId: 'la8', image: 0, png: bytesToBase64(readFileSync(join(FIX, 'la8.png'))) });
    const { tensor } = await dispatch(engine.handlers, { t: 'req', id: 1, method: 'labels/mask', params: { id: label.id } });
    // Pillow's grey channel of la8.png (expected.json's R) is 0 only at pixel 0.
    const inside = expected['la8.png']!.rgb.filter((_, i) => i % 3 === 0).map((g) => (g > 0 ? 1 : 0));
    expect(tensor!.header.shape).toEqual([4, 5]);
    expect(Array.from(tensor!.data as Uint8Array)).toEqual(inside);
  });
});
