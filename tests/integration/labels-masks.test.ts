/**
 * Mask labels and question editing through the engine: save a mask (PNG bytes) → list → read
 * its pixels back (binary frame) → export as Loupe JSON (mask PNG files) and COCO (polygons stay
 * polygons, other masks as compressed RLE) → import both back; refusals for bad input.
 */
import { existsSync, readFileSync, copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import { DatasetManifest } from '../../src-shared/dataset/format.ts';
import { bytesToBase64, encodeMaskPng, rleFromString } from '../../src-shared/dataset/mask-codec.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

/** `labels/mask` answers with a binary tensor frame beside its JSON metadata. */
async function maskOf(id: number): Promise<HostTensor> {
  const { response, tensor } = await dispatch(engine.handlers, { t: 'req', id: 7, method: 'labels/mask', params: { id } });
  if (!response.ok) throw LoupeError.from(response.error);
  if (!tensor) throw new Error('labels/mask sent no tensor frame');
  expect(tensor.header).toMatchObject({ id: 7, name: 'mask' });
  return { dtype: tensor.header.dtype, shape: tensor.header.shape, data: tensor.data };
}

const W = 64, H = 64;
/** Hand-made mask: the 4 × 2 block x ∈ [10, 13], y ∈ [20, 21]. */
const block = () => Uint8Array.from({ length: W * H }, (_, i) => (i % W >= 10 && i % W <= 13 && Math.floor(i / W) >= 20 && Math.floor(i / W) <= 21 ? 1 : 0));
/** The pixels a rectangle polygon [30, 40) × [30, 35) covers (pixel centres inside). */
const rectPolygon: [number, number][] = [[30, 30], [40, 30], [40, 35], [30, 35]];
const rect = () => Uint8Array.from({ length: W * H }, (_, i) => (i % W >= 30 && i % W < 40 && Math.floor(i / W) >= 30 && Math.floor(i / W) < 35 ? 1 : 0));
const png64 = async (m: Uint8Array, w = W, h = H) => bytesToBase64(await encodeMaskPng(m, w, h));

describe('mask labels and item questions', () => {
  it('saves masks and questions, exports them as Loupe JSON and COCO, and imports both back', async () => {
    const folder = tempDir('loupe-mask-imgs-');
    const src = (JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] }).items;
    copyFileSync(join(DATASET_DIR, src[0]!.images[0]!), join(folder, 'a.png'));
    copyFileSync(join(DATASET_DIR, src[1]!.images[0]!), join(folder, 'b.png'));
    const ds = await call<{ id: string; path: string }>('datasets/create', { name: 'Masks', task: 'labelled' });
    await call('datasets/add-images', { datasetId: ds.id, folder });

    // A brush-made mask (no polygons) and a polygon-made one.
    const brushed = await call<StoredLabel>('labels/put-mask', { datasetId: ds.id, itemId: 'a', image: 0, name: 'cube', png: await png64(block()) });
    expect(brushed.label).toEqual({ kind: 'mask', image: 0, file: `masks/a-0-${brushed.id}.png`, ids: [1], name: 'cube' });
    const poly = await call<StoredLabel>('labels/put-mask', { datasetId: ds.id, itemId: 'b', image: 0, name: 'ball', png: await png64(rect()), polygons: [rectPolygon] });
    expect(poly.label).toMatchObject({ kind: 'mask', polygons: [rectPolygon] });
    expect((await call<StoredLabel[]>('labels/list', { datasetId: ds.id, itemId: 'a' })).map((l) => l.id)).toEqual([brushed.id]);
    const back = await maskOf(brushed.id);
    expect(back.shape).toEqual([H, W]);
    expect(back.dtype).toBe('uint8');
    expect(Array.from(back.data as Uint8Array)).toEqual(Array.from(block()));
    // Not yet a file: the pixels live in the database until export.
    expect(existsSync(join(ds.path, brushed.label.kind === 'mask' ? brushed.label.file : ''))).toBe(false);

    // Replacing a mask keeps its id and file; any non-zero PNG value counts as inside.
    const grown = block().map((v, i) => (v || (i % W === 14 && Math.floor(i / W) === 20) ? 255 : 0));
    const replaced = await call<StoredLabel>('labels/put-mask', { datasetId: ds.id, itemId: 'a', id: brushed.id, image: 0, name: 'cube', png: await png64(grown) });
    expect(replaced).toMatchObject({ id: brushed.id, label: brushed.label });
    expect(Array.from((await maskOf(brushed.id)).data as Uint8Array).reduce((n, v) => n + v, 0)).toBe(9);
    await call('labels/put-mask', { datasetId: ds.id, itemId: 'a', id: brushed.id, image: 0, name: 'cube', png: await png64(block()) });

    // Questions.
    const q = await call('datasets/set-question', { datasetId: ds.id, itemId: 'a', prompt: ' what is it? ', choices: ['cube', 'ball'], answer: 'cube' });
    expect(q).toEqual({ id: 'a', prompt: 'what is it?', choices: ['cube', 'ball'], answer: 'cube' });
    const page = await call<{ items: { id: string; prompt: string | null; choices: string[] | null; answer: string | null }[] }>('datasets/items', { datasetId: ds.id });
    expect(page.items[0]).toMatchObject({ id: 'a', prompt: 'what is it?', choices: ['cube', 'ball'], answer: 'cube' });
    expect(page.items[1]).toMatchObject({ id: 'b', prompt: null, choices: null, answer: null });

    // Loupe JSON: the mask becomes the PNG file its label names; the question is in the manifest.
    const { path } = await call<{ path: string }>('datasets/export', { datasetId: ds.id, format: 'loupe' });
    const manifest = DatasetManifest.parse(JSON.parse(readFileSync(path, 'utf8')));
    expect(manifest.items[0]).toMatchObject({ id: 'a', prompt: 'what is it?', choices: ['cube', 'ball'], answer: 'cube', labels: [brushed.label] });
    const file = PNG.sync.read(readFileSync(join(ds.path, `masks/a-0-${brushed.id}.png`)));
    expect(Array.from({ length: W * H }, (_, i) => file.data[i * 4])).toEqual(Array.from(block()));

    // COCO: RLE for the brushed mask, hand-computed: column-major runs 660 zeros (x = 10, y = 20 is
    // pixel 10·64 + 20), then 2 ones and 62 zeros per column for x = 10…13, then the remaining 3242 zeros.
    const cocoPath = (await call<{ path: string }>('datasets/export', { datasetId: ds.id, format: 'coco' })).path;
    const coco = JSON.parse(readFileSync(cocoPath, 'utf8'));
    const cat = (name: string) => coco.categories.find((c: { name: string }) => c.name === name).id;
    const rle = coco.annotations.find((a: { category_id: number }) => a.category_id === cat('cube'));
    expect(rle).toMatchObject({ image_id: 1, area: 8, bbox: [10, 20, 4, 2], iscrowd: 0, segmentation: { size: [64, 64] } });
    expect(rleFromString(rle.segmentation.counts)).toEqual([660, 2, 62, 2, 62, 2, 62, 2, 3242]);
    const pg = coco.annotations.find((a: { category_id: number }) => a.category_id === cat('ball'));
    expect(pg).toMatchObject({ image_id: 2, area: 50, bbox: [30, 30, 10, 5], segmentation: [[30, 30, 40, 30, 40, 35, 30, 35]] });

    // COCO import: RLE and polygons become masks with the same pixels (polygons kept).
    const fromCoco = await call<{ dataset: { id: string }; labels: number; ignored: number }>('datasets/import-coco', { path: cocoPath, imagesDir: dirname(cocoPath) });
    expect(fromCoco).toMatchObject({ labels: 2, ignored: 0 });
    const [ca] = await call<StoredLabel[]>('labels/list', { datasetId: fromCoco.dataset.id, itemId: 'a' });
    const [cb] = await call<StoredLabel[]>('labels/list', { datasetId: fromCoco.dataset.id, itemId: 'b' });
    expect(ca!.label).toMatchObject({ kind: 'mask', name: 'cube' });
    expect(cb!.label).toMatchObject({ kind: 'mask', name: 'ball', polygons: [rectPolygon] });
    expect(Array.from((await maskOf(ca!.id)).data as Uint8Array)).toEqual(Array.from(block()));
    expect(Array.from((await maskOf(cb!.id)).data as Uint8Array)).toEqual(Array.from(rect()));

    // The exported manifest imports back; its masks are now files of the folder.
    const again = await call<{ id: string }>('datasets/import', { path });
    const [fa] = await call<StoredLabel[]>('labels/list', { datasetId: again.id, itemId: 'a' });
    expect(Array.from((await maskOf(fa!.id)).data as Uint8Array)).toEqual(Array.from(block()));
    // Editing a mask read from a file gives it a file of its own, never overwriting the shared one.
    const edited = await call<StoredLabel>('labels/put-mask', { datasetId: again.id, itemId: 'a', id: fa!.id, image: 0, png: await png64(rect()) });
    expect(edited.label.kind === 'mask' && edited.label.file).not.toBe(brushed.label.kind === 'mask' && brushed.label.file);
    expect(Array.from((await maskOf(fa!.id)).data as Uint8Array)).toEqual(Array.from(rect()));

    // Deleting a mask label deletes its pixels.
    await call('labels/delete', { id: poly.id });
    await expect(maskOf(poly.id)).rejects.toMatchObject({ code: 'not-found' });
  });

  it('refuses masks of the wrong size, bad bytes, bundled datasets, and answers outside the choices', async () => {
    const folder = tempDir('loupe-mask-imgs-');
    const src = (JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] }).items;
    copyFileSync(join(DATASET_DIR, src[0]!.images[0]!), join(folder, 'a.png'));
    const ds = await call<{ id: string }>('datasets/create', { name: 'Bad', task: 'labelled' });
    await call('datasets/add-images', { datasetId: ds.id, folder });
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'a', image: 0, png: await png64(new Uint8Array(32 * 16), 32, 16) })).rejects.toThrow(/mask is 32×16 but image #0 of a is 64×64/);
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'a', image: 0, png: bytesToBase64(new TextEncoder().encode('not a png')) })).rejects.toMatchObject({ code: 'bad-input', message: /not a readable PNG/ });
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'a', image: 0, png: 'Zm9v!' })).rejects.toThrow(/not valid base64/);
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'a', image: 1, png: await png64(block()) })).rejects.toThrow(/no image #1/);
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'zz', image: 0, png: await png64(block()) })).rejects.toMatchObject({ code: 'not-found' });
    await expect(call('labels/put-mask', { datasetId: 'colour-at-point', itemId: 'x', image: 0, png: await png64(block()) })).rejects.toThrow(/read-only/);
    const box = await call<StoredLabel>('labels/put', { datasetId: ds.id, itemId: 'a', label: { kind: 'box', image: 0, box: [1, 1, 4, 4] } });
    await expect(call('labels/put-mask', { datasetId: ds.id, itemId: 'a', id: box.id, image: 0, png: await png64(block()) })).rejects.toThrow(/is a box, not a mask/);
    await expect(maskOf(box.id)).rejects.toThrow(/is a box, not a mask/);

    await expect(call('datasets/set-question', { datasetId: ds.id, itemId: 'a', prompt: 'p', choices: ['red', 'blue'], answer: 'green' })).rejects.toMatchObject({ code: 'bad-input', message: 'item a: the answer "green" is not one of the choices (red, blue)' });
    await expect(call('datasets/set-question', { datasetId: ds.id, itemId: 'a', prompt: 'p', choices: ['red', 'red'], answer: null })).rejects.toThrow(/appears twice/);
    await expect(call('datasets/set-question', { datasetId: 'colour-at-point', itemId: 'x', prompt: 'p', choices: null, answer: null })).rejects.toThrow(/read-only/);
    await expect(call('datasets/set-question', { datasetId: ds.id, itemId: 'nope', prompt: 'p', choices: null, answer: null })).rejects.toMatchObject({ code: 'not-found' });
  });

  it('reads the ground-truth instance maps of the bundled probe sets', async () => {
    const items = await call<{ items: { id: string }[] }>('datasets/items', { datasetId: 'count', limit: 1 });
    const [mask] = (await call<StoredLabel[]>('labels/list', { datasetId: 'count', itemId: items.items[0]!.id })).filter((l) => l.label.kind === 'mask');
    if (mask?.label.kind !== 'mask') throw new Error('the count probe set has no mask label');
    const t = await maskOf(mask.id);
    const file = PNG.sync.read(readFileSync(join(DATASET_DIR, '..', 'count', mask.label.file)));
    expect(t.shape).toEqual([file.height, file.width]);
    expect(Array.from(t.data as Uint8Array)).toEqual(Array.from({ length: file.width * file.height }, (_, i) => file.data[i * 4]));
    expect(new Set(t.data as Uint8Array).size).toBeGreaterThan(2); // instance ids, not a binary mask
  });
});
