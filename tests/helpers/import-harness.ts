/**
 * The benchmark importers' test harness: an in-process engine (started before the file's tests,
 * closed after) recording its `import/progress` events, `datasets/import-benchmark` for one
 * format, the imported manifest, and the check that a refused import leaves nothing behind.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { DatasetManifest } from '../../src-shared/dataset/format.ts';
import { callEngine, startTestEngine } from './engine.ts';

/** What `datasets/import-benchmark` answers (the fields the tests read). */
export interface Imported {
  dataset: { id: string; path: string; itemCount: number; task: string };
  items: number;
  labels: number;
  warnings: string[];
}

/** An `import/progress` event. */
export interface ImportProgress {
  format: string;
  phase: string;
  done: number;
  total: number | null;
}

export interface ImportHarness {
  /** The engine (set once the file's beforeAll has run). */
  readonly engine: Engine;
  /** Every `import/progress` event since the engine started; tests empty it (`events.length = 0`) before the import they watch. */
  readonly events: ImportProgress[];
  call<T>(method: string, params: unknown): Promise<T>;
  /** `datasets/import-benchmark` of the harness's format. */
  importBenchmark(path: string, options?: Record<string, unknown>): Promise<Imported>;
  /** The dataset.json an import wrote, parsed. */
  manifestOf(r: Imported): DatasetManifest;
  /** The entries of <data>/datasets/, sorted ([] before the folder exists). */
  datasetFolders(): string[];
  /**
   * Runs `attempt` (an import), which must be refused with a bad-input error whose message matches
   * `message` (a string: contains it), and leave nothing behind: <data>/datasets/ holds the same
   * entries as before and no .import- staging folder, and datasets/list answers as before.
   */
  expectRefused(attempt: () => Promise<unknown>, message: string | RegExp, what?: string): Promise<void>;
}

/** Registers beforeAll/afterAll that start and close the engine; call at a test file's top level. */
export function importHarness(format: string): ImportHarness {
  let engine: Engine | undefined;
  const events: ImportProgress[] = [];
  beforeAll(async () => {
    engine = await startTestEngine();
    engine.onEvent((name, payload) => {
      if (name === 'import/progress') events.push(payload as ImportProgress);
    });
  });
  afterAll(() => engine?.close());

  const started = (): Engine => {
    if (!engine) throw new Error('the import harness engine is not started yet (use it inside a test)');
    return engine;
  };
  const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(started(), method, params);
  const datasetFolders = (): string[] => {
    const dir = join(started().options.dataDir, 'datasets');
    return existsSync(dir) ? readdirSync(dir).sort() : [];
  };
  return {
    get engine() {
      return started();
    },
    events,
    call,
    importBenchmark: (path, options = {}) => call<Imported>('datasets/import-benchmark', { format, path, options }),
    manifestOf: (r) => DatasetManifest.parse(JSON.parse(readFileSync(join(r.dataset.path, 'dataset.json'), 'utf8'))),
    datasetFolders,
    async expectRefused(attempt, message, what) {
      const folders = datasetFolders();
      const listed = await call<unknown[]>('datasets/list', {});
      const err = await attempt().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, what).toMatchObject({ code: 'bad-input' });
      expect((err as Error).message, what).toMatch(message);
      expect(datasetFolders(), what).toEqual(folders);
      expect(
        datasetFolders().filter((n) => n.startsWith('.import-')),
        what,
      ).toEqual([]);
      expect(await call<unknown[]>('datasets/list', {}), what).toEqual(listed);
    },
  };
}
