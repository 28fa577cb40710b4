/**
 * User-labelled datasets: created in Loupe's data folder, grown by importing image folders,
 * labelled item by item (labels live in SQLite, autosaved), exported as our manifest or COCO.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { RawImage } from '@huggingface/transformers';
import type { DatasetInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, type DatasetManifest } from '../../src-shared/dataset/format.ts';
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
    const path = join(info.path, 'dataset.json');
    writeFileAtomicSync(path, JSON.stringify(manifest, null, 1));
    return { path };
  }
  if (info.bundled) throw new LoupeError('bad-input', `dataset ${datasetId} is bundled and read-only; export from a copy instead`);
  // COCO: one image per (item, image index); boxes → bbox annotations, points → one-keypoint annotations.
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
    for (const l of item.labels) {
      if (l.kind === 'box') {
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
  annotations: { id: number; image_id: number; category_id?: number; bbox?: [number, number, number, number]; keypoints?: number[] }[];
  categories?: { id: number; name: string }[];
}

/**
 * COCO-style import: a new dataset with one item per COCO image (copied from `imagesDir`,
 * default the JSON's folder), boxes → `box` labels (category name as text), one-keypoint
 * annotations → `point` labels. Anything else in the file is ignored, and said so.
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
    if (itemId && a.bbox?.length === 4) {
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
