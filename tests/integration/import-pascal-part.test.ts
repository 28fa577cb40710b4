/**
 * PASCAL-Part through `datasets/import-benchmark`: the fixture built by
 * tools/benchmark-fixtures/build_pascal_part.py (MAT-files written by scipy.io.savemat in the
 * dataset's struct layout) imports with every object and part mask pixel-exact against the
 * builder's numpy truth; split, subset, limit, progress; bad folders leave nothing behind.
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import type { Label } from '../../src-shared/dataset/format.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type Imported, importHarness } from '../helpers/import-harness.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'benchmarks', 'pascal-part');
interface TruthObject {
  class: string;
  class_ind: number;
  pixels: number[];
  parts: { part_name: string; pixels: number[] }[];
}
const expected = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { images: { id: string; width: number; height: number; split: string; objects: TruthObject[] }[] };

const h = importHarness('pascal-part');
const { call, manifestOf } = h;

interface ObjectMeta {
  class: string;
  classInd: number;
  label: number;
  parts: { name: string; label: number }[];
}

/** Row-major indices of the pixels a mask label selects, read back through `labels/mask`. */
async function pixelsOf(stored: StoredLabel): Promise<number[]> {
  const { response, tensor } = await dispatch(h.engine.handlers, { t: 'req', id: 5, method: 'labels/mask', params: { id: stored.id } });
  if (!response.ok) throw LoupeError.from(response.error);
  const data = tensor!.data as ArrayLike<number>;
  const ids = new Set((stored.label as Extract<Label, { kind: 'mask' }>).ids);
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) if (ids.has(data[i]!)) out.push(i);
  return out;
}

describe('PASCAL-Part import', () => {
  it('imports every object and part mask pixel-exact, named class and class/part, with objects → parts in meta', async () => {
    const events: { phase: string; done: number; total: number | null }[] = [];
    const off = h.engine.onEvent((name, p) => {
      if (name === 'import/progress') events.push(p as (typeof events)[number]);
    });
    const r = await call<Imported>('datasets/import-benchmark', { format: 'pascal-part', path: FIXTURE });
    off();
    const objects = expected.images.flatMap((i) => i.objects);
    const parts = objects.flatMap((o) => o.parts);
    expect([objects.length, parts.length]).toEqual([8, 13]);
    expect(r).toMatchObject({ items: 4, labels: objects.length + parts.length, warnings: [], dataset: { task: 'pascal-part', itemCount: 4 } });
    expect(events[0]).toMatchObject({ phase: 'reading', total: null });
    expect(events.at(-1)).toMatchObject({ phase: 'done', done: 4, total: 4 });

    const manifest = manifestOf(r);
    expect(manifest.items.map((i) => i.id)).toEqual(expected.images.map((i) => i.id));
    let checked = 0;
    for (const truth of expected.images) {
      const item = manifest.items.find((i) => i.id === truth.id)!;
      const stored = await call<StoredLabel[]>('labels/list', { datasetId: r.dataset.id, itemId: truth.id });
      const meta = (item.meta as { imname: string; objects: ObjectMeta[] });
      expect(meta.imname).toBe(truth.id);
      expect(meta.objects.map((o) => ({ class: o.class, classInd: o.classInd, parts: o.parts.map((p) => p.name) }))).toEqual(
        truth.objects.map((o) => ({ class: o.class, classInd: o.class_ind, parts: o.parts.map((p) => p.part_name) })),
      );
      for (const [k, o] of truth.objects.entries()) {
        const obj = stored[meta.objects[k]!.label]!;
        expect(obj.label).toMatchObject({ kind: 'mask', image: 0, name: o.class });
        expect(await pixelsOf(obj)).toEqual(o.pixels);
        checked++;
        for (const [j, p] of o.parts.entries()) {
          const part = stored[meta.objects[k]!.parts[j]!.label]!;
          expect(part.label).toMatchObject({ kind: 'mask', image: 0, name: `${o.class}/${p.part_name}` });
          expect(await pixelsOf(part)).toEqual(p.pixels);
          checked++;
        }
      }
    }
    expect(checked).toBe(21);
    // The two overlapping cats of 2009_000003 are both whole: they cannot share one id map.
    const cats = manifest.items[2]!.labels.filter((l) => l.kind === 'mask' && l.name === 'cat') as Extract<Label, { kind: 'mask' }>[];
    expect(new Set(cats.map((c) => c.file)).size).toBe(2);
  });

  it('keeps a VOC2010 split, a subset of classes and at most `limit` images', async () => {
    const val = manifestOf(await call<Imported>('datasets/import-benchmark', { format: 'pascal-part', path: FIXTURE, options: { split: 'val' } }));
    expect(val.items.map((i) => i.id)).toEqual(expected.images.filter((i) => i.split === 'val').map((i) => i.id));
    const cats = manifestOf(await call<Imported>('datasets/import-benchmark', { format: 'pascal-part', path: join(FIXTURE, 'Annotations_Part'), options: { subset: ['cat'] } }));
    expect(cats.items.map((i) => i.id)).toEqual(['2009_000003']);
    expect(cats.items[0]!.labels.map((l) => (l.kind === 'mask' ? l.name : l.kind))).toEqual(['cat', 'cat/head', 'cat/tail', 'cat', 'cat/head']);
    const one = await call<Imported>('datasets/import-benchmark', { format: 'pascal-part', path: FIXTURE, options: { limit: 1 } });
    expect(one).toMatchObject({ items: 1, labels: 7 });
    await expect(call('datasets/import-benchmark', { format: 'pascal-part', path: FIXTURE, options: { split: 'test' } })).rejects.toThrow(/split test: no image set .*ImageSets\/Main\/test\.txt/);
  });

  it('refuses a truncated MAT-file, a mask that does not fit its image and a missing image folder, leaving nothing behind', async () => {
    const copy = () => {
      const root = tempDir('loupe-pp-bad-');
      cpSync(FIXTURE, root, { recursive: true });
      return root;
    };
    const truncated = copy();
    const mat = join(truncated, 'Annotations_Part', '2008_000002.mat');
    writeFileSync(mat, readFileSync(mat).subarray(0, 300));
    const resized = copy();
    const jpegs = join(resized, 'VOCdevkit', 'VOC2010', 'JPEGImages');
    writeFileSync(join(jpegs, '2010_000004.jpg'), readFileSync(join(jpegs, '2008_000002.jpg')));
    const noImages = copy();
    rmSync(join(noImages, 'VOCdevkit'), { recursive: true });
    const cases: [string, string, RegExp][] = [
      ['truncated', truncated, /MAT-file Annotations_Part\/2008_000002\.mat.*(truncated|needs \d+ bytes)/],
      ['resized', resized, /Annotations_Part\/2010_000004\.mat: objects\(1\)\.mask is 16×20 but the image is 20×24/],
      ['no images', noImages, /no VOC2010 JPEGImages\/ folder found/],
      ['not PASCAL-Part', tempDir('loupe-pp-empty-'), /has no Annotations_Part\/ folder/],
    ];
    for (const [what, path, message] of cases) await h.expectRefused(() => call('datasets/import-benchmark', { format: 'pascal-part', path }), message, what);
  });
});
