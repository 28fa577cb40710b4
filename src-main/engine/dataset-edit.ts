/**
 * User-labelled datasets: created in Loupe's data folder, grown by importing image folders,
 * labelled item by item (labels live in SQLite, autosaved), exported as our manifest or COCO.
 *
 * Masks: a mask label names a PNG of instance ids relative to the dataset folder (`file`).
 * Masks drawn in Loupe keep their pixels in SQLite (`label_masks`, PNG bytes) rather than in the
 * folder — dataset folders may be read-only (bundled, or a user's own folder opened in place) —
 * and become real files under `masks/` only when the dataset is exported. Reading a mask looks
 * for stored pixels first, then for the file.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { RawImage } from '@huggingface/transformers';
import { PNG } from 'pngjs';
import type { DatasetInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, type DatasetManifest, type Label } from '../../src-shared/dataset/format.ts';
import { base64ToBytes, rleCounts, rleDecode, rleFromString, rleToString } from '../../src-shared/dataset/mask-codec.ts';
import { type Pt, binaryOf, fillPolygon, maskArea, maskBbox } from '../../src-shared/dataset/mask-raster.ts';
import { type Question, checkQuestion } from '../../src-shared/dataset/question.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { Store } from '../store/store.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { fingerprintFolder } from '../util/hash.ts';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

export function createDataset(store: Store, dataDir: string, name: string, task: string): DatasetInfo {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'dataset';
  const id = `${slug}-${randomBytes(3).toString('hex')}`;
  const root = join(dataDir, 'datasets', id);
  mkdirSync(join(root, 'images'), { recursive: true });
  const manifest: DatasetManifest = { format: DATASET_FORMAT, version: DATASET_FORMAT_VERSION, name, description: 'labelled in Loupe', task, source: { labelledBy: 'hand' }, items: [] };
  writeFileAtomicSync(join(root, 'dataset.json'), JSON.stringify(manifest, null, 1));
  return store.datasets.put(id, root, fingerprintFolder(root), false, manifest);
}

export async function addImages(store: Store, datasetId: string, folder: string): Promise<{ added: number; skipped: number; dataset: DatasetInfo }> {
  const dataset = store.datasets.get(datasetId);
  if (dataset.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled with Loupe and read-only; create a new dataset to label`);
  if (!existsSync(folder)) throw new LoupeError('not-found', `folder ${folder} does not exist`);
  const files = readdirSync(folder).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
  if (files.length === 0) throw new LoupeError('bad-input', `folder ${folder} has no PNG, JPEG or WebP images`);
  const items: { id: string; images: string[] }[] = [];
  let skipped = 0;
  for (const f of files) {
    const src = join(folder, f);
    try {
      await RawImage.read(src); // refuse truncated or unreadable images up front, not mid-run
    } catch {
      skipped++;
      continue;
    }
    const rel = `images/${f}`;
    if (!existsSync(join(dataset.path, rel))) copyFileSync(src, join(dataset.path, rel));
    items.push({ id: basename(f, extname(f)), images: [rel] });
  }
  const added = store.datasets.addItems(datasetId, items, fingerprintFolder(dataset.path));
  return { added, skipped: skipped + items.length - added, dataset: store.datasets.get(datasetId) };
}

export async function itemImage(store: Store, datasetId: string, itemId: string, index: number): Promise<HostTensor> {
  const dataset = store.datasets.get(datasetId);
  const item = store.datasets.item(datasetId, itemId);
  const rel = item.images[index];
  if (!rel) throw new LoupeError('not-found', `item ${itemId} has no image #${index}`);
  let img: RawImage;
  try {
    img = (await RawImage.read(join(dataset.path, rel))).rgb();
  } catch (e) {
    throw new LoupeError('bad-input', `cannot decode image ${rel}: ${(e as Error).message}`);
  }
  return { dtype: 'uint8', shape: [img.height, img.width, 3], data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
}

/** A dataset whose labels may be edited (bundled probe sets are replaced when Loupe updates them). */
function writable(store: Store, datasetId: string): DatasetInfo {
  const info = store.datasets.get(datasetId);
  if (info.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled with Loupe and read-only; create a new dataset to label`);
  return info;
}

/** First channel of a PNG (16-bit samples kept), as instance ids. */
function decodePng(bytes: Uint8Array, what: string): { width: number; height: number; values: Uint8Array | Int32Array } {
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), { skipRescale: true });
  } catch (e) {
    throw new LoupeError('bad-input', `${what} is not a readable PNG: ${(e as Error).message}`);
  }
  const n = png.width * png.height;
  const data = png.data as unknown as ArrayLike<number>;
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, data[i * 4]!);
  const values = max > 255 ? new Int32Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) values[i] = data[i * 4]!;
  return { width: png.width, height: png.height, values };
}

/** 8-bit greyscale PNG whose values are the instance ids (1 for a binary mask). */
function encodePng(values: Uint8Array, width: number, height: number): Uint8Array {
  const opts = { width, height, colorType: 0 as const, inputColorType: 0 as const, inputHasAlpha: false, bitDepth: 8 as const };
  const png = new PNG(opts);
  png.data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return PNG.sync.write(png, opts);
}

/** A path inside the dataset folder, refusing `..` and absolute paths that would leave it. */
function inside(root: string, rel: string): string {
  const path = resolve(root, rel);
  if (!path.startsWith(resolve(root) + sep)) throw new LoupeError('bad-input', `mask file ${rel} lies outside the dataset folder`);
  return path;
}

async function imageSize(store: Store, datasetId: string, itemId: string, image: number): Promise<{ width: number; height: number }> {
  const t = await itemImage(store, datasetId, itemId, image);
  return { width: t.shape[1]!, height: t.shape[0]! };
}

/** Where a mask drawn in Loupe will be written on export: `masks/<item>-<image>-<label>.png`, never over an existing file. */
function freshMaskFile(root: string, itemId: string, image: number, labelId: number): string {
  const base = `masks/${itemId.replace(/[^A-Za-z0-9._-]+/g, '_')}-${image}-${labelId}`;
  for (let k = 0; ; k++) {
    const rel = `${base}${k ? `-${k}` : ''}.png`;
    if (!existsSync(join(root, rel))) return rel;
  }
}

/** Stores a binary mask as a mask label (new, or replacing label `id`), its pixels in SQLite. */
function storeMask(
  store: Store,
  info: DatasetInfo,
  itemId: string,
  m: { image: number; mask: Uint8Array; width: number; height: number; name?: string | undefined; polygons?: Pt[][] | undefined },
  id?: number,
): StoredLabel {
  let keepFile: string | undefined;
  if (id !== undefined) {
    const old = store.labels.get(id);
    if (old.datasetId !== info.id || old.itemId !== itemId) throw new LoupeError('not-found', `no label ${id} on item ${itemId} of ${info.id}`);
    if (old.label.kind !== 'mask') throw new LoupeError('bad-input', `label ${id} is a ${old.label.kind}, not a mask`);
    // A mask read from a folder file may share that file with other labels: its edit gets a file of its own.
    if (store.labels.mask(id) && old.label.image === m.image) keepFile = old.label.file;
  }
  const binary = binaryOf(m.mask);
  const build = (labelId: number): Label => ({
    kind: 'mask',
    image: m.image,
    file: keepFile ?? freshMaskFile(info.path, itemId, m.image, labelId),
    ids: [1],
    ...(m.name && { name: m.name }),
    ...(m.polygons?.length && { polygons: m.polygons.map((p) => p.map(([x, y]) => [x, y] as [number, number])) }),
  });
  return store.labels.putMask(info.id, itemId, build, encodePng(binary, m.width, m.height), m.width, m.height, id);
}

/**
 * `labels/put-mask`: a binary mask drawn in the Label view, as PNG bytes (base64; any non-zero
 * pixel is inside), checked against the size of the item's image.
 */
export async function putMask(
  store: Store,
  p: { datasetId: string; itemId: string; id?: number | undefined; image: number; name?: string | undefined; png: string; polygons?: Pt[][] | undefined },
): Promise<StoredLabel> {
  const info = writable(store, p.datasetId);
  const item = store.datasets.item(p.datasetId, p.itemId);
  if (p.image >= item.images.length) throw new LoupeError('bad-input', `item ${p.itemId} has ${item.images.length} image(s); no image #${p.image}`);
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(p.png);
  } catch (e) {
    throw new LoupeError('bad-input', `mask PNG is not valid base64: ${(e as Error).message}`);
  }
  const png = decodePng(bytes, 'the mask');
  const size = await imageSize(store, p.datasetId, p.itemId, p.image);
  if (png.width !== size.width || png.height !== size.height) {
    throw new LoupeError('bad-input', `mask is ${png.width}×${png.height} but image #${p.image} of ${p.itemId} is ${size.width}×${size.height}`);
  }
  return storeMask(store, info, p.itemId, { image: p.image, mask: binaryOf(png.values), width: png.width, height: png.height, name: p.name, polygons: p.polygons }, p.id);
}

/** The instance-id map of a mask label: its stored pixels, or its file in the dataset folder. */
export function labelMask(store: Store, id: number): { label: StoredLabel; tensor: HostTensor } {
  const label = store.labels.get(id);
  if (label.label.kind !== 'mask') throw new LoupeError('bad-input', `label ${id} is a ${label.label.kind}, not a mask`);
  const stored = store.labels.mask(id);
  let png: ReturnType<typeof decodePng>;
  if (stored) png = decodePng(stored.png, `stored mask of label ${id}`);
  else {
    const path = inside(store.datasets.get(label.datasetId).path, label.label.file);
    if (!existsSync(path)) throw new LoupeError('not-found', `mask file ${label.label.file} of label ${id} is missing`);
    png = decodePng(readFileSync(path), `mask file ${label.label.file}`);
  }
  return { label, tensor: { dtype: png.values instanceof Int32Array ? 'int32' : 'uint8', shape: [png.height, png.width], data: png.values } };
}

/** `datasets/set-question`: validated prompt, choices and answer of an item. */
export function setQuestion(store: Store, datasetId: string, itemId: string, q: { prompt: string | null; choices: string[] | null; answer: string | null }): Question & { id: string } {
  writable(store, datasetId);
  const checked = checkQuestion(q);
  if (!checked.ok) throw new LoupeError('bad-input', `item ${itemId}: ${checked.problem}`);
  store.datasets.setQuestion(datasetId, itemId, checked.value);
  return { id: itemId, ...checked.value };
}

function manifestWithLabels(store: Store, datasetId: string): DatasetManifest {
  const info = store.datasets.get(datasetId);
  const labels = store.labels.byItem(datasetId);
  const items = store.datasets.items(datasetId, 0, Math.max(1, info.itemCount)).map(({ ord: _ord, ...item }) => ({ ...item, labels: labels.get(item.id) ?? [] }));
  return { format: DATASET_FORMAT, version: DATASET_FORMAT_VERSION, name: info.name, description: info.description, task: info.task, items };
}

export async function exportDataset(store: Store, datasetId: string, format: 'loupe' | 'coco'): Promise<{ path: string }> {
  const info = store.datasets.get(datasetId);
  const manifest = manifestWithLabels(store, datasetId);
  if (format === 'loupe') {
    if (info.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled and read-only`);
    // Masks drawn in Loupe become the PNG files their labels name.
    for (const m of store.labels.masks(datasetId).values()) {
      const file = inside(info.path, m.file);
      mkdirSync(dirname(file), { recursive: true });
      writeFileAtomicSync(file, m.png);
    }
    const path = join(info.path, 'dataset.json');
    writeFileAtomicSync(path, JSON.stringify(manifest, null, 1));
    return { path };
  }
  if (info.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled and read-only; export from a copy instead`);
  // COCO: one image per (item, image index); boxes → bbox annotations, points → one-keypoint
  // annotations, masks → `segmentation` (polygons when drawn only with polygons, else compressed RLE).
  const stored = store.labels.storedByItem(datasetId);
  const categories = new Map<string, number>();
  const category = (name: string) => categories.get(name) ?? (categories.set(name, categories.size + 1), categories.size);
  const images: object[] = [];
  const annotations: object[] = [];
  for (const item of manifest.items) {
    const ids: number[] = [];
    for (let k = 0; k < item.images.length; k++) {
      const img = await itemImage(store, datasetId, item.id, k);
      ids.push(images.length + 1);
      images.push({ id: images.length + 1, file_name: item.images[k], height: img.shape[0], width: img.shape[1], loupe_item: item.id });
    }
    for (const { id: labelId, label: l } of stored.get(item.id) ?? []) {
      if (l.kind === 'mask') {
        const { tensor } = labelMask(store, labelId);
        const [h, w] = tensor.shape as [number, number];
        const bin = binaryOf(tensor.data as Uint8Array | Int32Array, l.ids);
        const bbox = maskBbox(bin, w, h);
        if (!bbox) continue; // an erased-out mask has nothing to export
        const segmentation = l.polygons?.length ? l.polygons.map((p) => p.flat()) : { size: [h, w], counts: rleToString(rleCounts(bin, w, h)) };
        annotations.push({ id: annotations.length + 1, image_id: ids[l.image], category_id: category(l.name ?? 'object'), segmentation, area: maskArea(bin), bbox, iscrowd: 0 });
      } else if (l.kind === 'box') {
        const [x0, y0, x1, y1] = l.box;
        annotations.push({ id: annotations.length + 1, image_id: ids[l.image], category_id: category(l.text ?? 'object'), bbox: [x0, y0, x1 - x0, y1 - y0], area: (x1 - x0) * (y1 - y0), iscrowd: 0 });
      } else if (l.kind === 'point') {
        annotations.push({ id: annotations.length + 1, image_id: ids[l.image], category_id: category(l.name ?? 'point'), keypoints: [l.at[0], l.at[1], 2], num_keypoints: 1 });
      }
    }
  }
  const path = join(info.path, 'coco.json');
  writeFileAtomicSync(path, JSON.stringify({ info: { description: info.name }, images, annotations, categories: [...categories].map(([name, id]) => ({ id, name })) }));
  return { path };
}

interface CocoFile {
  images: { id: number; file_name: string; width?: number; height?: number }[];
  annotations: {
    id: number;
    image_id: number;
    category_id?: number;
    bbox?: [number, number, number, number];
    keypoints?: number[];
    segmentation?: number[][] | { size: [number, number]; counts: string | number[] };
  }[];
  categories?: { id: number; name: string }[];
}

/** A COCO `segmentation` (polygons or RLE, compressed or not) as a binary mask of the image, or a reason it is not one. */
function cocoSegmentation(seg: unknown, width: number, height: number): { mask: Uint8Array; polygons?: Pt[][] } | string {
  if (Array.isArray(seg)) {
    const polygons: Pt[][] = [];
    for (const flat of seg as unknown[]) {
      if (!Array.isArray(flat) || flat.length < 6 || flat.length % 2 || !flat.every((v) => typeof v === 'number' && Number.isFinite(v))) return 'a polygon is not a flat list of at least 3 x, y pairs';
      polygons.push(Array.from({ length: flat.length / 2 }, (_, k) => [flat[2 * k] as number, flat[2 * k + 1] as number] as const));
    }
    if (!polygons.length) return 'no polygons';
    const mask = new Uint8Array(width * height);
    for (const poly of polygons) fillPolygon(mask, width, height, poly, 1);
    return { mask, polygons };
  }
  const rle = seg as { size?: unknown; counts?: unknown };
  if (!Array.isArray(rle?.size) || rle.size[0] !== height || rle.size[1] !== width) return `RLE size ${JSON.stringify(rle?.size)} is not the image's [${height}, ${width}]`;
  try {
    const counts = typeof rle.counts === 'string' ? rleFromString(rle.counts) : (rle.counts as number[]);
    if (!Array.isArray(counts)) return 'RLE without counts';
    return { mask: rleDecode(counts, width, height) };
  } catch (e) {
    return (e as Error).message;
  }
}

/**
 * COCO-style import: a new dataset with one item per COCO image (copied from `imagesDir`,
 * default the JSON's folder); an annotation with a `segmentation` (polygons or RLE) → `mask`
 * label (category name as its name, polygons kept), else boxes → `box` labels (category name
 * as text), else one-keypoint annotations → `point` labels. Anything else is ignored, and counted.
 */
export async function importCoco(store: Store, dataDir: string, jsonPath: string, imagesDir?: string): Promise<{ dataset: DatasetInfo; images: number; labels: number; ignored: number }> {
  let coco: CocoFile;
  try {
    coco = JSON.parse(readFileSync(jsonPath, 'utf8')) as CocoFile;
  } catch (e) {
    throw new LoupeError('bad-input', `COCO file ${jsonPath} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(coco.images) || !Array.isArray(coco.annotations)) throw new LoupeError('bad-input', `COCO file ${jsonPath} lacks "images" or "annotations" arrays`);
  const dir = imagesDir ?? dirname(jsonPath);
  const dataset = createDataset(store, dataDir, basename(jsonPath, extname(jsonPath)), 'coco-import');
  const names = new Map((coco.categories ?? []).map((c) => [c.id, c.name]));
  const itemOf = new Map<number, string>();
  const items: { id: string; images: string[] }[] = [];
  for (const img of coco.images) {
    const src = join(dir, img.file_name);
    if (!existsSync(src)) throw new LoupeError('bad-input', `COCO image ${img.file_name} (id ${img.id}) is missing from ${dir}`);
    const rel = `images/${basename(img.file_name)}`;
    copyFileSync(src, join(dataset.path, rel));
    const id = basename(img.file_name, extname(img.file_name));
    itemOf.set(img.id, id);
    items.push({ id, images: [rel] });
  }
  store.datasets.addItems(dataset.id, items, fingerprintFolder(dataset.path));
  let labels = 0;
  let ignored = 0;
  for (const a of coco.annotations) {
    const itemId = itemOf.get(a.image_id);
    const text = a.category_id !== undefined ? names.get(a.category_id) : undefined;
    if (itemId && a.segmentation) {
      const size = await imageSize(store, dataset.id, itemId, 0);
      const seg = cocoSegmentation(a.segmentation, size.width, size.height);
      if (typeof seg === 'string') throw new LoupeError('bad-input', `COCO annotation ${a.id}: ${seg}`);
      storeMask(store, dataset, itemId, { image: 0, ...size, mask: seg.mask, name: text, polygons: seg.polygons });
      labels++;
    } else if (itemId && a.bbox?.length === 4) {
      const [x, y, w, h] = a.bbox;
      store.labels.put(dataset.id, itemId, { kind: 'box', image: 0, box: [x, y, x + w, y + h], ...(text && { text }) });
      labels++;
    } else if (itemId && a.keypoints && a.keypoints.length >= 3) {
      store.labels.put(dataset.id, itemId, { kind: 'point', image: 0, at: [a.keypoints[0]!, a.keypoints[1]!], ...(text && { name: text }) });
      labels++;
    } else ignored++;
  }
  return { dataset: store.datasets.get(dataset.id), images: items.length, labels, ignored };
}
