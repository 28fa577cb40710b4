/**
 * ImageNet-S importer: the fixture (tools/benchmark-fixtures/build_imagenet_s.py, the LUSSeg toolbox's
 * ImageNetS50 / ImageNetS919 layout, RGB masks with class = R + G·256) imported through
 * `datasets/import-benchmark`; item ids, images, prompts, labels, meta, the class list and every
 * stored mask pixel (read back with pngjs here, not with the importer's reader) compared with the
 * builder's truth (expected.json, written from the arrays it drew); variant detection, split,
 * subset, limit, progress, and refusals that leave nothing behind.
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.ts';
import { type Imported, importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/imagenet-s');

interface TruthItem {
  id: string;
  wnid: string;
  classId: number;
  className: string;
  image: string;
  mask: string;
  size: [number, number];
  classIds: number[];
  labelOrder: number[];
  backgroundPixels: number;
  ignoredPixels: number;
  pixels: number[];
}
interface Truth {
  ignore: number;
  categories: Record<string, Record<string, [number, string]>>;
  variants: Record<string, Record<string, TruthItem[]>>;
  extra: Record<string, { at: [number, number]; id: number }>;
}
const truth = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as Truth;

const h = importHarness('imagenet-s');
const { events, manifestOf, importBenchmark: importImagenetS } = h;

/** A stored mask's values: greyscale PNG, 8- or 16-bit, decoded by pngjs without rescaling. */
function storedIds(path: string): { width: number; height: number; bitDepth: number; ids: number[] } {
  const bytes = readFileSync(path);
  const png = PNG.sync.read(bytes, { skipRescale: true });
  expect(bytes[25], `${path} colour type`).toBe(0);
  const data = png.data as unknown as ArrayLike<number>;
  return { width: png.width, height: png.height, bitDepth: bytes[24]!, ids: Array.from({ length: png.width * png.height }, (_, i) => data[i * 4]!) };
}

/** Every item of `want` in `imported`, in order: id, image bytes, prompt, labels, meta and every mask pixel. */
function expectItems(imported: Imported, variant: string, want: TruthItem[]): void {
  const manifest = manifestOf(imported);
  expect(manifest.items.map((i) => i.id)).toEqual(want.map((t) => t.id));
  const root = join(FIXTURE, `ImageNetS${variant}`);
  for (const [k, t] of want.entries()) {
    const item = manifest.items[k]!;
    expect(item.images).toHaveLength(1);
    expect(readFileSync(join(imported.dataset.path, item.images[0]!)).equals(readFileSync(join(root, t.image))), t.id).toBe(true);
    expect(item.prompt).toBe(`Where is the ${t.className} in this image?`);
    const names = truth.categories[variant]!;
    const nameOf = (id: number) => Object.values(names).find(([c]) => c === id)![1];
    const file = item.labels[0]!.kind === 'mask' ? item.labels[0]!.file : '';
    expect(item.labels).toEqual(t.labelOrder.map((id) => ({ kind: 'mask', image: 0, file, ids: [id], ignoreIds: [1000], name: nameOf(id) })));
    expect(item.meta).toEqual({ wnid: t.wnid, classId: t.classId, className: t.className, classIds: t.classIds, backgroundPixels: t.backgroundPixels, ignoredPixels: t.ignoredPixels, image: t.image, mask: t.mask });
    const mask = storedIds(join(imported.dataset.path, file));
    expect([mask.width, mask.height]).toEqual(t.size);
    expect(mask.bitDepth).toBe(t.ignoredPixels || Math.max(...t.classIds) > 255 ? 16 : 8);
    expect(mask.ids, t.id).toEqual(t.pixels);
  }
}

describe('ImageNet-S importer', () => {
  it('the fixture needs R + G·256: ids above 255 and the ignore id 1000 have G > 0', () => {
    const png = PNG.sync.read(readFileSync(join(FIXTURE, 'ImageNetS919/validation-segmentation/n02012849/ILSVRC2012_val_00008260.png')));
    const t = truth.variants['919']!.validation!.find((i) => i.id === 'ILSVRC2012_val_00008260')!;
    const rgbOf = (id: number) => [...png.data.subarray(t.pixels.indexOf(id) * 4, t.pixels.indexOf(id) * 4 + 3)];
    expect([rgbOf(135), rgbOf(496), rgbOf(1000), rgbOf(0)]).toEqual([[135, 0, 0], [240, 1, 0], [232, 3, 0], [0, 0, 0]]);
  });

  it('imports ImageNetS50 validation: one item per image, every pixel class, the 50 categories; progress by image', async () => {
    events.length = 0;
    const want = truth.variants['50']!.validation!;
    const r = await importImagenetS(FIXTURE, { subset: ['50'] });
    const labels = want.reduce((n, t) => n + t.labelOrder.length, 0);
    const ignored = want.reduce((n, t) => n + t.ignoredPixels, 0);
    expect(ignored).toBeGreaterThan(0);
    expect(r).toMatchObject({ items: want.length, labels, dataset: { itemCount: want.length, task: 'semantic-segmentation' } });
    expect(r.warnings).toEqual([
      `${ignored} ignored pixels (class 1000) kept as id 1000 in the masks and listed as ignoreIds on every label: left out of the scores, as the official evaluator does`,
      '1 image without a pixel of their folder\'s class: ILSVRC2012_val_00049770',
    ]);
    expectItems(r, '50', want);

    const manifest = manifestOf(r);
    expect(manifest.name).toBe('ImageNet-S50 validation');
    const source = manifest.source as { variant: number; split: string; ignoreId: number; backgroundId: number; categories: { id: number; wnid: string; name: string }[] };
    expect(source).toMatchObject({ benchmark: 'ImageNet-S', variant: 50, split: 'validation', ignoreId: 1000, backgroundId: 0, format: 'imagenet-s', importedFrom: FIXTURE });
    expect(source.categories).toHaveLength(50);
    expect(source.categories.map((c) => c.id)).toEqual(Array.from({ length: 50 }, (_, k) => k + 1));
    const wnids = source.categories.map((c) => c.wnid);
    expect(wnids).toEqual([...wnids].sort());
    for (const [wnid, [id, name]] of Object.entries(truth.categories['50']!)) expect(source.categories[id - 1]).toEqual({ id, wnid, name });

    const mine = events.filter((e) => e.format === 'imagenet-s');
    expect(mine[0]).toEqual({ format: 'imagenet-s', phase: 'reading', done: 0, total: null });
    expect(mine[1]).toEqual({ format: 'imagenet-s', phase: 'images', done: 0, total: want.length });
    expect(mine.at(-2)).toEqual({ format: 'imagenet-s', phase: 'images', done: want.length, total: want.length });
    expect(mine.at(-1)).toEqual({ format: 'imagenet-s', phase: 'done', done: want.length, total: want.length });
  });

  it('ImageNetS919 by its folder name: ids above 255 kept (16-bit masks), the two "crane" categories named', async () => {
    const want = truth.variants['919']!.validation!;
    const r = await importImagenetS(join(FIXTURE, 'ImageNetS919'));
    expect(r.items).toBe(want.length);
    expectItems(r, '919', want);
    expect(r.warnings).toContain('two categories present are both named "crane" (the toolbox\'s names); their mask labels share the name, so a per-name score merges them (their ids differ)');
    const source = manifestOf(r).source as { variant: number; categories: { id: number; wnid: string; name: string }[] };
    expect(source.variant).toBe(919);
    expect(source.categories).toHaveLength(919);
    for (const [wnid, [id, name]] of Object.entries(truth.categories['919']!)) expect(source.categories[id - 1]).toEqual({ id, wnid, name });
  });

  it('split train-semi; subset by wnid or class name; limit; a renamed folder with the variant in the subset', async () => {
    const semi = await importImagenetS(join(FIXTURE, 'ImageNetS50'), { split: 'train-semi' });
    expectItems(semi, '50', truth.variants['50']!['train-semi']!);
    expect(manifestOf(semi).name).toBe('ImageNet-S50 train-semi');

    const val = truth.variants['50']!.validation!;
    const picked = await importImagenetS(FIXTURE, { subset: ['ImageNetS50', 'n12998815', 'Goldfish'] });
    expectItems(picked, '50', val.filter((t) => t.wnid === 'n12998815' || t.wnid === 'n01443537'));
    const fox = await importImagenetS(join(FIXTURE, 'ImageNetS50'), { subset: ['red fox'] });
    expectItems(fox, '50', val.filter((t) => t.wnid === 'n02119022'));

    const limited = await importImagenetS(join(FIXTURE, 'ImageNetS50'), { limit: 2 });
    expectItems(limited, '50', val.slice(0, 2));

    const copy = tempDir('loupe-imagenet-s-');
    cpSync(join(FIXTURE, 'ImageNetS50'), join(copy, 'my-copy'), { recursive: true });
    const renamed = await importImagenetS(join(copy, 'my-copy'), { subset: ['50'] });
    expect(manifestOf(renamed).items.map((i) => i.id)).toEqual(val.map((t) => t.id));
  });

  it('refuses broken folders by file name and leaves nothing under <data>/datasets/', async () => {
    const broken = (edit: (root: string) => void): string => {
      const copy = tempDir('loupe-imagenet-s-bad-');
      cpSync(join(FIXTURE, 'ImageNetS50'), join(copy, 'ImageNetS50'), { recursive: true });
      edit(join(copy, 'ImageNetS50'));
      return join(copy, 'ImageNetS50');
    };
    const seg = 'validation-segmentation';
    const first = `${seg}/n01443537/ILSVRC2012_val_00004677`;
    const extra = (name: string) => join(FIXTURE, 'extra', name);
    const outside = tempDir('loupe-imagenet-s-outside-');
    writeFileSync(join(outside, 'secret.png'), readFileSync(join(FIXTURE, `ImageNetS50/${first}.png`)));
    const renamedOnly = tempDir('loupe-imagenet-s-renamed-');
    cpSync(join(FIXTURE, 'ImageNetS50'), join(renamedOnly, 'copy'), { recursive: true });

    const cases: [string, Record<string, unknown>, RegExp][] = [
      [broken((r) => rmSync(join(r, seg), { recursive: true })), {}, /mask folder validation-segmentation is missing from .*ImageNetS50/],
      [broken((r) => rmSync(join(r, `${first}.png`))), {}, /image validation\/n01443537\/ILSVRC2012_val_00004677\.JPEG in .* has no mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png/],
      [broken((r) => rmSync(join(r, 'validation/n02119022'), { recursive: true })), {}, /mask validation-segmentation\/n02119022\/ILSVRC2012_val_00001189\.png in .* has no image validation\/n02119022\/ILSVRC2012_val_00001189\.JPEG/],
      [broken((r) => copyFileSync(extra('wrong-size.png'), join(r, `${first}.png`))), {}, /mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png is 19×16 but its image validation\/n01443537\/ILSVRC2012_val_00004677\.JPEG is 20×16/],
      [broken((r) => copyFileSync(extra('class-51.png'), join(r, `${first}.png`))), {}, /mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png in .* has class id 51 at \(0, 0\) \(R 51, G 0\); ImageNet-S50 ids are 1…50, 0 \(other\) and 1000 \(ignored\)/],
      [broken((r) => copyFileSync(extra('class-1001.png'), join(r, `${first}.png`))), {}, /ILSVRC2012_val_00004677\.png in .* has class id 1001 at \(19, 15\) \(R 233, G 3\)/],
      [broken((r) => copyFileSync(extra('greyscale.png'), join(r, `${first}.png`))), {}, /mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png in .* is a greyscale PNG; an ImageNet-S mask is an 8-bit RGB PNG whose class id is R \+ G·256/],
      [broken((r) => copyFileSync(extra('jpeg-bytes.png'), join(r, `${first}.png`))), {}, /mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png in .* is a JPEG, not a PNG/],
      [broken((r) => renameSync(join(r, `${first}.png`), join(r, `${first}.jpg`))), {}, /validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.jpg in .* is not a PNG mask \(\.png\)/],
      [broken((r) => mkdirSync(join(r, 'validation/n99999999'))), {}, /validation\/n99999999 in .* is not an ImageNet-S50 category \(a wnid of ImageNetS_categories_im50\.txt\)/],
      [broken((r) => (rmSync(join(r, `${first}.png`)), symlinkSync(join(outside, 'secret.png'), join(r, `${first}.png`)))), {}, /mask validation-segmentation\/n01443537\/ILSVRC2012_val_00004677\.png is a link leading outside/],
      [broken((r) => (rmSync(join(r, seg, 'n01443537'), { recursive: true }), symlinkSync(outside, join(r, seg, 'n01443537')))), {}, /mask folder validation-segmentation\/n01443537 is a link leading outside/],
      [FIXTURE, {}, /imagenet-s holds ImageNetS50, ImageNetS919; name one in the subset \(e\.g\. 50\) or point at it/],
      [FIXTURE, { subset: ['300'] }, /has no ImageNetS300\/ folder \(it has ImageNetS50, ImageNetS919\)/],
      [join(FIXTURE, 'ImageNetS50'), { subset: ['919'] }, /is ImageNet-S50 by its name, but the subset asks for ImageNet-S919/],
      [join(FIXTURE, 'ImageNetS50'), { subset: ['50', '919'] }, /the subset names ImageNet-S50 and ImageNet-S919; one import reads one variant/],
      [join(renamedOnly, 'copy'), {}, /cannot tell which ImageNet-S .* is: its name is not ImageNetS50\/300\/919 and validation\/ has 3 class folders; name the variant in the subset \(50, 300 or 919\)/],
      [join(FIXTURE, 'ImageNetS50'), { subset: ['tench'] }, /ImageNet-S50 has no category tench/],
      [join(FIXTURE, 'ImageNetS50'), { split: 'test' }, /ImageNet-S has no annotated split 'test' \(validation, train-semi; test masks are kept on the evaluation server\)/],
      [join(FIXTURE, 'ImageNetS919'), { split: 'train-semi' }, /image folder train-semi is missing from .*ImageNetS919/],
      [tempDir('loupe-empty-'), {}, /is not an ImageNet-S folder: it has no ImageNetS50\/ImageNetS300\/ImageNetS919 folder and no validation\/ folder/],
    ];
    // the writer's abort must remove the staging folder (some cases fail after images were copied)
    for (const [path, options, message] of cases) await h.expectRefused(() => importImagenetS(path, options), message, `${path} ${JSON.stringify(options)} ${String(message)}`);
  });
});
