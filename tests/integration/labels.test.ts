/** User datasets: create, import images, label, export (Loupe manifest and COCO), refusals. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatasetManifest } from '../../src-shared/dataset/format.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

describe('labelling a user dataset', () => {
  it('imports images (skipping a truncated one), stores labels and exports them', async () => {
    const folder = tempDir('loupe-imgs-');
    const src = (JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] }).items;
    copyFileSync(join(DATASET_DIR, src[0]!.images[0]!), join(folder, 'a.png'));
    copyFileSync(join(DATASET_DIR, src[1]!.images[0]!), join(folder, 'b.png'));
    writeFileSync(join(folder, 'broken.png'), readFileSync(join(folder, 'a.png')).subarray(0, 100));
    const ds = await call<{ id: string }>('datasets/create', { name: 'Hand labels', task: 'labelled' });
    const added = await call<{ added: number; skipped: number }>('datasets/add-images', { datasetId: ds.id, folder });
    expect(added).toMatchObject({ added: 2, skipped: 1 });
    expect((await call<{ added: number }>('datasets/add-images', { datasetId: ds.id, folder })).added).toBe(0);

    const box = await call<{ id: number }>('labels/put', { datasetId: ds.id, itemId: 'a', label: { kind: 'box', image: 0, box: [4, 6, 20, 30], text: 'cube' } });
    await call('labels/put', { datasetId: ds.id, itemId: 'a', label: { kind: 'point', image: 0, at: [9, 9], name: 'tip' } });
    await call('labels/put', { datasetId: ds.id, itemId: 'b', label: { kind: 'pointPair', a: { image: 0, at: [1, 2] }, b: { image: 0, at: [3, 4] } } });
    await call('labels/put', { datasetId: ds.id, itemId: 'a', id: box.id, label: { kind: 'box', image: 0, box: [4, 6, 24, 30], text: 'cube' } });
    expect((await call<unknown[]>('labels/list', { datasetId: ds.id, itemId: 'a' })).length).toBe(2);

    const { path } = await call<{ path: string }>('datasets/export', { datasetId: ds.id, format: 'loupe' });
    const manifest = DatasetManifest.parse(JSON.parse(readFileSync(path, 'utf8')));
    expect(manifest.items.map((i) => [i.id, i.labels.length])).toEqual([['a', 2], ['b', 1]]);
    expect(manifest.items[0]!.labels.find((l) => l.kind === 'box')).toEqual({ kind: 'box', image: 0, box: [4, 6, 24, 30], text: 'cube' });

    const coco = JSON.parse(readFileSync((await call<{ path: string }>('datasets/export', { datasetId: ds.id, format: 'coco' })).path, 'utf8'));
    expect(coco.images).toHaveLength(2);
    expect(coco.images[0]).toMatchObject({ width: 64, height: 64, file_name: 'images/a.png' });
    const bbox = coco.annotations.find((x: { bbox?: number[] }) => x.bbox);
    expect(bbox.bbox).toEqual([4, 6, 20, 24]);
    expect(coco.categories.find((c: { id: number }) => c.id === bbox.category_id).name).toBe('cube');

    // The COCO file imports back as a new dataset with the same boxes and points (item b's point pair, a two-keypoint annotation, as its two points).
    const fromCoco = await call<{ dataset: { id: string; itemCount: number }; labels: number; ignored: number }>('datasets/import-coco', { path: join(dirname(path), 'coco.json'), imagesDir: dirname(path) });
    expect(fromCoco).toMatchObject({ labels: 4, ignored: 0, dataset: { itemCount: 2 } });
    const back = await call<{ label: { kind: string; box?: number[]; text?: string } }[]>('labels/list', { datasetId: fromCoco.dataset.id, itemId: 'a' });
    expect(back.find((l) => l.label.kind === 'box')!.label).toEqual({ kind: 'box', image: 0, box: [4, 6, 24, 30], text: 'cube' });
    await expect(call('datasets/import-coco', { path: join(DATASET_DIR, 'dataset.json') })).rejects.toThrow(/lacks "images" or "annotations"/);

    // The exported manifest re-imports as a dataset with the same labels.
    const again = await call<{ itemCount: number; id: string }>('datasets/import', { path });
    expect(again.itemCount).toBe(2);
    expect((await call<unknown[]>('labels/list', { datasetId: again.id, itemId: 'a' })).length).toBe(2);
  });

  it('refuses labels on missing items, malformed labels and edits of bundled datasets', async () => {
    // Bundled datasets are read-only (issue 23 item 5): refused before the item is even looked up.
    await expect(call('labels/put', { datasetId: 'colour-at-point', itemId: 'nope', label: { kind: 'class', value: 'x' } })).rejects.toMatchObject({ code: 'bad-input', message: expect.stringMatching(/read-only/) });
    await expect(call('labels/put', { datasetId: 'colour-at-point', itemId: 'x', label: { kind: 'box', image: 0, box: [1, 2] } })).rejects.toMatchObject({ code: 'invalid-message' });
    await expect(call('datasets/add-images', { datasetId: 'colour-at-point', folder: DATASET_DIR })).rejects.toThrow(/read-only/);
  });
});
