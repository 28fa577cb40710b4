/**
 * CV-Bench (nyu-visionx/CV-Bench, Cambrian-1): `test_2d.parquet` and `test_3d.parquet` at the top
 * of the download (the earlier single `test.parquet`, and the viewer's `<config>/test/0000.parquet`,
 * read the same). Columns: idx, type (2D/3D), task (Count, Relation, Depth, Distance), image
 * (datasets.Image struct {bytes, path}), question, choices (list of text), answer ("(C)"), prompt,
 * filename, source (ADE20K/COCO/Omni3D), source_dataset, source_filename, target_class,
 * target_size, bbox (the last three only for some sources, else null).
 *
 * `subset` keeps tasks or types by name (case ignored); `split` keeps files of that split (all are
 * `test`). Rows are read a row group at a time, the text columns first: the image column is only
 * decoded for row groups that hold a wanted row.
 */
import { basename } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { DatasetMeta, DatasetWriter } from './dataset-writer.ts';
import { type ParquetRow, type ParquetSource, asString, asStringArray, choiceFromLetter, findParquetFiles, imageBytes, jsonCell, openParquet, readRows, relPath, requireColumns } from './parquet.ts';

const REQUIRED = ['idx', 'type', 'task', 'image', 'question', 'choices', 'answer'] as const;
const META_COLUMNS = ['prompt', 'filename', 'source', 'source_dataset', 'source_filename', 'target_class', 'target_size', 'bbox'] as const;

/** The split a CV-Bench file holds: `test_2d.parquet` → test, `default/test/0000.parquet` → test. */
export function cvBenchSplit(rel: string): string {
  const name = basename(rel, '.parquet');
  if (/^\d+$/.test(name) || /^\d+-of-\d+$/.test(name)) return rel.split('/').slice(-2, -1)[0] ?? name;
  return /^([A-Za-z]+)/.exec(name)?.[1] ?? name;
}

export async function importCvBench(source: string, out: DatasetWriter, options: BenchmarkImportOptions): Promise<DatasetMeta & { warnings: string[] }> {
  const all = findParquetFiles(source);
  if (!all.length) throw new LoupeError('bad-input', `no parquet files under ${source} (expected CV-Bench's test_2d.parquet / test_3d.parquet)`);
  const files = all.filter((p) => !options.split || cvBenchSplit(relPath(source, p)) === options.split);
  if (!files.length) throw new LoupeError('bad-input', `CV-Bench at ${source}: no file of split ${options.split} (found ${all.map((p) => relPath(source, p)).join(', ')})`);

  const opened: ParquetSource[] = [];
  for (const p of files) {
    const src = await openParquet(source, p);
    requireColumns(src, REQUIRED, 'a CV-Bench file');
    opened.push(src);
  }
  const wanted = new Set((options.subset ?? []).map((s) => s.toLowerCase()));
  const keep = (row: ParquetRow): boolean => !wanted.size || wanted.has(String(row.task).toLowerCase()) || wanted.has(String(row.type).toLowerCase());
  const limit = options.limit || Infinity;
  const totalRows = opened.reduce((n, s) => n + s.rows, 0);
  let scanned = 0;
  let added = 0;
  let duplicates = 0;
  let unanswered = 0;
  const seen = new Set<string>();
  const tasks = new Set<string>();
  out.progress('reading', 0, totalRows, true);

  for (const src of opened) {
    const light = [...REQUIRED.filter((c) => c !== 'image'), ...META_COLUMNS.filter((c) => src.columns.includes(c))];
    let rowStart = 0;
    for (const groupRows of src.rowGroups) {
      if (added >= limit) break;
      const rows = await readRows(src, light, rowStart, rowStart + groupRows);
      const picked: number[] = [];
      for (let k = 0; k < rows.length && added + picked.length < limit; k++) {
        if (!keep(rows[k]!)) continue;
        const id = `${asString(rows[k]!.type, `${src.rel} row ${rowStart + k} type`)}_${asString(rows[k]!.idx, `${src.rel} row ${rowStart + k} idx`)}`;
        // The earlier test.parquet holds the same rows as test_2d/test_3d: a folder with both imports each once.
        if (seen.has(id)) {
          duplicates++;
          continue;
        }
        seen.add(id);
        picked.push(k);
      }
      if (picked.length) {
        const first = picked[0]!;
        const images = await readRows(src, ['image'], rowStart + first, rowStart + picked[picked.length - 1]! + 1);
        for (const k of picked) {
          const row = rows[k]!;
          const where = `${src.rel} row ${rowStart + k}`;
          const type = asString(row.type, `${where} type`);
          const idx = asString(row.idx, `${where} idx`);
          const task = asString(row.task, `${where} task`);
          const choices = asStringArray(row.choices, `${where} choices`);
          const answerRaw = asString(row.answer, `${where} answer`);
          const choice = choiceFromLetter(answerRaw, choices);
          if (!choice) unanswered++;
          const bytes = imageBytes(images[k - first]!.image, `${where} image`);
          if (!bytes) throw new LoupeError('bad-input', `${where}: item ${idx} has no image`);
          const id = `${type}_${idx}`;
          tasks.add(task);
          out.addItem({
            id,
            images: [out.writeImage(bytes, `${type}-${task}-${idx}`)],
            prompt: asString(row.question, `${where} question`),
            choices,
            ...(choice ? { answer: choices[choice.index]! } : {}),
            labels: [],
            meta: {
              task: `cv-bench:${task}`,
              idx: jsonCell(row.idx),
              type,
              cvTask: task,
              answerLetter: choice?.letter ?? null,
              answerRaw,
              ...Object.fromEntries(META_COLUMNS.filter((c) => src.columns.includes(c)).map((c) => [c, jsonCell(row[c]) ?? null])),
              file: src.rel,
            },
          });
          added++;
        }
      }
      scanned += groupRows;
      rowStart += groupRows;
      out.progress('reading', scanned, totalRows);
    }
  }
  if (wanted.size && !added) throw new LoupeError('bad-input', `CV-Bench at ${source}: no row of task or type ${[...wanted].join(', ')} (tasks are Count, Relation, Depth, Distance; types 2D, 3D)`);

  const warnings: string[] = [];
  if (duplicates) warnings.push(`${duplicates} CV-Bench rows appear in more than one file (test.parquet beside test_2d/test_3d?) and were imported once`);
  if (unanswered) warnings.push(`${unanswered} CV-Bench rows have an answer that is not a letter within their choices`);
  return {
    name: `CV-Bench${wanted.size ? ` ${[...tasks].join('+')}` : ''}`,
    description: `CV-Bench (nyu-visionx/CV-Bench, Cambrian-1) from ${opened.map((s) => s.rel).join(', ')}`,
    task: 'cv-bench',
    source: { benchmark: 'CV-Bench', hub: 'nyu-visionx/CV-Bench', tasks: [...tasks], files: opened.map((s) => s.rel) },
    warnings,
  };
}
