/**
 * BLINK (BLINK-Benchmark/BLINK on the Hugging Face hub): one folder per subtask, one parquet per
 * split — `<Subtask>/<split>-00000-of-00001.parquet` as `huggingface-cli download --repo-type
 * dataset BLINK-Benchmark/BLINK` leaves it (the dataset viewer's `refs/convert/parquet` copy,
 * `<Subtask>/<split>/0000.parquet`, reads the same). Columns: idx, question, sub_task,
 * image_1..image_4 (datasets.Image: struct {bytes, path}, null when the item has fewer images),
 * choices (list of text), answer ("(A)"; withheld in the test split), prompt, explanation.
 *
 * `subset` keeps subtasks by folder name (case, `-`, `_` and spaces ignored); `split` keeps
 * val / test. One item per row: images in order, the question as prompt, the choice texts, the
 * answer as the chosen text (letter and the original fields in `meta`).
 */
import { basename, dirname } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { DatasetMeta, DatasetWriter } from './dataset-writer.ts';
import { type ParquetSource, asString, asStringArray, choiceFromLetter, findParquetFiles, imageBytes, openParquet, readRows, relPath, requireColumns } from './parquet.ts';

const REQUIRED = ['idx', 'question', 'sub_task', 'image_1', 'choices', 'answer'] as const;
const OPTIONAL = ['image_2', 'image_3', 'image_4', 'prompt', 'explanation'] as const;
const IMAGE_COLUMNS = ['image_1', 'image_2', 'image_3', 'image_4'] as const;

const norm = (s: string): string => s.toLowerCase().replace(/[-_\s]+/g, '');

/** Subtask and split of a file from its place in the download: `<Subtask>/<split>-*.parquet` or `<Subtask>/<split>/*.parquet`. */
export function blinkFileRole(rel: string, rootName: string): { subtask: string; split: string } {
  const parts = rel.split('/');
  const name = basename(rel, '.parquet');
  const dashed = /^([A-Za-z]+)-\d+-of-\d+/.exec(name);
  if (dashed) return { subtask: parts.length >= 2 ? parts[parts.length - 2]! : rootName, split: dashed[1]! };
  // refs/convert/parquet: <Subtask>/<split>/0000.parquet
  return { subtask: parts.length >= 3 ? parts[parts.length - 3]! : rootName, split: parts.length >= 2 ? parts[parts.length - 2]! : name };
}

export async function importBlink(source: string, out: DatasetWriter, options: BenchmarkImportOptions): Promise<DatasetMeta & { warnings: string[] }> {
  const rootName = basename(source);
  const all = findParquetFiles(source).map((path) => ({ path, ...blinkFileRole(relPath(source, path), source.endsWith('.parquet') ? basename(dirname(source)) : rootName) }));
  if (!all.length) throw new LoupeError('bad-input', `no parquet files under ${source} (expected BLINK's <Subtask>/<split>-00000-of-00001.parquet)`);
  const wanted = new Set((options.subset ?? []).map(norm));
  const files = all.filter((f) => (!wanted.size || wanted.has(norm(f.subtask))) && (!options.split || f.split === options.split));
  if (wanted.size) {
    const unknown = (options.subset ?? []).filter((s) => !all.some((f) => norm(f.subtask) === norm(s)));
    if (unknown.length) throw new LoupeError('bad-input', `BLINK at ${source}: no subtask ${unknown.join(', ')} (found ${[...new Set(all.map((f) => f.subtask))].join(', ')})`);
  }
  if (!files.length) {
    const have = [...new Set(all.map((f) => `${f.subtask}/${f.split}`))].join(', ');
    throw new LoupeError('bad-input', `BLINK at ${source}: nothing matches subset ${JSON.stringify(options.subset ?? [])} split ${options.split ?? '(any)'} (found ${have})`);
  }

  // Every file's footer and columns first: a bad file fails the import before anything is written.
  const opened: { src: ParquetSource; subtask: string; split: string }[] = [];
  for (const f of files) {
    const src = await openParquet(source, f.path);
    requireColumns(src, REQUIRED, 'a BLINK subtask file');
    opened.push({ src, subtask: f.subtask, split: f.split });
  }
  const limit = options.limit || Infinity;
  const total = Math.min(limit, opened.reduce((n, o) => n + o.src.rows, 0));
  let done = 0;
  let unanswered = 0;
  out.progress('reading', 0, total, true);

  for (const { src, subtask, split } of opened) {
    const columns = [...REQUIRED, ...OPTIONAL.filter((c) => src.columns.includes(c))];
    let rowStart = 0;
    for (const groupRows of src.rowGroups) {
      if (done >= limit) break;
      const rowEnd = rowStart + Math.min(groupRows, limit - done);
      const rows = await readRows(src, columns, rowStart, rowEnd);
      rows.forEach((row, k) => {
        const where = `${src.rel} row ${rowStart + k}`;
        const idx = asString(row.idx, `${where} idx`);
        const choices = asStringArray(row.choices, `${where} choices`);
        const answerRaw = asString(row.answer, `${where} answer`);
        const picked = choiceFromLetter(answerRaw, choices);
        if (!picked) unanswered++;
        const images: string[] = [];
        for (const c of IMAGE_COLUMNS) {
          const bytes = imageBytes(row[c], `${where} ${c}`);
          if (bytes) images.push(out.writeImage(bytes, `${idx}-${c.slice(-1)}`));
        }
        if (!images.length) throw new LoupeError('bad-input', `${where}: item ${idx} has no image`);
        out.addItem({
          id: idx,
          images,
          prompt: asString(row.question, `${where} question`),
          choices,
          ...(picked ? { answer: choices[picked.index]! } : {}),
          labels: [],
          meta: {
            task: `blink:${subtask}`,
            subtask,
            sub_task: row.sub_task,
            split,
            answerLetter: picked?.letter ?? null,
            answerRaw,
            ...(row.prompt != null ? { prompt: row.prompt } : {}),
            ...(row.explanation != null ? { explanation: row.explanation } : {}),
            file: src.rel,
          },
        });
        done++;
      });
      out.progress('reading', done, total);
      rowStart += groupRows;
    }
  }

  const subtasks = [...new Set(opened.map((o) => o.subtask))];
  const splits = [...new Set(opened.map((o) => o.split))];
  const warnings = unanswered ? [`${unanswered} BLINK item${unanswered > 1 ? 's have' : ' has'} no answer (the test split's answers are withheld)`] : [];
  return {
    name: `BLINK ${subtasks.length === 1 ? subtasks[0] : `${subtasks.length} subtasks`} ${splits.join('+')}`,
    description: `BLINK (BLINK-Benchmark/BLINK) ${subtasks.join(', ')}; split ${splits.join(', ')}`,
    task: subtasks.length === 1 ? `blink:${subtasks[0]}` : 'blink',
    source: { benchmark: 'BLINK', hub: 'BLINK-Benchmark/BLINK', subtasks, splits, files: opened.map((o) => o.src.rel) },
    warnings,
  };
}
