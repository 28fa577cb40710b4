/**
 * BLINK importer: the fixture (tools/benchmark-fixtures/build_blink.py — pyarrow parquet in the
 * hub's schema and <Subtask>/<split>-00000-of-00001.parquet layout, 2 rows per row group) imported
 * through `datasets/import-benchmark` and compared with the builder's expected.json: ids, prompts,
 * choices, answers (text, letter, raw), image bytes (sha256) and formats; subset/split/limit,
 * progress, a renamed column and a truncated file refused by name with nothing left behind.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, truncateSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/fixtures.ts';
import { importHarness } from '../helpers/import-harness.ts';

const FIXTURE = resolve(__dirname, '../fixtures/benchmarks/blink');
const HUB = join(FIXTURE, 'hub');

interface Expected {
  id: string;
  subtask: string;
  split: string;
  sub_task: string;
  prompt: string;
  choices: string[];
  answer: string | null;
  answerLetter: string | null;
  answerRaw: string;
  promptField: string;
  imageSha256: string[];
  imageExt: string[];
}
const truth = (JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { items: Expected[] }).items;
/** The importer's order: files sorted by path (<Subtask>/<split>-…), rows in file order. */
const fileOrder = [...truth].sort((a, b) => (a.subtask + '/' + a.split < b.subtask + '/' + b.split ? -1 : a.subtask + '/' + a.split > b.subtask + '/' + b.split ? 1 : 0));

const h = importHarness('blink');
const { events, manifestOf, importBenchmark: importBlink } = h;
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('BLINK import', () => {
  it('imports every subtask and split with the questions, choices, answers and images the parquet holds', async () => {
    events.length = 0;
    const r = await importBlink(HUB);
    expect(r.items).toBe(truth.length);
    expect(r.dataset.task).toBe('blink');
    expect(r.warnings).toEqual(['1 BLINK item has no answer (the test split\'s answers are withheld)']);
    const manifest = manifestOf(r);
    expect(manifest.items.map((i) => i.id)).toEqual(fileOrder.map((e) => e.id));
    for (const want of truth) {
      const item = manifest.items.find((i) => i.id === want.id)!;
      expect(item.prompt).toBe(want.prompt);
      expect(item.choices).toEqual(want.choices);
      expect(item.answer ?? null).toBe(want.answer);
      expect(item.images.map((p) => sha256(join(r.dataset.path, p)))).toEqual(want.imageSha256);
      expect(item.images.map((p) => extname(p))).toEqual(want.imageExt);
      expect(item.meta).toEqual({
        task: `blink:${want.subtask}`,
        subtask: want.subtask,
        sub_task: want.sub_task,
        split: want.split,
        answerLetter: want.answerLetter,
        answerRaw: want.answerRaw,
        prompt: want.promptField,
        explanation: '',
        file: `${want.subtask}/${want.split}-00000-of-00001.parquet`,
      });
    }
    // Progress: a first report before any row, counts that never go back, a last one at the total.
    expect(events[0]).toEqual({ format: 'blink', phase: 'reading', done: 0, total: null });
    expect(events.at(-1)).toEqual({ format: 'blink', phase: 'done', done: truth.length, total: truth.length });
    const reading = events.filter((e) => e.phase === 'reading' && e.total !== null);
    expect(reading[0]).toEqual({ format: 'blink', phase: 'reading', done: 0, total: truth.length });
    for (let k = 1; k < reading.length; k++) expect(reading[k]!.done).toBeGreaterThanOrEqual(reading[k - 1]!.done);
  });

  it('keeps the subtasks, split and number of items asked for, across row groups', async () => {
    const r = await importBlink(HUB, { subset: ['counting', 'visual-correspondence'], split: 'val', limit: 4 });
    const want = fileOrder.filter((e) => (e.subtask === 'Counting' || e.subtask === 'Visual_Correspondence') && e.split === 'val').slice(0, 4);
    expect(manifestOf(r).items.map((i) => i.id)).toEqual(want.map((e) => e.id));
    expect(want.map((e) => e.id)).toEqual(['val_Counting_1', 'val_Counting_2', 'val_Counting_3', 'val_Visual_Correspondence_1']);
    const one = await importBlink(HUB, { subset: ['Art_Style'] });
    expect(one.dataset.task).toBe('blink:Art_Style');
    expect(manifestOf(one).items[0]!.images).toHaveLength(3);
    await expect(importBlink(HUB, { subset: ['Colour_Constancy'] })).rejects.toThrow(/no subtask Colour_Constancy \(found Art_Style, Counting, Visual_Correspondence\)/);
  });

  it('reads the hub cache layout, where snapshots/<rev>/ links every file to ../../blobs/', async () => {
    const repo = join(tempDir('loupe-hfcache-'), 'datasets--BLINK-Benchmark--BLINK');
    const snapshot = join(repo, 'snapshots', '0123abc');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(snapshot, 'Counting'), { recursive: true });
    for (const split of ['test', 'val']) {
      cpSync(join(HUB, 'Counting', `${split}-00000-of-00001.parquet`), join(repo, 'blobs', `blob-${split}`));
      symlinkSync(join('..', '..', '..', 'blobs', `blob-${split}`), join(snapshot, 'Counting', `${split}-00000-of-00001.parquet`));
    }
    const r = await importBlink(snapshot, { split: 'val' });
    expect(manifestOf(r).items.map((i) => i.id)).toEqual(['val_Counting_1', 'val_Counting_2', 'val_Counting_3']);
  });

  it('refuses a renamed column by file, column and the columns found, leaving no dataset folder', async () => {
    await h.expectRefused(
      () => importBlink(join(FIXTURE, 'renamed-column')),
      'Counting/val-00000-of-00001.parquet: column "choices" missing for a BLINK subtask file (columns found: idx, question, sub_task, image_1, image_2, image_3, image_4, options, answer, prompt, explanation)',
    );
  });

  it('refuses a truncated parquet naming it, leaving no dataset folder', async () => {
    const copy = tempDir('loupe-blink-');
    cpSync(HUB, copy, { recursive: true });
    const victim = join(copy, 'Visual_Correspondence', 'val-00000-of-00001.parquet');
    truncateSync(victim, Math.floor(readFileSync(victim).length / 2));
    await h.expectRefused(() => importBlink(copy), /^Visual_Correspondence\/val-00000-of-00001\.parquet is not a readable parquet file \(truncated or incomplete download\?\)/);
  });
});
