/**
 * SPair-71k (semantic correspondence) from its published folder:
 *
 *   SPair-71k/PairAnnotation/{trn,val,test}/<pair>.json   one pair each (keys below)
 *   SPair-71k/ImageAnnotation/<category>/<img>.json       per image (kps with null when invisible)
 *   SPair-71k/JPEGImages/<category>/<img>.jpg
 *   SPair-71k/Segmentation/<category>/<img>.png
 *   SPair-71k/Layout/{large,small}/{trn,val,test}.txt     the pair names of each split, in order
 *
 * One item per pair: images [source, target]; each of `kps_ids` a `pointPair` (a = src_kps[i] on
 * image 0, b = trg_kps[i] on image 1, name = the keypoint id); `src_bndbox` / `trg_bndbox` as
 * `box` labels with text "bbox", numbers exactly as published ([x1, y1, x2, y2]): SPair's PCK
 * threshold is α·max(x2 − x1, y2 − y1) of the target box, so the box must not be shifted or
 * widened on the way. Pair names come from Layout/large/<split>.txt as the authors' loaders read
 * them (Layout/small/… with split 'small/<split>'); without a Layout folder, the PairAnnotation
 * folder sorted, with a warning.
 *
 * Options: `split` trn | val | test (default test) or small/<split>; `subset` = categories;
 * `limit` = at most that many pairs.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import { type DatasetMeta, type DatasetWriter, resolveInside, tick } from './dataset-writer.ts';

const SPLITS = ['trn', 'val', 'test'];
const CATEGORIES = ['aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'train', 'tvmonitor'];

const XY = z.tuple([z.number().finite(), z.number().finite()]);
const BOX = z.tuple([z.number().finite(), z.number().finite(), z.number().finite(), z.number().finite()]);
/** [width, height, channels] as the pair files store the image sizes. */
const IMSIZE = z.array(z.number().int().positive()).min(2).max(3);
const FLAG = z.number().int().nonnegative();

/** The keys of a PairAnnotation file that the importer reads; others are ignored. */
const PairFile = z.object({
  pair_id: z.number().int().optional(),
  filename: z.string().optional(),
  src_imname: z.string().min(1),
  trg_imname: z.string().min(1),
  src_imsize: IMSIZE,
  trg_imsize: IMSIZE,
  src_bndbox: BOX,
  trg_bndbox: BOX,
  src_pose: z.union([z.string(), z.number()]).optional(),
  trg_pose: z.union([z.string(), z.number()]).optional(),
  src_kps: z.array(XY),
  trg_kps: z.array(XY),
  /** Keypoint ids of the category's keypoint list; strings in the published files. */
  kps_ids: z.array(z.union([z.string().min(1), z.number().int().nonnegative()])),
  category: z.string().min(1),
  viewpoint_variation: FLAG,
  scale_variation: FLAG,
  truncation: FLAG,
  occlusion: FLAG,
  mirror: FLAG.optional(),
});
type PairFile = z.infer<typeof PairFile>;


function spairRoot(source: string): string {
  for (const root of [join(source, 'SPair-71k'), source]) if (existsSync(join(root, 'PairAnnotation'))) return root;
  throw new LoupeError('bad-input', `${source} is not a SPair-71k folder: neither it nor ${join(source, 'SPair-71k')} has PairAnnotation/ (expected PairAnnotation/, ImageAnnotation/, JPEGImages/, Layout/)`);
}

/** Pair names (file stems) of a split, in the published order. */
function pairNames(root: string, layout: 'large' | 'small', split: string, warnings: string[]): string[] {
  const rel = `Layout/${layout}/${split}.txt`;
  if (!existsSync(join(root, rel))) {
    if (layout === 'small') throw new LoupeError('bad-input', `${rel} is missing from ${root} (split 'small/${split}' reads it)`);
    warnings.push(`${rel} is missing; pairs taken from PairAnnotation/${split}/ in name order`);
    return readdirSync(resolveInside(root, `PairAnnotation/${split}`, 'pair folder'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort();
  }
  return readFileSync(resolveInside(root, rel, 'layout file'), 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `000001-2008_000585-2008_004704:aeroplane` → aeroplane (the name ends with `:<category>`). */
function categoryOfName(name: string): string | null {
  const at = name.lastIndexOf(':');
  return at < 0 ? null : name.slice(at + 1);
}

function readPair(root: string, rel: string): PairFile {
  const path = resolveInside(root, rel, 'pair annotation');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new LoupeError('bad-input', `SPair-71k pair file ${rel} in ${root} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = PairFile.safeParse(json);
  if (!parsed.success) throw new LoupeError('bad-input', `SPair-71k pair file ${rel} in ${root}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/** Checks a pair against its images: sizes as recorded, keypoints and boxes well-formed. */
function checkPair(rel: string, p: PairFile, sizes: { width: number; height: number }[]): void {
  const bad = (what: string): never => {
    throw new LoupeError('bad-input', `SPair-71k pair file ${rel}: ${what}`);
  };
  if (p.src_kps.length !== p.kps_ids.length || p.trg_kps.length !== p.kps_ids.length) bad(`${p.kps_ids.length} kps_ids but ${p.src_kps.length} src_kps and ${p.trg_kps.length} trg_kps`);
  const ids = p.kps_ids.map(String);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup !== undefined) bad(`keypoint id ${dup} appears twice in kps_ids`);
  (['src', 'trg'] as const).forEach((side, image) => {
    const { width, height } = sizes[image]!;
    const imsize = p[`${side}_imsize`];
    const imname = p[`${side}_imname`];
    if (imsize[0] !== width || imsize[1] !== height) bad(`${side}_imsize says ${imsize[0]}×${imsize[1]} but JPEGImages/${p.category}/${imname} is ${width}×${height}`);
    // Published keypoints are pixel coordinates (VOC-style, up to the width/height itself).
    p[`${side}_kps`].forEach(([x, y], i) => {
      if (x < 0 || y < 0 || x > width || y > height) bad(`${side}_kps[${i}] (keypoint ${ids[i]}) = (${x}, ${y}) lies outside ${imname} (${width}×${height})`);
    });
    const [x1, y1, x2, y2] = p[`${side}_bndbox`];
    if (x2 < x1 || y2 < y1) bad(`${side}_bndbox [${x1}, ${y1}, ${x2}, ${y2}] is not [x1, y1, x2, y2] with x1 ≤ x2, y1 ≤ y2`);
  });
}

export async function importSpair(source: string, out: DatasetWriter, options: BenchmarkImportOptions): Promise<DatasetMeta & { warnings: string[] }> {
  const root = spairRoot(source);
  const m = /^(?:(large|small)\/)?(.+)$/.exec(options.split ?? 'test')!;
  const layout = (m[1] ?? 'large') as 'large' | 'small';
  const split = m[2]!;
  if (!SPLITS.includes(split)) throw new LoupeError('bad-input', `SPair-71k has no split '${options.split}' (trn, val, test, optionally small/<split>)`);
  const unknown = (options.subset ?? []).filter((c) => !CATEGORIES.includes(c));
  if (unknown.length) throw new LoupeError('bad-input', `SPair-71k has no category ${unknown.join(', ')} (categories: ${CATEGORIES.join(', ')})`);
  const categories = options.subset?.length ? new Set(options.subset) : null;

  const warnings: string[] = [];
  let names = pairNames(root, layout, split, warnings);
  if (categories) names = names.filter((n) => categories.has(categoryOfName(n) ?? ''));
  if (options.limit > 0) names = names.slice(0, options.limit);

  // SPair pairs share images (1,800 images across 70,958 pairs): each is copied and measured once.
  const copied = new Map<string, { rel: string; size: { width: number; height: number } }>();
  const image = (category: string, imname: string): { rel: string; size: { width: number; height: number } } => {
    const rel = `JPEGImages/${category}/${imname}`;
    let got = copied.get(rel);
    if (!got) {
      const path = resolveInside(root, rel, 'image');
      got = { rel: out.copyImage(path, `${category}-${imname}`), size: imageSize(path) };
      copied.set(rel, got);
    }
    return got;
  };

  out.progress('pairs', 0, names.length, true);
  for (const [done, name] of names.entries()) {
    const rel = `PairAnnotation/${split}/${name}.json`;
    const p = readPair(root, rel);
    const nameCategory = categoryOfName(name);
    if (nameCategory !== null && nameCategory !== p.category) throw new LoupeError('bad-input', `SPair-71k pair file ${rel}: category ${p.category} but its name says ${nameCategory}`);
    if (!CATEGORIES.includes(p.category)) throw new LoupeError('bad-input', `SPair-71k pair file ${rel}: unknown category ${p.category}`);
    const src = image(p.category, p.src_imname);
    const trg = image(p.category, p.trg_imname);
    checkPair(rel, p, [src.size, trg.size]);
    const labels: Label[] = [
      ...p.kps_ids.map((id, i): Label => ({ kind: 'pointPair', a: { image: 0, at: p.src_kps[i]! }, b: { image: 1, at: p.trg_kps[i]! }, name: String(id) })),
      { kind: 'box', image: 0, box: p.src_bndbox, text: 'bbox' },
      { kind: 'box', image: 1, box: p.trg_bndbox, text: 'bbox' },
    ];
    out.addItem({
      id: name,
      images: [src.rel, trg.rel],
      labels,
      meta: {
        pairFile: rel,
        ...(p.pair_id !== undefined ? { pair_id: p.pair_id } : {}),
        category: p.category,
        src_imname: p.src_imname,
        trg_imname: p.trg_imname,
        src_imsize: p.src_imsize,
        trg_imsize: p.trg_imsize,
        ...(p.src_pose !== undefined ? { src_pose: p.src_pose } : {}),
        ...(p.trg_pose !== undefined ? { trg_pose: p.trg_pose } : {}),
        viewpoint_variation: p.viewpoint_variation,
        scale_variation: p.scale_variation,
        truncation: p.truncation,
        occlusion: p.occlusion,
        ...(p.mirror !== undefined ? { mirror: p.mirror } : {}),
      },
    });
    out.progress('pairs', done + 1, names.length);
    if ((done + 1) % 64 === 0) await tick();
  }
  out.progress('pairs', names.length, names.length, true);
  const splitName = layout === 'small' ? `small/${split}` : split;
  return {
    name: `SPair-71k ${splitName}${categories ? ` (${[...categories].join(', ')})` : ''}`,
    description: `SPair-71k ${splitName}: ${names.length} pairs over ${copied.size} images; keypoint pairs named by keypoint id, source and target bounding boxes as published`,
    task: 'correspondence',
    source: { benchmark: 'SPair-71k', split, layout, pairs: names.length, images: copied.size },
    warnings,
  };
}
