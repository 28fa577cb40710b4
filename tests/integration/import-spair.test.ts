/**
 * SPair-71k importer: the fixture (tools/benchmark-fixtures/build_spair.py, published layout and
 * keys) imported through `datasets/import-benchmark`; every keypoint pair, both boxes, the flags and
 * the images compared with the builder's truth (expected.json) and with the per-image annotation
 * files; split/subset/limit/layout, progress, and refusals that leave nothing behind.
 */
import { cpSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Label } from '../../src-shared/dataset/format.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type Imported, importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/spair-71k');
const ROOT = join(FIXTURE, 'SPair-71k');

interface Pair {
  pair_id: number;
  src_imname: string;
  trg_imname: string;
  src_imsize: number[];
  trg_imsize: number[];
  src_bndbox: number[];
  trg_bndbox: number[];
  src_pose: string;
  trg_pose: string;
  src_kps: [number, number][];
  trg_kps: [number, number][];
  kps_ids: string[];
  category: string;
  viewpoint_variation: number;
  scale_variation: number;
  truncation: number;
  occlusion: number;
  mirror: number;
}
const truth = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { splits: Record<string, string[]>; pairs: Record<string, Pair> };

const h = importHarness('spair-71k');
const { events, call, manifestOf, importBenchmark: importSpair } = h;

/** The published item of `name` in `split`: labels in kps_ids order, then the two boxes. */
function expectedLabels(p: Pair): Label[] {
  return [
    ...p.kps_ids.map((id, i): Label => ({ kind: 'pointPair', a: { image: 0, at: p.src_kps[i]! }, b: { image: 1, at: p.trg_kps[i]! }, name: id })),
    { kind: 'box', image: 0, box: p.src_bndbox as [number, number, number, number], text: 'bbox' },
    { kind: 'box', image: 1, box: p.trg_bndbox as [number, number, number, number], text: 'bbox' },
  ];
}

/** Items of the imported dataset equal the truth of `split`'s `names`, in order, in the manifest and in the store. */
async function expectPairs(r: Imported, split: string, names: string[]): Promise<void> {
  const manifest = manifestOf(r);
  expect(manifest.items.map((i) => i.id)).toEqual(names);
  const images = new Set<string>();
  for (const item of manifest.items) {
    const p = truth.pairs[`${split}/${item.id}`]!;
    expect(item.labels).toEqual(expectedLabels(p));
    const stored = await call<{ label: Label }[]>('labels/list', { datasetId: r.dataset.id, itemId: item.id });
    expect(stored.map((s) => s.label)).toEqual(expectedLabels(p));
    expect(item.meta).toEqual({
      pairFile: `PairAnnotation/${split}/${item.id}.json`,
      pair_id: p.pair_id,
      category: p.category,
      src_imname: p.src_imname,
      trg_imname: p.trg_imname,
      src_imsize: p.src_imsize,
      trg_imsize: p.trg_imsize,
      src_pose: p.src_pose,
      trg_pose: p.trg_pose,
      viewpoint_variation: p.viewpoint_variation,
      scale_variation: p.scale_variation,
      truncation: p.truncation,
      occlusion: p.occlusion,
      mirror: p.mirror,
    });
    [p.src_imname, p.trg_imname].forEach((im, k) => {
      expect(readFileSync(join(r.dataset.path, item.images[k]!)).equals(readFileSync(join(ROOT, 'JPEGImages', p.category, im)))).toBe(true);
      images.add(item.images[k]!);
    });
    // The pair's keypoints are the per-image annotations' coordinates of ids visible in both.
    const src = JSON.parse(readFileSync(join(ROOT, 'ImageAnnotation', p.category, p.src_imname.replace('.jpg', '.json')), 'utf8')) as { kps: Record<string, number[] | null> };
    const trg = JSON.parse(readFileSync(join(ROOT, 'ImageAnnotation', p.category, p.trg_imname.replace('.jpg', '.json')), 'utf8')) as { kps: Record<string, number[] | null> };
    const both = Object.keys(src.kps).filter((k) => src.kps[k] && trg.kps[k]);
    const pairs = item.labels.filter((l) => l.kind === 'pointPair');
    expect(pairs.map((l) => [l.name, l.a.at, l.b.at])).toEqual(both.map((k) => [k, src.kps[k], trg.kps[k]]));
  }
  // Each image is copied once however many pairs use it.
  expect(readdirSync(join(r.dataset.path, 'images')).length).toBe(images.size);
}

describe('SPair-71k importer', () => {
  it('imports the test split (default) in Layout order: every keypoint pair, both boxes, flags, images; progress by pair', async () => {
    events.length = 0;
    const r = await importSpair(FIXTURE, {});
    const names = truth.splits.test!;
    const labels = names.reduce((n, name) => n + truth.pairs[`test/${name}`]!.kps_ids.length + 2, 0);
    expect(r).toMatchObject({ items: names.length, labels, warnings: [], dataset: { itemCount: names.length } });
    await expectPairs(r, 'test', names);
    const mine = events.filter((e) => e.format === 'spair-71k');
    expect(mine[0]).toEqual({ format: 'spair-71k', phase: 'reading', done: 0, total: null });
    expect(mine[1]).toEqual({ format: 'spair-71k', phase: 'pairs', done: 0, total: names.length });
    expect(mine.at(-2)).toEqual({ format: 'spair-71k', phase: 'pairs', done: names.length, total: names.length });
    expect(mine.at(-1)).toEqual({ format: 'spair-71k', phase: 'done', done: names.length, total: names.length });
  });

  it('split, subset (categories), limit and the small layout select the published pairs', async () => {
    for (const split of ['trn', 'val']) await expectPairs(await importSpair(join(FIXTURE, 'SPair-71k'), { split }), split, truth.splits[split]!);
    const cats = truth.splits.test!.filter((n) => n.endsWith(':cat'));
    expect(cats.length).toBe(2);
    await expectPairs(await importSpair(FIXTURE, { split: 'test', subset: ['cat'] }), 'test', cats);
    await expectPairs(await importSpair(FIXTURE, { subset: ['cat', 'bicycle'], limit: 2 }), 'test', truth.splits.test!.filter((n) => /:(cat|bicycle)$/.test(n)).slice(0, 2));
    await expectPairs(await importSpair(FIXTURE, { split: 'small/test' }), 'test', truth.splits['small/test']!);
    expect(truth.splits['small/test']).not.toEqual(truth.splits.test);
  });

  it('without Layout/ the pair folder is read in name order, with a warning', async () => {
    const copy = tempDir('loupe-spair-');
    cpSync(FIXTURE, copy, { recursive: true });
    rmSync(join(copy, 'SPair-71k/Layout'), { recursive: true });
    const r = await importSpair(copy, { split: 'val' });
    expect(r.warnings).toEqual(['Layout/large/val.txt is missing; pairs taken from PairAnnotation/val/ in name order']);
    await expectPairs(r, 'val', [...truth.splits.val!].sort());
  });

  it('refuses broken folders by file name and leaves nothing under <data>/datasets/', async () => {
    const [first, second, third] = truth.splits.test!;
    const rel = (name: string) => `PairAnnotation/test/${name}.json`;
    const broken = (edit: (root: string) => void): string => {
      const copy = tempDir('loupe-spair-bad-');
      cpSync(FIXTURE, copy, { recursive: true });
      edit(join(copy, 'SPair-71k'));
      return copy;
    };
    const editPair = (name: string, change: (p: Pair) => void) => (root: string) => {
      const p = JSON.parse(readFileSync(join(root, rel(name)), 'utf8')) as Pair;
      change(p);
      writeFileSync(join(root, rel(name)), JSON.stringify(p));
    };
    const p2 = truth.pairs[`test/${second}`]!;
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [broken((r) => writeFileSync(join(r, rel(second!)), '{"src_imname": ')), {}, new RegExp(`SPair-71k pair file ${esc(rel(second!))} in .* is not valid JSON`)],
      [broken((r) => rmSync(join(r, 'JPEGImages', p2.category, p2.trg_imname))), {}, new RegExp(`image JPEGImages/${p2.category}/${esc(p2.trg_imname)} is missing from`)],
      [broken(editPair(third!, (p) => (p.trg_kps[0] = [p.trg_imsize[0]! + 1, 3]))), {}, new RegExp(`${esc(rel(third!))}: trg_kps\\[0\\] \\(keypoint ${truth.pairs[`test/${third}`]!.kps_ids[0]}\\) = \\(${truth.pairs[`test/${third}`]!.trg_imsize[0]! + 1}, 3\\) lies outside`)],
      [broken(editPair(second!, (p) => (p.src_imsize = [p.src_imsize[0]! + 2, p.src_imsize[1]!, 3]))), {}, new RegExp(`${esc(rel(second!))}: src_imsize says ${p2.src_imsize[0]! + 2}×${p2.src_imsize[1]} but JPEGImages/${p2.category}/${esc(p2.src_imname)} is ${p2.src_imsize[0]}×${p2.src_imsize[1]}`)],
      [broken(editPair(first!, (p) => p.trg_kps.pop())), {}, new RegExp(`${esc(rel(first!))}: \\d+ kps_ids but \\d+ src_kps and \\d+ trg_kps`)],
      [broken(editPair(first!, (p) => delete (p as Partial<Pair>).trg_bndbox)), {}, new RegExp(`${esc(rel(first!))} in .*: trg_bndbox: `)],
      [broken(editPair(first!, (p) => (p.category = 'cat'))), {}, new RegExp(`${esc(rel(first!))}: category cat but its name says aeroplane`)],
      [
        broken((r) => {
          symlinkSync('/etc/hostname', join(r, 'JPEGImages', p2.category, 'outside.jpg'));
          writeFileSync(join(r, rel(second!)), JSON.stringify({ ...p2, src_imname: 'outside.jpg' }));
        }),
        {},
        /image JPEGImages\/\w+\/outside\.jpg is a link leading outside/,
      ],
      [broken(editPair(second!, (p) => (p.trg_imname = '../../../../etc/hostname'))), {}, /image JPEGImages\/\w+\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/hostname lies outside/],
      [FIXTURE, { split: 'train' }, /SPair-71k has no split 'train' \(trn, val, test, optionally small\/<split>\)/],
      [FIXTURE, { subset: ['cat', 'dinosaur'] }, /SPair-71k has no category dinosaur/],
      [tempDir('loupe-empty-'), {}, /is not a SPair-71k folder/],
    ];
    // the writer's abort must remove the staging folder (most cases fail after images were copied)
    for (const [path, options, message] of cases) await h.expectRefused(() => importSpair(path, options), message, `${path} ${JSON.stringify(options)} → ${message}`);
  });
});
