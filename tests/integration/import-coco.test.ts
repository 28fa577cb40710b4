/**
 * COCO through `datasets/import-benchmark` (and the older `datasets/import-coco`, which now reads
 * with the same importer): instances and person_keypoints of the fixture built by
 * tools/benchmark-fixtures/build_coco.py, compared with the truth pycocotools computed there
 * (annToMask pixels, boxes, keypoints); subset, limit, progress; and refusals that leave no dataset.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import type { DatasetManifest, Label } from '../../src-shared/dataset/format.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type Imported, importHarness } from '../helpers/import-harness.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'benchmarks', 'coco');
const INSTANCES = join(FIXTURE, 'annotations', 'instances_val2017.json');
const KEYPOINTS = join(FIXTURE, 'annotations', 'person_keypoints_val2017.json');

interface Truth {
  id: number;
  image_id: number;
  category: string;
  bbox: number[];
  pixels?: number[];
  keypoints?: number[];
}
const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as {
  images: { id: number; file_name: string; width: number; height: number }[];
  instances: Truth[];
  person_keypoints: Truth[];
  keypoint_names: string[];
  skeleton: number[][];
};
const stem = (imageId: number) => String(imageId).padStart(12, '0');

const h = importHarness('coco');
const { call, manifestOf } = h;

async function maskOf(id: number): Promise<HostTensor> {
  const { response, tensor } = await dispatch(h.engine.handlers, { t: 'req', id: 3, method: 'labels/mask', params: { id } });
  if (!response.ok) throw LoupeError.from(response.error);
  if (!tensor) throw new Error('labels/mask sent no tensor frame');
  return { dtype: tensor.header.dtype, shape: tensor.header.shape, data: tensor.data };
}

/** Row-major indices of the pixels a mask label selects (its ids in its file). */
async function pixelsOf(stored: StoredLabel): Promise<number[]> {
  const l = stored.label as Extract<Label, { kind: 'mask' }>;
  const t = await maskOf(stored.id);
  const keep = new Set(l.ids ?? []);
  const out: number[] = [];
  for (let i = 0; i < (t.data as ArrayLike<number>).length; i++) {
    const v = (t.data as ArrayLike<number>)[i]!;
    if (v !== 0 && (keep.size === 0 || keep.has(v))) out.push(i);
  }
  return out;
}

interface AnnMeta {
  id: number;
  image: number;
  category?: string;
  bbox?: number[];
  iscrowd?: number;
  labels: number[];
  keypoints?: { index: number; label: number; v: number; name?: string }[];
}
const annsOf = (item: DatasetManifest['items'][number]) => (item.meta as { coco: { annotations: AnnMeta[] } }).coco.annotations;

describe('COCO import', () => {
  it('imports instances: polygon, RLE and crowd masks with pycocotools pixels, boxes, categories; progress', async () => {
    const events: { phase: string; done: number; total: number | null }[] = [];
    const off = h.engine.onEvent((name, p) => {
      if (name === 'import/progress') events.push(p as (typeof events)[number]);
    });
    const r = await call<Imported>('datasets/import-benchmark', { format: 'coco', path: INSTANCES });
    off();
    // Four images (one without annotations); six annotations → five masks and one box.
    expect(r).toMatchObject({ items: 4, labels: 6, warnings: [], dataset: { itemCount: 4, task: 'coco' } });
    expect(events[0]).toMatchObject({ phase: 'reading', done: 0, total: null });
    expect(events.at(-1)).toMatchObject({ phase: 'done', done: 4, total: 4 });

    const manifest = manifestOf(r);
    expect(manifest.items.map((i) => i.id)).toEqual(expected.images.map((i) => stem(i.id)));
    expect((manifest.source as { categories: unknown }).categories).toEqual([
      { id: 1, name: 'person', supercategory: 'person' },
      { id: 3, name: 'car', supercategory: 'vehicle' },
      { id: 18, name: 'dog', supercategory: 'animal' },
    ]);
    const raw = JSON.parse(readFileSync(INSTANCES, 'utf8')) as { annotations: { id: number; segmentation: unknown; iscrowd: number }[] };
    let masks = 0;
    for (const truth of expected.instances) {
      const item = manifest.items.find((i) => i.id === stem(truth.image_id))!;
      const meta = annsOf(item).find((a) => a.id === truth.id)!;
      expect(meta).toMatchObject({ image: 0, category: truth.category, bbox: truth.bbox });
      expect(meta.labels).toHaveLength(1);
      const stored = (await call<StoredLabel[]>('labels/list', { datasetId: r.dataset.id, itemId: item.id }))[meta.labels[0]!]!;
      if (truth.pixels) {
        masks++;
        expect(stored.label).toMatchObject({ kind: 'mask', image: 0, name: truth.category });
        expect(await pixelsOf(stored)).toEqual(truth.pixels);
        const seg = raw.annotations.find((a) => a.id === truth.id)!.segmentation;
        // Polygons are kept as polygons (pairs of the file's flat lists); RLE masks have none.
        if (Array.isArray(seg)) expect((stored.label as { polygons?: unknown }).polygons).toEqual((seg as number[][]).map((p) => p.flatMap((_, k) => (k % 2 ? [] : [[p[k], p[k + 1]]]))));
        else expect(stored.label).not.toHaveProperty('polygons');
      } else {
        const [x, y, w, h] = truth.bbox as [number, number, number, number];
        expect(stored.label).toEqual({ kind: 'box', image: 0, box: [x, y, x + w, y + h], text: truth.category });
      }
    }
    expect(masks).toBe(5);
    // The crowd region overlaps the person polygon: both kept whole, so they sit in different files.
    const first = manifest.items[0]!;
    const files = new Set(first.labels.map((l) => (l.kind === 'mask' ? l.file : '')));
    expect(files.size).toBe(2);
    expect(annsOf(first).find((a) => a.id === 1003)!.iscrowd).toBe(1);
    expect(manifest.items[3]!.labels).toEqual([]);
  });

  it('imports person_keypoints: every labelled keypoint as a named point, visibility in meta, skeleton kept', async () => {
    const r = await call<Imported>('datasets/import-benchmark', { format: 'coco', path: KEYPOINTS });
    expect(r.dataset.task).toBe('coco-keypoints');
    const manifest = manifestOf(r);
    expect((manifest.source as { categories: unknown }).categories).toEqual([{ id: 1, name: 'person', supercategory: 'person', keypoints: expected.keypoint_names, skeleton: expected.skeleton }]);
    let points = 0;
    for (const truth of expected.person_keypoints) {
      const item = manifest.items.find((i) => i.id === stem(truth.image_id))!;
      const meta = annsOf(item).find((a) => a.id === truth.id)!;
      const stored = await call<StoredLabel[]>('labels/list', { datasetId: r.dataset.id, itemId: item.id });
      expect(await pixelsOf(stored[meta.labels[0]!]!)).toEqual(truth.pixels);
      const kp = truth.keypoints!;
      const visible = expected.keypoint_names.map((name, k) => ({ name, k, x: kp[3 * k]!, y: kp[3 * k + 1]!, v: kp[3 * k + 2]! })).filter((p) => p.v > 0);
      expect(meta.keypoints!.map(({ index, v, name }) => ({ index, v, name }))).toEqual(visible.map((p) => ({ index: p.k, v: p.v, name: p.name })));
      for (const [j, p] of visible.entries()) {
        expect(stored[meta.keypoints![j]!.label]!.label).toEqual({ kind: 'point', image: 0, at: [p.x, p.y], name: p.name });
        points++;
      }
    }
    expect(points).toBe(7);
    expect(r.labels).toBe(2 + 7);
  });

  it('keeps only the subset categories and at most `limit` items', async () => {
    const dogs = await call<Imported>('datasets/import-benchmark', { format: 'coco', path: INSTANCES, options: { subset: ['dog'] } });
    const m = manifestOf(dogs);
    expect(m.items.map((i) => i.id)).toEqual([stem(139), stem(285)]);
    expect(m.items.flatMap((i) => i.labels.map((l) => (l.kind === 'mask' ? l.name : l.kind)))).toEqual(['dog', 'dog']);
    const one = await call<Imported>('datasets/import-benchmark', { format: 'coco', path: INSTANCES, options: { limit: 1 } });
    expect(one).toMatchObject({ items: 1, labels: 3 });
    await expect(call('datasets/import-benchmark', { format: 'coco', path: INSTANCES, options: { subset: ['unicorn'] } })).rejects.toThrow(/no category named unicorn/);
  });

  it('refuses broken files — bad JSON, missing arrays, missing image, escaping file_name, bad bbox, bad keypoints — leaving nothing behind', async () => {
    const root = tempDir('loupe-coco-bad-');
    cpSync(FIXTURE, root, { recursive: true });
    const outside = tempDir('loupe-coco-outside-');
    writeFileSync(join(outside, 'secret.jpg'), readFileSync(join(FIXTURE, 'val2017', '000000000139.jpg')));
    symlinkSync(join(outside, 'secret.jpg'), join(root, 'val2017', 'link.jpg'));
    const base = JSON.parse(readFileSync(INSTANCES, 'utf8')) as { images: { id: number; file_name: string }[]; annotations: Record<string, unknown>[] };
    const variant = (name: string, edit: (c: typeof base) => unknown): string => {
      const path = join(root, 'annotations', `instances_${name}.json`);
      mkdirSync(join(root, name), { recursive: true });
      cpSync(join(root, 'val2017'), join(root, name), { recursive: true });
      writeFileSync(path, JSON.stringify(edit(structuredClone(base))));
      return path;
    };
    const withImage = (c: typeof base, file_name: string) => ({ ...c, images: [...c.images, { id: 9, file_name, width: 48, height: 40 }] });
    const withAnn = (c: typeof base, patch: Record<string, unknown>) => ({ ...c, annotations: [...c.annotations, { id: 77, image_id: 139, category_id: 1, iscrowd: 0, area: 1, ...patch }] });
    const badJson = join(root, 'annotations', 'instances_broken.json');
    writeFileSync(badJson, '{"images": [');
    const cases: [string, string, RegExp][] = [
      ['bad JSON', badJson, /is not valid JSON/],
      ['missing arrays', variant('noarrays', (c) => ({ images: c.images })), /lacks "images" or "annotations"/],
      ['missing image', variant('missing', (c) => withImage(c, '000000999999.jpg')), /COCO image 9: 000000999999\.jpg is missing/],
      ['escaping ..', variant('escape', (c) => withImage(c, '../../../etc/passwd.jpg')), /COCO image 9: \.\.\/\.\.\/\.\.\/etc\/passwd\.jpg lies outside/],
      ['absolute', variant('absolute', (c) => withImage(c, join(outside, 'secret.jpg'))), /COCO image 9: .*secret\.jpg lies outside/],
      ['symlink out', variant('symlink', (c) => withImage(c, 'link.jpg')), /COCO image 9: link\.jpg is a link leading outside/],
      ['NaN bbox', variant('nanbox', (c) => withAnn(c, { bbox: [1, 2, 'NaN', 4] })), /annotation 77: bbox .* is not four finite numbers/],
      ['negative bbox', variant('negbox', (c) => withAnn(c, { bbox: [1, 2, -3, 4] })), /annotation 77: bbox .* negative width or height/],
      ['bbox outside', variant('outbox', (c) => withAnn(c, { bbox: [40, 30, 20, 5] })), /annotation 77: bbox \[40,30,20,5\] lies outside its 48×40 image/],
      ['keypoints length', variant('kplen', (c) => withAnn(c, { keypoints: [1, 2, 2, 3] })), /annotation 77: keypoints must be a list of finite x, y, v triples \(got 4 values\)/],
      ['keypoint outside', variant('kpout', (c) => withAnn(c, { keypoints: [10, 99, 2] })), /annotation 77: keypoint 1 \(10, 99\) lies outside its 48×40 image/],
    ];
    for (const [what, path, message] of cases) {
      await h.expectRefused(() => call('datasets/import-benchmark', { format: 'coco', path }), message, what);
      await h.expectRefused(() => call('datasets/import-coco', { path }), message, `${what} (import-coco)`);
    }
    expect(existsSync(join(outside, 'secret.jpg'))).toBe(true);
  });

  it('datasets/import-coco reads through the same importer (images folder given)', async () => {
    const r = await call<{ dataset: { id: string; itemCount: number }; images: number; labels: number; ignored: number }>('datasets/import-coco', { path: INSTANCES, imagesDir: join(FIXTURE, 'val2017') });
    expect(r).toMatchObject({ images: 4, labels: 6, ignored: 0, dataset: { itemCount: 4 } });
  });
});
