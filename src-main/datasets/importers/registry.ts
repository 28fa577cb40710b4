/**
 * One entry per published benchmark format. An importer reads the user's downloaded folder,
 * streams items into a `DatasetWriter` (reporting progress), and says what the dataset is; the
 * registry commits it and registers it like any other dataset folder. Errors abort the import and
 * leave nothing behind.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkFormat, BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import { type DatasetMeta, DatasetWriter, type ImportProgress } from './dataset-writer.ts';
import { importPascalPart } from './pascal-part.ts';
import { importCocoBenchmark } from './coco.ts';
import { importDavis } from './davis.ts';
import { importSpair } from './spair.ts';
import { importBlink } from './blink.ts';
import { importCvBench } from './cv-bench.ts';
import { importRefcoco } from './refcoco.ts';
import { importImagenetS } from './imagenet-s.ts';

export type BenchmarkImporter = (source: string, out: DatasetWriter, options: BenchmarkImportOptions) => Promise<DatasetMeta & { warnings?: string[] }>;

/** Filled in as importers are written; a format without an importer is refused by name. */
const importers: Partial<Record<BenchmarkFormat, BenchmarkImporter>> = {
  'pascal-part': importPascalPart,
  coco: importCocoBenchmark,
  'spair-71k': importSpair,
  'davis-2017': importDavis,
  blink: importBlink,
  'cv-bench': importCvBench,
  refcoco: importRefcoco,
  'imagenet-s': importImagenetS,
};

export interface ImportedBenchmark {
  root: string;
  items: number;
  labels: number;
  warnings: string[];
}

export async function importBenchmark(
  dataDir: string,
  format: BenchmarkFormat,
  source: string,
  options: BenchmarkImportOptions,
  onProgress?: (p: ImportProgress) => void,
): Promise<ImportedBenchmark> {
  const importer = importers[format];
  if (!importer) throw new LoupeError('bad-input', `no importer for ${format} yet`);
  const out = new DatasetWriter(dataDir, format, onProgress);
  try {
    out.progress('reading', 0, null, true);
    const meta = await importer(source, out, options);
    const items = out.itemCount;
    const labels = out.labelCount;
    const root = out.commit({ ...meta, source: { ...meta.source, importedFrom: source, format, options } });
    return { root, items, labels, warnings: meta.warnings ?? [] };
  } catch (e) {
    out.abort();
    if (e instanceof LoupeError) throw e;
    throw new LoupeError('bad-input', `${format} import of ${source} failed: ${(e as Error).message}`);
  }
}
