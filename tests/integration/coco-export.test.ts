/**
 * COCO export keeps point pairs and class labels (issue 24): pairs as two-keypoint annotations of
 * a category with keypoints ["a", "b"] and skeleton [[1, 2]] (a pair across an item's two images as
 * one annotation per image, the other keypoint v = 0, joined by `loupe_pair`), class labels as
 * their category with a geometry-less annotation. Expected JSON written out by hand; pycocotools
 * (the reference COCO reader) loads the file and indexes the same categories and annotations.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION } from '../../src-shared/dataset/format.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

/** A user dataset folder: item "two" with two 64×64 images, item "one" with one. */
function datasetFolder(): string {
  const dir = tempDir('loupe-coco-export-');
  mkdirSync(join(dir, 'images'), { recursive: true });
  const src = (JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] }).items;
  ['l.png', 'r.png', 's.png'].forEach((f, i) => copyFileSync(join(DATASET_DIR, src[i]!.images[0]!), join(dir, 'images', f)));
  const items = [
    { id: 'two', images: ['images/l.png', 'images/r.png'], labels: [] },
    { id: 'one', images: ['images/s.png'], labels: [] },
  ];
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: DATASET_FORMAT, version: DATASET_FORMAT_VERSION, name: 'pairs', description: '', task: 'labelled', items }));
  return dir;
}

describe('COCO export', () => {
  it('writes point pairs as keypoint pairs and class labels as categories', async () => {
    const ds = await call<{ id: string }>('datasets/import', { path: join(datasetFolder(), 'dataset.json') });
    const put = (itemId: string, label: object) => call('labels/put', { datasetId: ds.id, itemId, label });
    await put('two', { kind: 'pointPair', a: { image: 0, at: [10.5, 12.5] }, b: { image: 1, at: [40.5, 44.5] }, name: 'corner' });
    await put('two', { kind: 'class', value: 'kitchen' });
    await put('one', { kind: 'pointPair', a: { image: 0, at: [1, 2] }, b: { image: 0, at: [3, 4] } });
    await put('one', { kind: 'class', value: 'kitchen' });
    await put('one', { kind: 'point', image: 0, at: [9, 9], name: 'tip' });

    const { path } = await call<{ path: string }>('datasets/export', { datasetId: ds.id, format: 'coco' });
    const coco = JSON.parse(readFileSync(path, 'utf8')) as { images: { id: number; loupe_item: string }[]; annotations: Record<string, unknown>[]; categories: unknown[] };
    const image = (item: string, k: number) => coco.images.filter((i) => i.loupe_item === item)[k]!.id;
    expect(coco.categories).toEqual([
      { id: 1, name: 'corner', keypoints: ['a', 'b'], skeleton: [[1, 2]] },
      { id: 2, name: 'kitchen' },
      { id: 3, name: 'point pair', keypoints: ['a', 'b'], skeleton: [[1, 2]] },
      { id: 4, name: 'tip' },
    ]);
    const sorted = [...coco.annotations].sort((p, q) => (p.id as number) - (q.id as number)).map(({ id: _id, ...rest }) => rest);
    expect(sorted).toEqual(
      expect.arrayContaining([
        // Across the item's two images: one annotation per image, the other point unlabelled.
        { image_id: image('two', 0), category_id: 1, keypoints: [10.5, 12.5, 2, 0, 0, 0], num_keypoints: 1, loupe_pair: expect.any(Number) },
        { image_id: image('two', 1), category_id: 1, keypoints: [0, 0, 0, 40.5, 44.5, 2], num_keypoints: 1, loupe_pair: expect.any(Number) },
        { image_id: image('two', 0), category_id: 2, area: 0, iscrowd: 0, loupe_label: 'class' },
        // Both points on one image: one annotation with both keypoints.
        { image_id: image('one', 0), category_id: 3, keypoints: [1, 2, 2, 3, 4, 2], num_keypoints: 2, loupe_pair: expect.any(Number) },
        { image_id: image('one', 0), category_id: 2, area: 0, iscrowd: 0, loupe_label: 'class' },
        { image_id: image('one', 0), category_id: 4, keypoints: [9, 9, 2], num_keypoints: 1 },
      ]),
    );
    expect(sorted).toHaveLength(6);
    const cross = coco.annotations.filter((a) => a.category_id === 1);
    expect(cross[0]!.loupe_pair).toBe(cross[1]!.loupe_pair);

    // pycocotools reads it: per category, the annotation count and the keypoint names.
    const py = [
      'import json, sys',
      'from pycocotools.coco import COCO',
      'c = COCO(sys.argv[1])',
      'print(json.dumps({str(k): [len(c.getAnnIds(catIds=[k])), c.loadCats(k)[0].get("keypoints")] for k in c.getCatIds()}))',
    ].join('\n');
    let out: string;
    try {
      out = execFileSync('python3', ['-c', py, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').at(-1)!;
    } catch (e) {
      throw new Error(`pycocotools could not read the export (python3 -m pip install pycocotools; .ci/run installs it): ${(e as { stderr?: string }).stderr?.slice(-400) ?? e}`);
    }
    expect(JSON.parse(out)).toEqual({ '1': [2, ['a', 'b']], '2': [2, null], '3': [1, ['a', 'b']], '4': [1, null] });

    // And Loupe's own COCO reader takes it back: each visible keypoint a point, the class annotations kept as unused.
    const back = await call<{ labels: number; ignored: number }>('datasets/import-coco', { path, imagesDir: dirname(path) });
    expect(back).toMatchObject({ labels: 2 + 2 + 1, ignored: 2 });
  });
});
