/**
 * Reading the Hugging Face hub's parquet files (BLINK, CV-Bench, RefCOCO …) a row group at a
 * time with hyparquet: a benchmark shard is hundreds of MB of embedded images, so an importer
 * never holds more than one row group's cells. Columns are checked against what the importer
 * needs before any row is read, so a renamed column fails naming the file, the column and the
 * columns the file has.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { type AsyncBuffer, type FileMetaData, asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export type ParquetRow = Record<string, unknown>;

export interface ParquetSource {
  /** Absolute path. */
  path: string;
  /** Path relative to the download folder, `/`-separated (what messages and `meta` show). */
  rel: string;
  file: AsyncBuffer;
  metadata: FileMetaData;
  /** Top-level column names in file order. */
  columns: string[];
  rows: number;
  /** Row counts per row group, in order. */
  rowGroups: number[];
}

/** Every `*.parquet` under `root` (sorted, `/`-separated relative paths), skipping dot-folders such as `.cache/` that `huggingface-cli download` leaves. */
export function findParquetFiles(root: string, maxDepth = 4): string[] {
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new LoupeError('bad-input', `${root} does not exist`);
  }
  if (st.isFile()) return root.endsWith('.parquet') ? [root] : [];
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory() && depth < maxDepth) walk(p, depth + 1);
      // The hub cache (`huggingface-cli download` without --local-dir) links each file in snapshots/<rev>/ to ../../blobs/.
      else if (e.name.endsWith('.parquet') && (e.isFile() || (e.isSymbolicLink() && isFileTarget(p)))) found.push(p);
    }
  };
  walk(root, 0);
  return found;
}

function isFileTarget(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export function relPath(root: string, path: string): string {
  return (relative(root, path) || path).split(sep).join('/');
}

/** Opens a parquet file and reads its footer; a truncated or non-parquet file is a `bad-input` naming it. */
export async function openParquet(root: string, path: string): Promise<ParquetSource> {
  const rel = relPath(root, path);
  let file: AsyncBuffer;
  let metadata: FileMetaData;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new LoupeError('bad-input', `${rel} is not a readable parquet file (truncated or incomplete download?): ${(e as Error).message}`);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  const rowGroups = metadata.row_groups.map((g) => Number(g.num_rows));
  return { path, rel, file, metadata, columns, rows: Number(metadata.num_rows), rowGroups };
}

/** Refuses a file lacking a column the importer reads, naming the file, the column and what the file has. */
export function requireColumns(src: ParquetSource, required: readonly string[], what: string): void {
  const missing = required.filter((c) => !src.columns.includes(c));
  if (missing.length) {
    throw new LoupeError(
      'bad-input',
      `${src.rel}: column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} missing for ${what} (columns found: ${src.columns.join(', ')})`,
    );
  }
}

/**
 * Yields the file's rows one row group at a time (`rowStart` = the group's first row). Binary
 * cells stay bytes (`utf8: false`; string columns are still strings), int64 cells are bigints.
 */
export async function* rowGroups(src: ParquetSource, columns: readonly string[]): AsyncGenerator<{ rowStart: number; rows: ParquetRow[] }> {
  let rowStart = 0;
  for (const n of src.rowGroups) {
    yield { rowStart, rows: await readRows(src, columns, rowStart, rowStart + n) };
    rowStart += n;
  }
}

/** Rows [rowStart, rowEnd) of the given columns. */
export async function readRows(src: ParquetSource, columns: readonly string[], rowStart: number, rowEnd: number): Promise<ParquetRow[]> {
  try {
    return await parquetReadObjects({ file: src.file, metadata: src.metadata, columns: [...columns], rowStart, rowEnd, compressors, utf8: false });
  } catch (e) {
    throw new LoupeError('bad-input', `${src.rel}: rows ${rowStart}–${rowEnd - 1} cannot be read (damaged file?): ${(e as Error).message}`);
  }
}

/** The bytes of a `datasets.Image` cell (struct {bytes, path}); null when the cell is empty. */
export function imageBytes(cell: unknown, where: string): Uint8Array | null {
  if (cell == null) return null;
  const bytes = (cell as { bytes?: unknown }).bytes;
  if (bytes == null) return null;
  if (!(bytes instanceof Uint8Array)) throw new LoupeError('bad-input', `${where}: image cell is not a {bytes, path} struct with binary bytes`);
  return bytes;
}

export function asString(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  throw new LoupeError('bad-input', `${where}: expected text, found ${v === null ? 'null' : typeof v}`);
}

export function asNumberArray(v: unknown, where: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' || typeof x === 'bigint')) throw new LoupeError('bad-input', `${where}: expected a list of numbers`);
  return v.map(Number);
}

export function asStringArray(v: unknown, where: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new LoupeError('bad-input', `${where}: expected a list of strings`);
  return v as string[];
}

/** A parquet cell made JSON-safe for `meta` (bigints → numbers, bytes dropped). */
export function jsonCell(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Uint8Array) return undefined;
  if (Array.isArray(v)) return v.map(jsonCell);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonCell(x)]));
  return v;
}

/**
 * A multiple-choice answer as the benchmarks write it, "(B)" (or "B"), mapped onto the choice
 * list; null when it is not a letter within the list (BLINK's withheld test answers).
 */
export function choiceFromLetter(answer: string, choices: readonly string[]): { letter: string; index: number } | null {
  const m = /^\s*\(?([A-Z])\)?\s*$/.exec(answer);
  if (!m) return null;
  const index = m[1]!.charCodeAt(0) - 65;
  return index < choices.length ? { letter: m[1]!, index } : null;
}
