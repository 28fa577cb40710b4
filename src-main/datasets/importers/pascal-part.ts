/**
 * PASCAL-Part (Chen et al., CVPR 2014) as it ships: `Annotations_Part/<imgid>.mat`, one MATLAB
 * struct `anno` per image — `imname`, and `objects(i)` with `class`, `class_ind`, `mask` (the
 * silhouette, H×W) and `parts(j)` with `part_name` and `mask` — beside the VOC2010 images
 * (`JPEGImages/<imgid>.jpg`). This is the layout the dataset's devkit (`mat2map.m`) reads.
 *
 * One item per image: each object a `mask` label named by its class, each part a `mask` label
 * named `<class>/<part_name>`; the item's meta lists objects → parts with their label indices.
 * Options: `subset` = object classes to keep (images without one are skipped); `split` = a VOC2010
 * image set (`ImageSets/Main/<split>.txt`, e.g. train, val); `limit` = at most that many images.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { BENCHMARK_SOURCES } from '../../../src-shared/dataset/benchmarks.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import type { BenchmarkImporter } from './registry.ts';
import { resolveInside } from './dataset-writer.ts';
import { MaskLayers } from './mask-layers.ts';
import { type MatValue, matScalar, matString, matStructs, readMat } from './mat-file.ts';

/** Where VOC2010's JPEGImages/ may sit relative to the folder holding Annotations_Part/. */
const IMAGE_FOLDERS = ['JPEGImages', 'VOC2010/JPEGImages', 'VOCdevkit/VOC2010/JPEGImages', '../JPEGImages', '../VOC2010/JPEGImages', '../VOCdevkit/VOC2010/JPEGImages'];

interface PartMeta {
  name: string;
  label: number;
}
interface ObjectMeta {
  class: string;
  classInd: number;
  label: number;
  parts: PartMeta[];
}

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/** A column-major MATLAB H×W matrix as a row-major 0/1 mask, checked against the image size. */
function rowMajorMask(v: MatValue | undefined, width: number, height: number, what: string): Uint8Array {
  if (v?.kind !== 'numeric' || v.dims.length !== 2) throw new LoupeError('bad-input', `${what} is not a 2-D matrix (${v ? `${v.kind} ${v.dims.join('×')}` : 'missing'})`);
  const [h, w] = v.dims as [number, number];
  if (h !== height || w !== width) throw new LoupeError('bad-input', `${what} is ${h}×${w} but the image is ${height}×${width} (rows × columns)`);
  const out = new Uint8Array(w * h);
  for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) out[y * w + x] = v.data[x * h + y] ? 1 : 0;
  return out;
}

export const importPascalPart: BenchmarkImporter = async (source, out, options) => {
  const root = basename(source) === 'Annotations_Part' ? dirname(source) : source;
  const annDir = join(root, 'Annotations_Part');
  if (!isDir(annDir)) throw new LoupeError('bad-input', `${source} has no Annotations_Part/ folder (expected ${BENCHMARK_SOURCES['pascal-part']})`);
  const imageFolder = IMAGE_FOLDERS.map((f) => join(root, f)).find(isDir);
  if (!imageFolder) throw new LoupeError('bad-input', `no VOC2010 JPEGImages/ folder found for ${source}; looked in ${IMAGE_FOLDERS.map((f) => join(root, f)).join(', ')}`);

  let ids = readdirSync(annDir).filter((f) => f.endsWith('.mat')).map((f) => f.slice(0, -4)).sort();
  if (options.split) {
    const list = join(dirname(imageFolder), 'ImageSets', 'Main', `${options.split}.txt`);
    if (!existsSync(list)) throw new LoupeError('bad-input', `PASCAL-Part split ${options.split}: no image set ${list}`);
    const keep = new Set(readFileSync(list, 'utf8').split(/\s+/).filter(Boolean));
    ids = ids.filter((id) => keep.has(id));
  }
  const subset = options.subset?.length ? new Set(options.subset) : null;
  const warnings: string[] = [];
  const classesSeen = new Set<string>();
  let done = 0;
  for (const id of ids) {
    if (options.limit && out.itemCount >= options.limit) break;
    out.progress('images', done++, ids.length);
    const what = `Annotations_Part/${id}.mat`;
    const vars = readMat(readFileSync(resolveInside(annDir, `${id}.mat`, 'PASCAL-Part annotation')), what);
    const annos = matStructs(vars.get('anno'), `${what}: anno`);
    if (annos.length !== 1) throw new LoupeError('bad-input', `${what}: anno holds ${annos.length} structs, not 1`);
    const anno = annos[0]!;
    const imname = matString(anno.imname, `${what}: anno.imname`);
    if (imname !== id) throw new LoupeError('bad-input', `${what}: anno.imname is ${imname}, not the file's name`);
    const objects = matStructs(anno.objects, `${what}: anno.objects`);
    const kept = objects.map((o, i) => ({ o, i, cls: matString(o.class, `${what}: objects(${i + 1}).class`) })).filter(({ cls }) => !subset || subset.has(cls));
    if (subset && kept.length === 0) continue;

    const imagePath = resolveInside(imageFolder, `${id}.jpg`, 'PASCAL-Part image');
    const { width, height } = imageSize(imagePath);
    const layers = new MaskLayers(width, height);
    const pending: { name: string; packed: ReturnType<MaskLayers['add']> }[] = [];
    const meta: ObjectMeta[] = [];
    for (const { o, i, cls } of kept) {
      const where = `${what}: objects(${i + 1})`;
      classesSeen.add(cls);
      const obj: ObjectMeta = { class: cls, classInd: matScalar(o.class_ind, `${where}.class_ind`), label: pending.length, parts: [] };
      pending.push({ name: cls, packed: layers.add(rowMajorMask(o.mask, width, height, `${where}.mask`)) });
      const parts = matStructs(o.parts, `${where}.parts`);
      parts.forEach((p, j) => {
        const partName = matString(p.part_name, `${where}.parts(${j + 1}).part_name`);
        obj.parts.push({ name: partName, label: pending.length });
        pending.push({ name: `${cls}/${partName}`, packed: layers.add(rowMajorMask(p.mask, width, height, `${where}.parts(${j + 1}).mask`)) });
      });
      meta.push(obj);
    }
    const files = layers.write(out, id);
    const labels: Label[] = pending.map(({ name, packed }) => ({ kind: 'mask', image: 0, file: files[packed.layer]!, ids: [packed.id], name }));
    if (objects.length === 0) warnings.push(`${id}: no objects annotated`);
    out.addItem({ id, images: [out.copyImage(imagePath, id)], labels, meta: { imname, objects: meta } });
  }
  out.progress('images', done, ids.length, true);
  if (subset) for (const c of subset) if (!classesSeen.has(c)) warnings.push(`class ${c} of the subset was not found in the images read`);
  return {
    name: `PASCAL-Part${options.split ? ` ${options.split}` : ''}${subset ? ` (${[...subset].join(', ')})` : ''}`,
    description: 'PASCAL-Part object and part masks (Chen et al., CVPR 2014) on VOC2010 images',
    task: 'pascal-part',
    source: { benchmark: 'PASCAL-Part', imageFolder },
    warnings,
  };
};
