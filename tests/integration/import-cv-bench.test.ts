/**
 * CV-Bench importer: the fixture (tools/benchmark-fixtures/build_cv_bench.py — test_2d.parquet and
 * test_3d.parquet in the hub's column order, pyarrow, snappy, 2 rows per row group) imported
 * through `datasets/import-benchmark` and compared with the builder's expected.json: ids, questions,
 * choices, answers, every meta column (source, bbox, target_class …) and image bytes; task/type
 * subsets, limit, progress, a missing column and a truncated file refused by name, nothing left behind.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, truncateSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.ts';
import { importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/cv-bench');
const HUB = join(FIXTURE, 'hub');

interface Expected {
  id: string;
  idx: number;
  type: string;
  task: string;
  prompt: string;
  choices: string[];
  answer: string;
  answerLetter: string;
  answerRaw: string;
  promptField: string;
  filename: string;
  source: string;
  source_dataset: string;
  source_filename: string;
  target_class: string | null;
  target_size: number | null;
  bbox: number[][] | null;
  imageSha256: string;
}
const truth = (JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { items: Expected[] }).items;

const h = importHarness('cv-bench');
const { events, manifestOf, importBenchmark: importCvBench } = h;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('CV-Bench import', () => {
  it('imports both files with every field the parquet holds', async () => {
    events.length = 0;
    const r = await importCvBench(HUB);
    expect(r).toMatchObject({ items: truth.length, warnings: [], dataset: { task: 'cv-bench', itemCount: truth.length } });
    const manifest = manifestOf(r);
    expect(manifest.items.map((i) => i.id)).toEqual(truth.map((e) => e.id));
    for (const [k, want] of truth.entries()) {
      const item = manifest.items[k]!;
      expect(item.prompt).toBe(want.prompt);
      expect(item.choices).toEqual(want.choices);
      expect(item.answer).toBe(want.answer);
      expect(item.images.map((p) => sha256(join(r.dataset.path, p)))).toEqual([want.imageSha256]);
      expect(item.meta).toEqual({
        task: `cv-bench:${want.task}`,
        idx: want.idx,
        type: want.type,
        cvTask: want.task,
        answerLetter: want.answerLetter,
        answerRaw: want.answerRaw,
        prompt: want.promptField,
        filename: want.filename,
        source: want.source,
        source_dataset: want.source_dataset,
        source_filename: want.source_filename,
        target_class: want.target_class,
        target_size: want.target_size,
        bbox: want.bbox,
        file: want.type === '2D' ? 'test_2d.parquet' : 'test_3d.parquet',
      });
    }
    expect(events.at(-1)).toEqual({ format: 'cv-bench', phase: 'done', done: truth.length, total: truth.length });
    const reading = events.filter((e) => e.phase === 'reading' && e.total !== null);
    expect(reading[0]!.total).toBe(truth.length);
    for (let k = 1; k < reading.length; k++) expect(reading[k]!.done).toBeGreaterThanOrEqual(reading[k - 1]!.done);
  });

  it('keeps tasks or types by name and stops at the limit', async () => {
    const depth = await importCvBench(HUB, { subset: ['depth'] });
    expect(manifestOf(depth).items.map((i) => i.id)).toEqual(truth.filter((e) => e.task === 'Depth').map((e) => e.id));
    const twoD = await importCvBench(HUB, { subset: ['2D', 'Distance'], limit: 4 });
    expect(manifestOf(twoD).items.map((i) => i.id)).toEqual(truth.filter((e) => e.type === '2D' || e.task === 'Distance').slice(0, 4).map((e) => e.id));
    const relation = await importCvBench(HUB, { subset: ['Relation'], limit: 1 });
    expect(manifestOf(relation).items.map((i) => i.id)).toEqual([truth.find((e) => e.task === 'Relation')!.id]);
    await expect(importCvBench(HUB, { split: 'val' })).rejects.toThrow(/no file of split val \(found test_2d\.parquet, test_3d\.parquet\)/);
  });

  it('refuses a file without a column it reads, naming file, column and columns found; nothing left behind', async () => {
    await h.expectRefused(
      () => importCvBench(join(FIXTURE, 'missing-column')),
      'test_2d.parquet: column "answer" missing for a CV-Bench file (columns found: idx, type, task, image, question, choices, prompt, filename, source, source_dataset, source_filename, target_class, target_size, bbox)',
    );
  });

  it('refuses a truncated parquet naming it; nothing left behind', async () => {
    const copy = tempDir('loupe-cvb-');
    copyFileSync(join(HUB, 'test_2d.parquet'), join(copy, 'test_2d.parquet'));
    copyFileSync(join(HUB, 'test_3d.parquet'), join(copy, 'test_3d.parquet'));
    truncateSync(join(copy, 'test_3d.parquet'), 9000);
    await h.expectRefused(() => importCvBench(copy), /^test_3d\.parquet is not a readable parquet file/);
  });
});
