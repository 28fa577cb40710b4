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
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { PNG } from 'pngjs';
import type { DatasetInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, type DatasetManifest, type Label } from '../../src-shared/dataset/format.ts';
import { base64ToBytes, rleCounts, rleToString } from '../../src-shared/dataset/mask-codec.ts';
import { type Pt, binaryOf, maskArea, maskBbox } from '../../src-shared/dataset/mask-raster.ts';
import { labelRangeProblem } from '../../src-shared/dataset/label-range.ts';
import { type Question, checkQuestion } from '../../src-shared/dataset/question.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { Store } from '../store/store.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';
import { fingerprintFolder } from '../util/hash.ts';
import { importCocoFile } from '../datasets/importers/coco.ts';
import { DatasetWriter } from '../datasets/importers/dataset-writer.ts';
import { readDatasetFolder } from './dataset-folder.ts';
import { decodeImageRgb, decodeMaskPng } from './image-decode.ts';
import { imageHeaderOf } from './image-header.ts';
import { enforceLimit, limitValue, overLimit } from './limits.ts';

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
  // Counted before any file is decoded or copied: a folder too big for one dataset is refused whole.
  if (dataset.itemCount + files.length > limitValue('datasetItems')) throw overLimit('datasetItems', dataset.itemCount + files.length, `dataset ${datasetId} with the ${files.length} images of ${folder}`);
  const existing = store.datasets.items(datasetId, 0, Math.max(1, dataset.itemCount));
  const ids = new Set(existing.map((i) => i.id));
  const usedFiles = new Set(existing.flatMap((i) => i.images));
  const items: { id: string; images: string[] }[] = [];
  let skipped = 0;
  for (const f of files) {
    const src = join(folder, f);
    try {
      await decodeImageRgb(src, `image ${f}`); // refuse truncated, unreadable or over-limit images up front, not mid-run
    } catch {
      skipped++;
      continue;
    }
    const placed = placeImage(dataset.path, src, f, usedFiles);
    if (!placed) {
      skipped++; // the same bytes are already an item of this dataset (the folder was added before)
      continue;
    }
    const id = freshItemId(f, ids);
    ids.add(id);
    usedFiles.add(placed);
    items.push({ id, images: [placed] });
  }
  const added = store.datasets.addItems(datasetId, items, fingerprintFolder(dataset.path));
  return { added, skipped: skipped + items.length - added, dataset: store.datasets.get(datasetId) };
}

/**
 * An item id for image file `f` no other item has: its name without extension (as Loupe always
 * named them, so existing datasets keep their ids), else name and extension (`x.png` → `x-png`
 * beside `x.jpg` → `x`), else that with a counter. Ids never collide, so an item can never end up
 * showing another item's image.
 */
function freshItemId(f: string, taken: ReadonlySet<string>): string {
  const ext = extname(f);
  const stem = basename(f, ext);
  const tag = ext.slice(1).toLowerCase();
  if (!taken.has(stem)) return stem;
  if (!taken.has(`${stem}-${tag}`)) return `${stem}-${tag}`;
  for (let k = 2; ; k++) if (!taken.has(`${stem}-${tag}-${k}`)) return `${stem}-${tag}-${k}`;
}

/**
 * Copies `src` into the dataset's images/ under a name no other file has (`images/x-2.png` when
 * another folder's `x.png` is there), and returns that path; null when an item already uses a file
 * with exactly these bytes (adding a folder twice adds nothing twice).
 */
function placeImage(root: string, src: string, f: string, usedFiles: ReadonlySet<string>): string | null {
  const ext = extname(f);
  const stem = basename(f, ext);
  const bytes = readFileSync(src);
  for (let k = 1; ; k++) {
    const rel = `images/${k === 1 ? f : `${stem}-${k}${ext}`}`;
    const dest = join(root, rel);
    if (!existsSync(dest)) {
      if (usedFiles.has(rel)) continue; // named by an item whose file went missing: never reuse its name
      copyFileSync(src, dest);
      return rel;
    }
    if (readFileSync(dest).equals(bytes)) return usedFiles.has(rel) ? null : rel;
  }
}

export async function itemImage(store: Store, datasetId: string, itemId: string, index: number): Promise<HostTensor> {
  const dataset = store.datasets.get(datasetId);
  const item = store.datasets.item(datasetId, itemId);
  const rel = item.images[index];
  if (!rel) throw new LoupeError('not-found', `item ${itemId} has no image #${index}`);
  const img = await decodeImageRgb(join(dataset.path, rel), `image ${rel} of item ${itemId}`);
  return { dtype: 'uint8', shape: [img.height, img.width, 3], data: new Uint8Array(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
}

/** A dataset whose labels may be edited (bundled probe sets are replaced when Loupe updates them). */
function writable(store: Store, datasetId: string): DatasetInfo {
  const info = store.datasets.get(datasetId);
  if (info.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled with Loupe and read-only; create a new dataset to label`, { readOnly: true });
  return info;
}

/** First channel of a PNG (16-bit samples kept), as instance ids; refused before decoding when over a limit. */
const decodePng = decodeMaskPng;

/**
 * `labels/put`: a new or replaced label of a user dataset, refused on bundled datasets, on an item
 * that does not exist, and when its coordinates leave its image (nothing is clamped).
 */
export async function putLabel(store: Store, p: { datasetId: string; itemId: string; id?: number | undefined; label: Label }): Promise<StoredLabel> {
  const info = writable(store, p.datasetId);
  const item = store.datasets.item(p.datasetId, p.itemId);
  if (p.id !== undefined) {
    const old = store.labels.get(p.id);
    if (old.datasetId !== p.datasetId || old.itemId !== p.itemId) throw new LoupeError('not-found', `no label ${p.id} on item ${p.itemId} of ${p.datasetId}`);
  } else enforceLimit('labelsPerItem', store.labels.list(p.datasetId, p.itemId).length + 1, `item ${p.itemId} of ${p.datasetId}`);
  const sizes = new Map<number, { width: number; height: number }>();
  for (const i of labelImages(p.label)) if (i < item.images.length && !sizes.has(i)) sizes.set(i, await imageSize(store, p.datasetId, p.itemId, i));
  const problem = labelRangeProblem(p.label, (i) => sizes.get(i), item.images.length);
  if (problem) throw new LoupeError('bad-input', `label on item ${p.itemId} of ${p.datasetId}: ${problem}`);
  if (p.label.kind === 'mask') inside(info.path, p.label.file);
  return store.labels.put(p.datasetId, p.itemId, p.label, p.id);
}

/** The image indexes a label refers to. */
function labelImages(label: Label): number[] {
  if (label.kind === 'class') return [];
  if (label.kind === 'pointPair') return [label.a.image, label.b.image];
  return [label.image];
}

/** `labels/delete`: refused on bundled datasets, whose ground truth must survive. */
export function deleteLabel(store: Store, id: number): StoredLabel {
  const label = store.labels.get(id);
  writable(store, label.datasetId);
  return store.labels.delete(id);
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
  const size = await imageSize(store, p.datasetId, p.itemId, p.image);
  // The header's size is compared before the mask is decoded: a mask bigger than its image costs nothing.
  const header = imageHeaderOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'the mask');
  if (header.width !== size.width || header.height !== size.height) {
    throw new LoupeError('bad-input', `mask is ${header.width}×${header.height} but image #${p.image} of ${p.itemId} is ${size.width}×${size.height}`);
  }
  const png = decodePng(bytes, 'the mask');
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
  // annotations, masks → `segmentation` (polygons when drawn only with polygons, else compressed RLE),
  // point pairs → two-keypoint annotations of a category with keypoints ["a", "b"] and skeleton
  // [[1, 2]] (a pair across two images: one annotation per image, the other point not labelled
  // (v = 0), both with the same `loupe_pair`), class labels → their category with an annotation on
  // the item's first image that has no geometry (`loupe_label: "class"`, area 0).
  const stored = store.labels.storedByItem(datasetId);
  // Categories by name and keypoint layout: a pair category needs its two keypoints declared.
  const categories = new Map<string, { id: number; name: string; keypoints?: string[]; skeleton?: number[][] }>();
  const category = (name: string, pair = false) => {
    const key = `${pair ? 'pair' : 'plain'}:${name}`;
    let c = categories.get(key);
    if (!c) categories.set(key, (c = { id: categories.size + 1, name, ...(pair && { keypoints: ['a', 'b'], skeleton: [[1, 2]] }) }));
    return c.id;
  };
  let pairs = 0;
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
      } else if (l.kind === 'pointPair') {
        const categoryId = category(l.name ?? 'point pair', true);
        const pair = ++pairs;
        if (l.a.image === l.b.image) {
          annotations.push({ id: annotations.length + 1, image_id: ids[l.a.image], category_id: categoryId, keypoints: [l.a.at[0], l.a.at[1], 2, l.b.at[0], l.b.at[1], 2], num_keypoints: 2, loupe_pair: pair });
        } else {
          annotations.push({ id: annotations.length + 1, image_id: ids[l.a.image], category_id: categoryId, keypoints: [l.a.at[0], l.a.at[1], 2, 0, 0, 0], num_keypoints: 1, loupe_pair: pair });
          annotations.push({ id: annotations.length + 1, image_id: ids[l.b.image], category_id: categoryId, keypoints: [0, 0, 0, l.b.at[0], l.b.at[1], 2], num_keypoints: 1, loupe_pair: pair });
        }
      } else if (l.kind === 'class') {
        annotations.push({ id: annotations.length + 1, image_id: ids[0], category_id: category(l.value), area: 0, iscrowd: 0, loupe_label: 'class' });
      }
    }
  }
  const path = join(info.path, 'coco.json');
  writeFileAtomicSync(path, JSON.stringify({ info: { description: info.name }, images, annotations, categories: [...categories.values()] }));
  return { path };
}

/**
 * `datasets/import-coco`: a new dataset from a COCO-style JSON, read by the one COCO reader
 * (`datasets/importers/coco.ts`, also behind `datasets/import-benchmark`) into a staging folder
 * that becomes the dataset only when everything was read — a bad file leaves nothing behind.
 * Images are looked up in `imagesDir` (default: beside the JSON, or COCO's `<split>2017/`).
 */
export async function importCoco(store: Store, dataDir: string, jsonPath: string, imagesDir?: string): Promise<{ dataset: DatasetInfo; images: number; labels: number; ignored: number }> {
  const out = new DatasetWriter(dataDir, 'coco');
  let root: string | null = null;
  try {
    const read = await importCocoFile(jsonPath, out, { limit: 0 }, imagesDir);
    const labels = out.labelCount;
    const folder = out.commit({ name: read.name, description: read.description, task: read.task, source: { ...read.source, importedFrom: jsonPath } });
    root = folder;
    const { manifest } = readDatasetFolder(folder);
    const dataset = store.datasets.put(basename(folder), folder, fingerprintFolder(folder), false, manifest);
    return { dataset, images: read.images, labels, ignored: read.ignored };
  } catch (e) {
    out.abort();
    if (root) rmSync(root, { recursive: true, force: true });
    throw e;
  }
}
