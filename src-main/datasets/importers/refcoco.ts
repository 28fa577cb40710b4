/**
 * RefCOCO, RefCOCO+ and RefCOCOg as the Hugging Face hub publishes them, in two layouts:
 *
 * - lmms-lab/RefCOCO, lmms-lab/RefCOCOplus, lmms-lab/RefCOCOg: `data/<split>-0000k-of-0000n.parquet`
 *   with the COCO image embedded. Columns: question_id, image (datasets.Image struct {bytes, path}),
 *   question (the evaluation prompt), answer (list of the referring sentences), segmentation (one
 *   flat polygon x0,y0,x1,y1,… float32), bbox (COCO [x, y, w, h] float32), iscrowd (int8), file_name.
 * - jxu124/refcoco, jxu124/refcocoplus, jxu124/refcocog: `data/<split>-…parquet`, one row per ref,
 *   no pixels. Columns include ref_id, ann_id, image_id, split, sentences (list of struct {raw, sent,
 *   sent_id, tokens}), raw_anns (the COCO annotation as JSON), raw_image_info (the COCO image entry
 *   as JSON), image_path, bbox (float64 [x, y, w, h]). Images are looked up in a COCO train2014
 *   folder inside or beside the download (`train2014/`, `coco/train2014/`, `images/train2014/`, or
 *   the row's image_path).
 *
 * The variant comes from the folder names (RefCOCO, RefCOCOplus / refcoco+, RefCOCOg); point at one
 * download or a folder holding several. `subset` keeps variants (refcoco, refcoco+, refcocog),
 * `split` keeps one split (val, test, testA, testB, train, validation …).
 *
 * One item per row: the image, the prompt, a `box` label [x0, y0, x1, y1] = [x, y, x + w, y + h]
 * with the first referring sentence as its text, and a `mask` label rasterised from the polygons
 * (pixel centres inside, `fillPolygon`) that keeps the polygons. All sentences go to `meta`.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { type Pt, fillPolygon } from '../../../src-shared/dataset/mask-raster.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import { type DatasetMeta, type DatasetWriter, resolveInside } from './dataset-writer.ts';
import { type ParquetRow, type ParquetSource, asNumberArray, asString, asStringArray, findParquetFiles, imageBytes, jsonCell, openParquet, readRows, relPath, requireColumns } from './parquet.ts';

type Layout = 'lmms' | 'refer';
const LMMS_COLUMNS = ['question_id', 'image', 'question', 'answer', 'segmentation', 'bbox', 'file_name'] as const;
const REFER_COLUMNS = ['ref_id', 'ann_id', 'image_id', 'sentences', 'raw_anns', 'raw_image_info', 'bbox'] as const;
const REFER_OPTIONAL = ['image_path', 'category_id', 'file_name', 'split'] as const;

/** refcoco | refcoco+ | refcocog from a folder or subset name (RefCOCOplus, refcoco_plus, RefCOCO+ …), or null. */
export function refcocoVariant(name: string): string | null {
  const m = /^(?:.*[^a-z])?refcoco(plus|\+|_plus|-plus|g|-g|_g)?(?:[^a-z].*)?$/i.exec(name);
  if (!m) return null;
  const tail = (m[1] ?? '').replace(/[-_]/g, '').toLowerCase();
  return tail === 'g' ? 'refcocog' : tail ? 'refcoco+' : 'refcoco';
}

/** The variant of a file: the nearest folder (from the file up, then the download folder) naming one; RefCOCO when none does. */
function variantOf(root: string, rel: string): string {
  const parts = [basename(root), ...rel.split('/').slice(0, -1)];
  for (let i = parts.length - 1; i >= 0; i--) {
    const v = refcocoVariant(parts[i]!);
    if (v) return v;
  }
  return 'refcoco';
}

function splitOf(rel: string): string {
  const name = basename(rel, '.parquet');
  return /^([A-Za-z]+)-\d+-of-\d+/.exec(name)?.[1] ?? (/^\d+$/.test(name) ? (rel.split('/').slice(-2, -1)[0] ?? name) : name);
}

/** COCO polygons from a flat list (one polygon) or a list of flat lists; null when they do not form a polygon. */
function polygonsOf(seg: unknown): Pt[][] | null {
  if (!Array.isArray(seg) || !seg.length) return null;
  const flats = Array.isArray(seg[0]) ? (seg as unknown[]) : [seg];
  const out: Pt[][] = [];
  for (const f of flats) {
    if (!Array.isArray(f) || f.length < 6 || f.length % 2 || !f.every((v) => typeof v === 'number' && Number.isFinite(v))) return null;
    out.push(Array.from({ length: f.length / 2 }, (_, k) => [f[2 * k] as number, f[2 * k + 1] as number] as const));
  }
  return out;
}

interface Row {
  id: string;
  prompt?: string;
  sentences: string[];
  bbox: number[];
  polygons: Pt[][] | null;
  /** Embedded bytes (lmms) or a COCO file name to look up (refer). */
  image: { bytes: Uint8Array } | { fileName: string; imagePath?: string };
  /** Shares one image file between rows of the same COCO image. */
  imageKey: string;
  meta: Record<string, unknown>;
}

function parseJson(v: unknown, where: string): Record<string, unknown> {
  try {
    const j = JSON.parse(asString(v, where)) as unknown;
    const o = Array.isArray(j) ? j[0] : j;
    if (o && typeof o === 'object') return o as Record<string, unknown>;
  } catch {
    /* reported below */
  }
  throw new LoupeError('bad-input', `${where}: not a JSON object`);
}

function lmmsRow(row: ParquetRow, where: string, variant: string, split: string): Row {
  const qid = asString(row.question_id, `${where} question_id`);
  const bytes = imageBytes(row.image, `${where} image`);
  if (!bytes) throw new LoupeError('bad-input', `${where}: ref ${qid} has no image`);
  const fileName = row.file_name == null ? '' : asString(row.file_name, `${where} file_name`);
  return {
    id: `${variant}:${split}:${qid}`,
    prompt: asString(row.question, `${where} question`),
    sentences: asStringArray(row.answer, `${where} answer`),
    bbox: asNumberArray(row.bbox, `${where} bbox`),
    polygons: polygonsOf(row.segmentation),
    image: { bytes },
    imageKey: fileName || `${variant}:${split}:${qid}`,
    meta: { questionId: qid, fileName, iscrowd: jsonCell(row.iscrowd) ?? null, segmentation: jsonCell(row.segmentation) ?? null },
  };
}

function referRow(row: ParquetRow, where: string, variant: string, split: string): Row {
  const refId = asString(row.ref_id, `${where} ref_id`);
  const ann = parseJson(row.raw_anns, `${where} raw_anns`);
  const info = parseJson(row.raw_image_info, `${where} raw_image_info`);
  const sentences = Array.isArray(row.sentences) ? (row.sentences as { sent?: unknown; raw?: unknown }[]).map((s, k) => asString(s?.sent ?? s?.raw, `${where} sentences[${k}]`)) : [];
  const fileName = asString(info.file_name, `${where} raw_image_info.file_name`);
  return {
    id: `${variant}:${split}:${refId}`,
    sentences,
    bbox: asNumberArray(row.bbox, `${where} bbox`),
    polygons: polygonsOf(ann.segmentation),
    image: { fileName, ...(typeof row.image_path === 'string' ? { imagePath: row.image_path } : {}) },
    imageKey: fileName,
    meta: {
      refId: jsonCell(row.ref_id),
      annId: jsonCell(row.ann_id),
      imageId: jsonCell(row.image_id),
      categoryId: jsonCell(row.category_id) ?? null,
      fileName,
      segmentation: ann.segmentation ?? null,
    },
  };
}

/** A COCO image named by a ref, inside the variant folder, the download folder or the folder above it. */
function findCocoImage(source: string, variantDir: string, fileName: string, imagePath: string | undefined): string {
  const rels = [...(imagePath ? [imagePath] : []), `train2014/${fileName}`, `coco/train2014/${fileName}`, `images/train2014/${fileName}`, `images/${fileName}`, fileName];
  const bases = [...new Set([variantDir, source, dirname(source)])];
  for (const base of bases) for (const rel of rels) if (existsSync(join(base, rel))) return resolveInside(base, rel, 'COCO image');
  throw new LoupeError('bad-input', `COCO image ${fileName} not found in ${bases.map((b) => `${b}/{${rels.join(',')}}`).join(' or ')} — this RefCOCO layout needs the COCO train2014 images beside it`);
}

export async function importRefcoco(source: string, out: DatasetWriter, options: BenchmarkImportOptions): Promise<DatasetMeta & { warnings: string[] }> {
  const all = findParquetFiles(source).map((path) => {
    const rel = relPath(source, path);
    return { path, rel, variant: variantOf(source, rel), split: splitOf(rel) };
  });
  if (!all.length) throw new LoupeError('bad-input', `no parquet files under ${source} (expected RefCOCO's data/<split>-0000k-of-0000n.parquet)`);
  const wanted = new Set((options.subset ?? []).map((s) => refcocoVariant(s) ?? s.toLowerCase()));
  const files = all.filter((f) => (!wanted.size || wanted.has(f.variant)) && (!options.split || f.split === options.split));
  if (!files.length) {
    throw new LoupeError('bad-input', `RefCOCO at ${source}: nothing matches subset ${JSON.stringify(options.subset ?? [])} split ${options.split ?? '(any)'} (found ${[...new Set(all.map((f) => `${f.variant}/${f.split}`))].join(', ')})`);
  }

  const opened: { src: ParquetSource; layout: Layout; variant: string; split: string }[] = [];
  for (const f of files) {
    const src = await openParquet(source, f.path);
    const layout: Layout = src.columns.includes('raw_anns') ? 'refer' : 'lmms';
    requireColumns(src, layout === 'refer' ? REFER_COLUMNS : LMMS_COLUMNS, layout === 'refer' ? 'a RefCOCO refs file (jxu124 layout)' : 'a RefCOCO file (lmms-lab layout)');
    opened.push({ src, layout, variant: f.variant, split: f.split });
  }

  const limit = options.limit || Infinity;
  const total = Math.min(limit, opened.reduce((n, o) => n + o.src.rows, 0));
  const images = new Map<string, { rel: string; width: number; height: number }>();
  const ids = new Set<string>();
  let done = 0;
  let noMask = 0;
  let duplicates = 0;
  out.progress('reading', 0, total, true);

  for (const { src, layout, variant, split } of opened) {
    const columns = layout === 'refer' ? [...REFER_COLUMNS, ...REFER_OPTIONAL.filter((c) => src.columns.includes(c))] : [...LMMS_COLUMNS, ...(src.columns.includes('iscrowd') ? ['iscrowd'] : [])];
    const variantDir = join(source, ...src.rel.split('/').slice(0, -1).filter((p) => p !== 'data'));
    let rowStart = 0;
    for (const groupRows of src.rowGroups) {
      if (done >= limit) break;
      const rows = await readRows(src, columns, rowStart, rowStart + Math.min(groupRows, limit - done));
      rows.forEach((raw, k) => {
        const where = `${src.rel} row ${rowStart + k}`;
        const row = layout === 'refer' ? referRow(raw, where, variant, split) : lmmsRow(raw, where, variant, split);
        if (row.bbox.length !== 4) throw new LoupeError('bad-input', `${where}: bbox has ${row.bbox.length} numbers, not COCO's [x, y, w, h]`);
        let image = images.get(row.imageKey);
        if (!image) {
          const stem = row.imageKey.replace(/\.[^.]+$/, '') || row.id;
          const rel = 'bytes' in row.image ? out.writeImage(row.image.bytes, stem) : out.copyImage(findCocoImage(source, variantDir, row.image.fileName, row.image.imagePath), stem);
          const made = { rel, ...imageSize(join(out.staging, rel)) };
          images.set(row.imageKey, made);
          image = made;
        }
        const [x, y, w, h] = row.bbox as [number, number, number, number];
        const text = row.sentences[0];
        const labels: Label[] = [{ kind: 'box', image: 0, box: [x, y, x + w, y + h], ...(text !== undefined ? { text } : {}) }];
        if (row.polygons) {
          const mask = new Uint8Array(image.width * image.height);
          for (const poly of row.polygons) fillPolygon(mask, image.width, image.height, poly, 1);
          const file = out.writeMask(mask, image.width, image.height, row.id.replace(/:/g, '-'));
          labels.push({ kind: 'mask', image: 0, file, ids: [1], ...(text !== undefined ? { name: text } : {}), polygons: row.polygons.map((p) => p.map(([px, py]) => [px, py] as [number, number])) });
        } else noMask++;
        let id = row.id;
        // A ref repeated in a split (lmms-lab rows are per question) keeps every row, told apart by a suffix.
        for (let n = 2; ids.has(id); n++) id = `${row.id}#${n}`;
        if (id !== row.id) duplicates++;
        ids.add(id);
        out.addItem({
          id,
          images: [image.rel],
          ...(row.prompt !== undefined ? { prompt: row.prompt } : {}),
          ...(text !== undefined ? { answer: text } : {}),
          labels,
          meta: { task: `refcoco:${variant}`, variant, split, sentences: row.sentences, bbox: row.bbox, ...row.meta, file: src.rel },
        });
        done++;
      });
      out.progress('reading', done, total);
      rowStart += groupRows;
    }
  }

  const variants = [...new Set(opened.map((o) => o.variant))];
  const splits = [...new Set(opened.map((o) => o.split))];
  const warnings: string[] = [];
  if (noMask) warnings.push(`${noMask} RefCOCO refs have no polygon segmentation (crowd RLE or empty) and got a box only`);
  if (duplicates) warnings.push(`${duplicates} RefCOCO rows repeat an id within their split and were kept with a #n suffix`);
  return {
    name: `${variants.map((v) => v.replace('refcoco', 'RefCOCO')).join('+')} ${splits.join('+')}`,
    description: `RefCOCO family (${variants.join(', ')}) from ${opened.map((o) => o.src.rel).join(', ')}`,
    task: 'refcoco',
    source: { benchmark: 'RefCOCO', layouts: [...new Set(opened.map((o) => o.layout))], variants, splits, files: opened.map((o) => o.src.rel) },
    warnings,
  };
}
