/**
 * COCO annotation files (instances_*.json, person_keypoints_*.json, and Loupe's own COCO export),
 * read as the COCO data format defines them (cocodataset.org/#format-data): `images`,
 * `annotations`, `categories`.
 *
 * One item per image — or per group, when images carry Loupe's `loupe_item` (an item with several
 * images exported by Loupe). Per annotation: a `segmentation` (polygons, or RLE with string or
 * array counts) becomes a `mask` label named by its category (polygons kept, pixels as pycocotools
 * rasterises them); without one, a `bbox` becomes a `box` label; every keypoint with v > 0 becomes a
 * `point` label named by the category's `keypoints` name (the category's name for a lone unnamed
 * keypoint). The item's meta keeps each annotation's id, category, bbox, area, iscrowd, its label
 * indices and the keypoints' visibility; the dataset's source keeps the categories (with keypoint
 * names and skeleton).
 *
 * Refused, naming the image or annotation: a `file_name` that leaves the image folder, an image
 * whose size differs from its `width`/`height`, a bbox or keypoint that is not finite or lies
 * outside the image, keypoints whose length is not 3 × the category's keypoint count, unknown
 * image or category ids. Options: `subset` = category names; `split` = the image folder name
 * (e.g. val2017) when it cannot be told from the file name; `limit` = at most that many items.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { DatasetItem, Label } from '../../../src-shared/dataset/format.ts';
import { rleDecode, rleFromString } from '../../../src-shared/dataset/mask-codec.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import { polygonsMask } from './coco-polygon.ts';
import { type DatasetMeta, type DatasetWriter, resolveInside } from './dataset-writer.ts';
import { MaskLayers } from './mask-layers.ts';
import type { BenchmarkImporter } from './registry.ts';

/**
 * How far (pixels) a box or keypoint may reach past the image border: COCO stores coordinates as
 * floats rounded to two decimals, and boxes derived from polygons can overshoot by that rounding.
 * Anything further out is an annotation error.
 */
const BORDER_TOLERANCE = 1;

interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  keypoints?: string[];
  skeleton?: number[][];
}
interface CocoImage {
  id: number;
  file_name: string;
  width?: number;
  height?: number;
  loupe_item?: string;
}
interface CocoAnnotation {
  id: number;
  image_id: number;
  category_id?: number;
  bbox?: unknown;
  segmentation?: unknown;
  keypoints?: unknown;
  num_keypoints?: number;
  area?: number;
  iscrowd?: number;
}

export interface CocoImportResult extends DatasetMeta {
  warnings: string[];
  images: number;
  /** Annotations with nothing Loupe keeps (no segmentation, bbox or visible keypoint). */
  ignored: number;
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const fail = (message: string): never => {
  throw new LoupeError('bad-input', message);
};

function readCocoFile(path: string): { images: CocoImage[]; annotations: CocoAnnotation[]; categories: CocoCategory[]; info?: unknown } {
  if (!existsSync(path) || !statSync(path).isFile()) fail(`COCO file ${path} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail(`COCO file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  const coco = raw as { images?: unknown; annotations?: unknown; categories?: unknown; info?: unknown };
  if (!coco || typeof coco !== 'object' || !Array.isArray(coco.images) || !Array.isArray(coco.annotations)) fail(`COCO file ${path} lacks "images" or "annotations" arrays`);
  if (coco.categories !== undefined && !Array.isArray(coco.categories)) fail(`COCO file ${path}: "categories" is not an array`);
  const categories = (coco.categories ?? []) as CocoCategory[];
  for (const c of categories) {
    if (!c || typeof c.name !== 'string' || !isNum(c.id)) fail(`COCO file ${path}: category ${JSON.stringify(c)} lacks a numeric id or a name`);
    if (c.keypoints !== undefined && (!Array.isArray(c.keypoints) || !c.keypoints.every((k) => typeof k === 'string'))) fail(`COCO category ${c.id} (${c.name}): "keypoints" is not a list of names`);
  }
  return { images: coco.images as CocoImage[], annotations: coco.annotations as CocoAnnotation[], categories, info: coco.info };
}

/** The folder the images' `file_name`s are relative to: beside the JSON, or COCO's `<split>2017/` beside `annotations/`. */
function imageFolderFor(jsonPath: string, first: CocoImage[], options: BenchmarkImportOptions, given?: string): string {
  if (given) {
    if (!existsSync(given) || !statSync(given).isDirectory()) fail(`image folder ${given} does not exist`);
    return given;
  }
  const dir = dirname(jsonPath);
  const splits = [options.split, /^(?:instances|person_keypoints|captions|image_info|panoptic)_(.+)$/.exec(basename(jsonPath, extname(jsonPath)))?.[1]].filter((s): s is string => !!s);
  const candidates = [dir, ...splits.flatMap((s) => [join(dir, '..', s), join(dir, s), join(dir, '..', 'images', s), join(dir, 'images', s)])];
  // The folder holding one of the first images (each file_name is still checked on its own later).
  const found = candidates.find((c) => existsSync(c) && statSync(c).isDirectory() && (!first.length || first.some((img) => existsSync(join(c, img.file_name)))));
  if (!found) fail(`COCO images${first[0] ? ` (first: ${first[0].file_name})` : ''} not found; looked in ${candidates.join(', ')} (name the split folder with the split option)`);
  return found!;
}

function checkBox(a: CocoAnnotation, width: number, height: number): [number, number, number, number] {
  const b = a.bbox;
  if (!Array.isArray(b) || b.length !== 4 || !b.every(isNum)) return fail(`COCO annotation ${a.id}: bbox ${JSON.stringify(b)} is not four finite numbers [x, y, width, height]`);
  const [x, y, w, h] = b as [number, number, number, number];
  if (w < 0 || h < 0) fail(`COCO annotation ${a.id}: bbox ${JSON.stringify(b)} has a negative width or height`);
  if (x < -BORDER_TOLERANCE || y < -BORDER_TOLERANCE || x + w > width + BORDER_TOLERANCE || y + h > height + BORDER_TOLERANCE) fail(`COCO annotation ${a.id}: bbox ${JSON.stringify(b)} lies outside its ${width}×${height} image (image ${a.image_id})`);
  return [x, y, w, h];
}

interface Keypoint {
  index: number;
  x: number;
  y: number;
  v: number;
}

function checkKeypoints(a: CocoAnnotation, cat: CocoCategory | undefined, width: number, height: number): Keypoint[] {
  const k = a.keypoints;
  if (!Array.isArray(k) || k.length % 3 !== 0 || !k.every(isNum)) return fail(`COCO annotation ${a.id}: keypoints must be a list of finite x, y, v triples (got ${Array.isArray(k) ? `${k.length} values` : typeof k})`);
  if (cat?.keypoints && k.length !== 3 * cat.keypoints.length) fail(`COCO annotation ${a.id}: ${k.length / 3} keypoints, but category ${cat.name} names ${cat.keypoints.length}`);
  const out: Keypoint[] = [];
  for (let i = 0; i < k.length / 3; i++) {
    const [x, y, v] = [k[3 * i] as number, k[3 * i + 1] as number, k[3 * i + 2] as number];
    if (v !== 0 && v !== 1 && v !== 2) fail(`COCO annotation ${a.id}: keypoint ${i + 1} has visibility ${v} (0, 1 or 2 expected)`);
    if (v === 0) continue;
    if (x < -BORDER_TOLERANCE || y < -BORDER_TOLERANCE || x > width + BORDER_TOLERANCE || y > height + BORDER_TOLERANCE) fail(`COCO annotation ${a.id}: keypoint ${i + 1} (${x}, ${y}) lies outside its ${width}×${height} image (image ${a.image_id})`);
    out.push({ index: i, x, y, v });
  }
  return out;
}

/** A `segmentation` as a 0/1 mask (and its polygons when it is made of polygons), or null when empty. */
function segmentationMask(a: CocoAnnotation, width: number, height: number): { mask: Uint8Array; polygons?: [number, number][][] } | null {
  const seg = a.segmentation;
  if (Array.isArray(seg)) {
    if (seg.length === 0) return null;
    for (const p of seg) if (!Array.isArray(p) || p.length < 2 || p.length % 2 || !p.every(isNum)) fail(`COCO annotation ${a.id}: a polygon is not a flat list of finite x, y pairs`);
    const flats = seg as number[][];
    // The label keeps polygons (for a lossless COCO export) only when every one has three corners.
    const polygons = flats.every((p) => p.length >= 6) ? flats.map((p) => Array.from({ length: p.length / 2 }, (_, i) => [p[2 * i]!, p[2 * i + 1]!] as [number, number])) : undefined;
    return { mask: polygonsMask(flats, width, height), ...(polygons && { polygons }) };
  }
  const rle = seg as { size?: unknown; counts?: unknown };
  if (!rle || typeof rle !== 'object') return fail(`COCO annotation ${a.id}: segmentation is neither polygons nor RLE`);
  if (!Array.isArray(rle.size) || rle.size[0] !== height || rle.size[1] !== width) fail(`COCO annotation ${a.id}: RLE size ${JSON.stringify(rle.size)} is not its image's [${height}, ${width}]`);
  try {
    const counts = typeof rle.counts === 'string' ? rleFromString(rle.counts) : rle.counts;
    if (!Array.isArray(counts)) return fail(`COCO annotation ${a.id}: RLE without counts`);
    return { mask: rleDecode(counts as number[], width, height) };
  } catch (e) {
    if (e instanceof LoupeError) throw e;
    return fail(`COCO annotation ${a.id}: ${(e as Error).message}`);
  }
}

/** Items in file order: Loupe's `loupe_item` groups, else one per image; ids from the file stem (unique). */
function groupImages(images: CocoImage[]): { id: string; images: CocoImage[] }[] {
  const groups = new Map<string, CocoImage[]>();
  const used = new Set<string>();
  for (const img of images) {
    let key = img.loupe_item;
    if (typeof key !== 'string' || !key) {
      const stem = basename(img.file_name, extname(img.file_name)) || String(img.id);
      key = used.has(stem) ? `${stem}-${img.id}` : stem;
    }
    used.add(key);
    const g = groups.get(key) ?? [];
    g.push(img);
    groups.set(key, g);
  }
  return [...groups].map(([id, imgs]) => ({ id, images: imgs }));
}

/**
 * Reads one COCO annotation file into `out`. `imagesDir`, when given, is the folder `file_name`s
 * are relative to (the `datasets/import-coco` method); otherwise it is looked for (see above).
 */
export async function importCocoFile(jsonPath: string, out: DatasetWriter, options: BenchmarkImportOptions, imagesDir?: string): Promise<CocoImportResult> {
  const coco = readCocoFile(jsonPath);
  const categories = new Map<number, CocoCategory>();
  for (const c of coco.categories) categories.set(c.id, c);
  const imageIds = new Set<number>();
  for (const img of coco.images) {
    if (!img || !isNum(img.id) || typeof img.file_name !== 'string' || !img.file_name) fail(`COCO file ${jsonPath}: image ${JSON.stringify(img)?.slice(0, 120)} lacks a numeric id or a file_name`);
    if (imageIds.has(img.id)) fail(`COCO file ${jsonPath}: image id ${img.id} appears twice`);
    imageIds.add(img.id);
  }
  const subset = options.subset?.length ? new Set(options.subset) : null;
  if (subset) {
    const names = new Set(coco.categories.map((c) => c.name));
    for (const s of subset) if (!names.has(s)) fail(`COCO subset: no category named ${s} in ${jsonPath} (categories: ${[...names].join(', ')})`);
  }
  const byImage = new Map<number, CocoAnnotation[]>();
  const annIds = new Set<number>();
  for (const a of coco.annotations) {
    if (!a || !isNum(a.id)) fail(`COCO file ${jsonPath}: annotation ${JSON.stringify(a)?.slice(0, 120)} lacks a numeric id`);
    if (annIds.has(a.id)) fail(`COCO file ${jsonPath}: annotation id ${a.id} appears twice`);
    annIds.add(a.id);
    if (!imageIds.has(a.image_id)) fail(`COCO annotation ${a.id}: image_id ${a.image_id} is not among the images`);
    if (a.category_id !== undefined && categories.size && !categories.has(a.category_id)) fail(`COCO annotation ${a.id}: category_id ${a.category_id} is not among the categories`);
    const cat = a.category_id !== undefined ? categories.get(a.category_id) : undefined;
    if (subset && (!cat || !subset.has(cat.name))) continue;
    const list = byImage.get(a.image_id) ?? [];
    list.push(a);
    byImage.set(a.image_id, list);
  }

  const groups = groupImages(coco.images).filter((g) => !subset || g.images.some((img) => byImage.has(img.id)));
  const folder = imageFolderFor(jsonPath, groups.slice(0, 5).flatMap((g) => g.images), options, imagesDir);
  const warnings: string[] = [];
  let ignored = 0;
  let images = 0;
  const total = options.limit ? Math.min(options.limit, groups.length) : groups.length;
  for (const [n, group] of groups.entries()) {
    if (n >= total) break;
    out.progress('images', n, total);
    const item: DatasetItem = { id: group.id, images: [], labels: [], meta: {} };
    const annMeta: Record<string, unknown>[] = [];
    for (const [index, img] of group.images.entries()) {
      const src = resolveInside(folder, img.file_name, `COCO image ${img.id}:`);
      const { width, height } = imageSize(src);
      if ((img.width !== undefined && img.width !== width) || (img.height !== undefined && img.height !== height)) fail(`COCO image ${img.id} (${img.file_name}) is ${width}×${height}, but the file says ${img.width}×${img.height}`);
      item.images.push(out.copyImage(src, basename(img.file_name)));
      images++;
      const layers = new MaskLayers(width, height);
      const masks: { label: number; packed: ReturnType<MaskLayers['add']> }[] = [];
      for (const a of byImage.get(img.id) ?? []) {
        const cat = a.category_id !== undefined ? categories.get(a.category_id) : undefined;
        const name = cat?.name;
        const labelsOf: number[] = [];
        const meta: Record<string, unknown> = { id: a.id, image: index, ...(name !== undefined && { category: name }) };
        const box = a.bbox !== undefined ? checkBox(a, width, height) : undefined;
        if (box) meta.bbox = box;
        if (isNum(a.area)) meta.area = a.area;
        if (a.iscrowd !== undefined) meta.iscrowd = a.iscrowd;
        const seg = a.segmentation !== undefined ? segmentationMask(a, width, height) : null;
        if (seg) {
          labelsOf.push(item.labels.length);
          masks.push({ label: item.labels.length, packed: layers.add(seg.mask) });
          // The file is known once the image's masks are packed; filled in below.
          item.labels.push({ kind: 'mask', image: index, file: '', ...(name !== undefined && { name }), ...(seg.polygons && { polygons: seg.polygons }) });
        } else if (box) {
          labelsOf.push(item.labels.length);
          item.labels.push({ kind: 'box', image: index, box: [box[0], box[1], box[0] + box[2], box[1] + box[3]], ...(name !== undefined && { text: name }) });
        }
        if (a.keypoints !== undefined) {
          const points = checkKeypoints(a, cat, width, height);
          const count = (a.keypoints as unknown[]).length / 3;
          meta.keypoints = points.map((p) => {
            const pointName = cat?.keypoints?.[p.index] ?? (count === 1 ? name : `${name ?? 'keypoint'}/${p.index + 1}`);
            labelsOf.push(item.labels.length);
            item.labels.push({ kind: 'point', image: index, at: [p.x, p.y], ...(pointName !== undefined && { name: pointName }) });
            return { index: p.index, label: item.labels.length - 1, v: p.v, ...(pointName !== undefined && { name: pointName }) };
          });
        }
        if (labelsOf.length === 0) {
          ignored++;
          if (warnings.length < 50) warnings.push(`COCO annotation ${a.id} has no segmentation, bbox or visible keypoint; skipped`);
        }
        meta.labels = labelsOf;
        annMeta.push(meta);
      }
      const files = layers.write(out, basename(img.file_name, extname(img.file_name)));
      for (const m of masks) item.labels[m.label] = { ...(item.labels[m.label] as Extract<Label, { kind: 'mask' }>), file: files[m.packed.layer]!, ids: [m.packed.id] };
    }
    item.meta = { coco: { images: group.images.map((img) => ({ id: img.id, file_name: img.file_name })), annotations: annMeta } };
    out.addItem(item);
  }
  out.progress('images', total, total, true);
  if (ignored > 50) warnings.push(`… ${ignored - 50} more annotations skipped`);
  const stem = basename(jsonPath, extname(jsonPath));
  return {
    name: subset ? `${stem} (${[...subset].join(', ')})` : stem,
    description: `COCO annotations from ${basename(jsonPath)}`,
    task: coco.categories.some((c) => c.keypoints?.length) ? 'coco-keypoints' : 'coco',
    source: {
      benchmark: 'COCO',
      imageFolder: folder,
      categories: coco.categories.map((c) => ({ id: c.id, name: c.name, ...(c.supercategory !== undefined && { supercategory: c.supercategory }), ...(c.keypoints && { keypoints: c.keypoints }), ...(c.skeleton && { skeleton: c.skeleton }) })),
    },
    warnings,
    images,
    ignored,
  };
}

export const importCocoBenchmark: BenchmarkImporter = (source, out, options) => importCocoFile(source, out, options);
