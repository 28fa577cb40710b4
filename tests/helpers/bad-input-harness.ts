/**
 * The standing bad-input corpus harness (issue 23): a table of cases, one row each — a name, how
 * the bad input is sent, the error code and a substring of the message it must get — checked for:
 *   1. a clear error with that stable code (never `internal`, never a stack trace),
 *   2. the engine still answers `app/info`,
 *   3. SQLite's `PRAGMA integrity_check` is ok,
 *   4. a reference dataset's items and labels, a bundled dataset's labels and a finished reference
 *      run (with its results) are exactly as before.
 *
 * To add cases: export a `BadInputCase[]` and pass it to `runBadInputCorpus` in a test file
 * (see tests/integration/bad-input-corpus.test.ts). A case sends either a contract call (through
 * the dispatcher, so params are schema-checked as over the wire) or an engine action (e.g.
 * `importModel`, which the CLI calls directly); `send` may be a function of the context to write
 * files into the case's own temp folder first. `env` sets limit settings for that case only.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, toErrorPayload } from '../../src-shared/contract/errors.ts';
import type { StoredLabel } from '../../src-shared/contract/methods.ts';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from './engine.ts';
import { DATASET_ID, MODEL_ID, tempDir } from './fixtures.ts';

export const INPUT_FIXTURES = join(REPO_ROOT, 'tests', 'fixtures', 'input-limits');

/** What a case may refer to: ids made by the harness, and a fresh temp folder of its own. */
export interface CorpusContext {
  engine: Engine;
  /** A new empty folder for this case. */
  dir: string;
  /** A writable user dataset with items `x` (8×6 JPEG) and `x-png` (5×4 PNG); cases may target it. */
  targetDatasetId: string;
  /** The reference user dataset (items `x`, `x-png` with labels); must stay unchanged. */
  refDatasetId: string;
  refLabelId: number;
  /** A bundled dataset and one of its ground-truth labels; must stay unchanged. */
  bundledDatasetId: string;
  bundledItemId: string;
  bundledLabelId: number;
  modelId: string;
  /** A finished run; must stay unchanged. */
  refRunId: string;
}

export type Send = { method: string; params: unknown } | { action: (engine: Engine) => unknown };

export interface BadInputCase {
  name: string;
  send: Send | ((ctx: CorpusContext) => Send | Promise<Send>);
  code: ErrorCode;
  /** A substring of the message (or a pattern it must match). */
  message: string | RegExp;
  /** Limit settings (environment variables) in force for this case only. */
  env?: Record<string, string>;
}

interface Snapshot {
  refItems: unknown;
  refLabels: unknown;
  bundledLabels: unknown;
  run: unknown;
}

/** Sends a case's input; returns the error payload it got, or null when it (wrongly) succeeded. */
async function sendCase(send: Send, engine: Engine): Promise<{ code: string; message: string } | null> {
  if ('method' in send) {
    const { response } = await dispatch(engine.handlers, { t: 'req', id: 1, method: send.method, params: send.params });
    return response.ok ? null : response.error;
  }
  try {
    await send.action(engine);
    return null;
  } catch (e) {
    // Anything but a LoupeError becomes `internal` here, as the dispatcher would report it.
    return toErrorPayload(e);
  }
}

export class CorpusHarness {
  ctx!: Omit<CorpusContext, 'dir'>;
  private before!: Snapshot;

  async start(): Promise<void> {
    const engine = await startTestEngine();
    const call = <T>(m: string, p: unknown) => callEngine<T>(engine, m, p);
    const mk = async (name: string) => {
      const ds = await call<{ id: string }>('datasets/create', { name, task: 'corpus' });
      await call('datasets/add-images', { datasetId: ds.id, folder: join(INPUT_FIXTURES, 'collide-a') });
      return ds.id;
    };
    const targetDatasetId = await mk('corpus target');
    const refDatasetId = await mk('corpus reference');
    const ref = await call<StoredLabel>('labels/put', { datasetId: refDatasetId, itemId: 'x', label: { kind: 'box', image: 0, box: [1, 1, 5, 4], text: 'ref' } });
    await call('labels/put', { datasetId: refDatasetId, itemId: 'x-png', label: { kind: 'point', image: 0, at: [2, 3], name: 'ref' } });
    await call('datasets/set-question', { datasetId: refDatasetId, itemId: 'x', prompt: 'What colour?', choices: ['red', 'blue'], answer: 'red' });
    const bundledItemId = (await call<{ items: { id: string }[] }>('datasets/items', { datasetId: DATASET_ID, offset: 0, limit: 1 })).items[0]!.id;
    const bundledLabelId = (await call<StoredLabel[]>('labels/list', { datasetId: DATASET_ID, itemId: bundledItemId }))[0]!.id;
    const run = await call<{ id: string }>('jobs/start', { kind: 'encode-images', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 2 } });
    await engine.queue.drained();
    this.ctx = { engine, targetDatasetId, refDatasetId, refLabelId: ref.id, bundledDatasetId: DATASET_ID, bundledItemId, bundledLabelId, modelId: MODEL_ID, refRunId: run.id };
    this.before = await this.snapshot();
    expect((this.before.run as { run: { status: string } }).run.status).toBe('done');
  }

  close(): void {
    this.ctx?.engine.close();
  }

  private async snapshot(): Promise<Snapshot> {
    const { engine, refDatasetId, bundledDatasetId, refRunId } = this.ctx;
    const call = <T>(m: string, p: unknown) => callEngine<T>(engine, m, p);
    const refItems = await call('datasets/items', { datasetId: refDatasetId, offset: 0, limit: 100 });
    const refLabels = [await call('labels/list', { datasetId: refDatasetId, itemId: 'x' }), await call('labels/list', { datasetId: refDatasetId, itemId: 'x-png' })];
    const bundled = await call<{ items: { id: string }[] }>('datasets/items', { datasetId: bundledDatasetId, offset: 0, limit: 8 });
    const bundledLabels = await Promise.all(bundled.items.map((i) => call('labels/list', { datasetId: bundledDatasetId, itemId: i.id })));
    const run = await call('runs/get', { runId: refRunId });
    return { refItems, refLabels, bundledLabels, run };
  }

  /** Runs one case and every after-check; throws with the case's name on any failure. */
  async check(c: BadInputCase): Promise<void> {
    const { engine } = this.ctx;
    const ctx: CorpusContext = { ...this.ctx, dir: tempDir('loupe-corpus-') };
    const saved = Object.fromEntries(Object.keys(c.env ?? {}).map((k) => [k, process.env[k]]));
    Object.assign(process.env, c.env ?? {});
    let error: { code: string; message: string } | null;
    try {
      error = await sendCase(typeof c.send === 'function' ? await c.send(ctx) : c.send, engine);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
    expect(error, `${c.name}: expected an error, the input was accepted`).not.toBeNull();
    expect({ code: error!.code }, `${c.name}: ${error!.message}`).toEqual({ code: c.code });
    if (typeof c.message === 'string') expect(error!.message, c.name).toContain(c.message);
    else expect(error!.message, c.name).toMatch(c.message);
    expect(error!.message, `${c.name}: a stack trace leaked`).not.toMatch(/\n\s+at .+:\d+:\d+/);
    const info = await callEngine<{ version: string }>(engine, 'app/info', {});
    expect(info.version).toBe('0.0.0-test');
    expect(engine.store.db.pragma('integrity_check', { simple: true }), c.name).toBe('ok');
    expect(await this.snapshot(), `${c.name}: reference data changed`).toEqual(this.before);
  }
}

/** Registers one test per case (a `describe` block with its own engine and references). */
export function runBadInputCorpus(title: string, cases: BadInputCase[], timeoutMs = 20_000): void {
  describe(title, () => {
    const harness = new CorpusHarness();
    beforeAll(() => harness.start(), 60_000);
    afterAll(() => harness.close());
    it('has unique case names', () => {
      expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    });
    it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => harness.check(c), timeoutMs);
  });
}

/** A dataset folder in `dir`: `dataset.json` from `manifest` (a string is written as is) and images copied from the fixtures. */
export function datasetFolder(dir: string, manifest: unknown, images: Record<string, string> = { 'x.png': 'collide-a/x.png' }): string {
  for (const [dest, src] of Object.entries(images)) cpSync(join(INPUT_FIXTURES, src), join(dir, dest));
  const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest);
  writeFileSync(join(dir, 'dataset.json'), text);
  return dir;
}

/** A manifest with the format header and the given items (each `{ id, images, labels? }`). */
export function manifestOf(items: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { format: 'loupe-dataset', version: 1, name: 'corpus', task: 't', items, ...extra };
}

/** A copy of the bundled model folder in `dir/model` with its JSON files edited by `edit(file, json)`. */
export function modelFolder(dir: string, edit: (file: string, json: Record<string, unknown>) => Record<string, unknown> | string | undefined): string {
  const src = join(REPO_ROOT, 'resources', 'models', MODEL_ID);
  const dest = join(dir, 'model');
  cpSync(src, dest, { recursive: true });
  for (const file of ['config.json', 'preprocessor_config.json']) {
    const out = edit(file, JSON.parse(readFileSync(join(dest, file), 'utf8')) as Record<string, unknown>);
    if (out !== undefined) writeFileSync(join(dest, file), typeof out === 'string' ? out : JSON.stringify(out));
  }
  return dest;
}
