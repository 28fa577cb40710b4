/** Reads and validates a dataset folder (`dataset.json` + images) before anything is stored. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { z } from 'zod';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { DatasetManifest, type DatasetItem } from '../../src-shared/dataset/format.ts';
import { type ImageDims, labelRangeProblem } from '../../src-shared/dataset/label-range.ts';
import { checkDecodeCost } from './image-decode.ts';
import { assertInsideFolder, containmentRoots } from './inside-folder.ts';
import { readImageHeader } from './image-header.ts';
import { enforceLimit } from './limits.ts';

export interface DatasetFolder {
  root: string;
  manifest: DatasetManifest;
}

export function readDatasetFolder(path: string): DatasetFolder {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'dataset.json') : path;
  if (!existsSync(file)) throw new LoupeError('not-found', `no dataset manifest at ${file}`);
  // Sized before it is read: a manifest is parsed whole.
  enforceLimit('manifestBytes', statSync(file).size, `dataset manifest ${file}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LoupeError('bad-input', `dataset manifest ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = DatasetManifest.safeParse(raw);
  if (!parsed.success) throw new LoupeError('bad-input', `dataset manifest ${file} is malformed:\n${z.prettifyError(parsed.error)}`, parsed.error.issues);
  const root = dirname(file);
  // Links may not lead out of the folder (a linked "image" could be any readable file).
  const roots = containmentRoots(root);
  if (file !== path) assertInsideFolder(root, file, 'dataset manifest', roots);
  enforceLimit('datasetItems', parsed.data.items.length, `dataset manifest ${file}`);
  const ids = new Set<string>();
  for (const item of parsed.data.items) {
    enforceLimit('imagesPerItem', item.images.length, `dataset manifest ${file}: item ${item.id}`);
    enforceLimit('labelsPerItem', item.labels.length, `dataset manifest ${file}: item ${item.id}`);
    if (ids.has(item.id)) throw new LoupeError('bad-input', `dataset manifest ${file}: item id "${item.id}" appears twice`);
    ids.add(item.id);
    for (const img of item.images) {
      // Images must stay inside the dataset folder: a manifest is data, not a licence to read anywhere.
      if (isAbsolute(img) || normalize(img).startsWith('..')) throw new LoupeError('bad-input', `dataset item ${item.id}: image path ${img} leaves the dataset folder`);
      if (!existsSync(join(root, img))) throw new LoupeError('bad-input', `dataset item ${item.id}: image ${img} is missing`);
      if (!statSync(join(root, img)).isFile()) throw new LoupeError('bad-input', `dataset item ${item.id}: image ${img} is not a file`);
      assertInsideFolder(root, join(root, img), `dataset item ${item.id}: image`, roots);
    }
    checkLabels(root, item);
  }
  return { root, manifest: parsed.data };
}

/**
 * An item's labels against its images, from the image headers (no decoding): coordinates on the
 * image (label-range.ts; nothing is clamped), mask files inside the folder, present, PNG, within
 * the mask limits and of their image's size. JPEG sizes are taken as the square of the longer
 * side: an EXIF orientation can swap width and height, and only decoding would tell.
 */
function checkLabels(root: string, item: DatasetItem): void {
  if (item.labels.length === 0) return;
  const dims = new Map<number, ImageDims & { exact: boolean }>();
  const dimsOf = (i: number) => {
    const img = item.images[i];
    if (img === undefined) return undefined;
    let d = dims.get(i);
    if (!d) {
      const { header, fileBytes } = readImageHeader(join(root, img), `image ${img} of item ${item.id}`);
      checkDecodeCost(header, fileBytes, `image ${img} of item ${item.id}`, 'imagePixels');
      const side = Math.max(header.width, header.height);
      d = header.format === 'jpeg' ? { width: side, height: side, exact: false } : { width: header.width, height: header.height, exact: true };
      dims.set(i, d);
    }
    return d;
  };
  item.labels.forEach((label, k) => {
    const problem = labelRangeProblem(label, dimsOf, item.images.length);
    if (problem) throw new LoupeError('bad-input', `dataset item ${item.id}, label #${k} (${label.kind}): ${problem}`);
    if (label.kind !== 'mask') return;
    if (isAbsolute(label.file) || normalize(label.file).startsWith('..')) throw new LoupeError('bad-input', `dataset item ${item.id}: mask file ${label.file} leaves the dataset folder`);
    const path = join(root, label.file);
    if (!existsSync(path)) throw new LoupeError('bad-input', `dataset item ${item.id}: mask file ${label.file} is missing`);
    assertInsideFolder(root, path, `dataset item ${item.id}: mask file`);
    const what = `mask file ${label.file} of item ${item.id}`;
    const { header, fileBytes } = readImageHeader(path, what);
    if (header.format !== 'png') throw new LoupeError('bad-input', `${what} is a ${header.format.toUpperCase()}, not a PNG`);
    checkDecodeCost(header, fileBytes, what, 'maskPixels');
    const d = dimsOf(label.image)!;
    if (d.exact && (header.width !== d.width || header.height !== d.height)) {
      throw new LoupeError('bad-input', `${what} is ${header.width}×${header.height} but image #${label.image} is ${d.width}×${d.height}`);
    }
  });
}
