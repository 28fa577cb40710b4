/** Bad input gets a clear error naming the problem, and never costs data already saved. */
import { cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { DATASET_ID, MODEL_ID, makeLongDataset, tempDir } from '../helpers/fixtures.ts';
import { startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
const MODEL_DIR = join(RESOURCES_DIR, 'models', MODEL_ID);

beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

function failure(fn: () => unknown): LoupeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof LoupeError) return e;
    throw e;
  }
  throw new Error('expected a LoupeError');
}

async function runToEnd(datasetId: string, modelId = MODEL_ID, limit = 0) {
  const { response } = await import('../../src-main/engine/dispatcher.ts').then((d) =>
    d.dispatch(engine.handlers, { t: 'req', id: 1, method: 'jobs/start', params: { kind: 'encode-images', modelId, datasetId, spec: { limit } } }),
  );
  if (!response.ok) throw LoupeError.from(response.error);
  await engine.queue.drained();
  return engine.store.runs.get((response.result as { id: string }).id);
}

describe('model folders', () => {
  it('names what is missing or unknown', () => {
    const dir = tempDir();
    expect(failure(() => engine.importModel(dir)).message).toMatch(/missing config\.json/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'whisper' }));
    expect(failure(() => engine.importModel(dir))).toMatchObject({ code: 'bad-input', message: expect.stringMatching(/unsupported model_type "whisper"/) });
    cpSync(MODEL_DIR, dir, { recursive: true });
    rmSync(join(dir, 'onnx', 'decoder_model_merged.onnx'));
    expect(failure(() => engine.importModel(dir)).message).toMatch(/no onnx\/decoder_model_merged\.onnx/);
    writeFileSync(join(dir, 'config.json'), '{ "model_type": ');
    expect(failure(() => engine.importModel(dir)).message).toMatch(/config\.json is not valid JSON/);
  });

  it('fails a run on a corrupt ONNX file with the reason, leaving earlier runs intact', async () => {
    const good = await runToEnd(DATASET_ID, MODEL_ID, 3);
    expect(good.status).toBe('done');
    const dir = join(tempDir(), 'broken-llava');
    cpSync(MODEL_DIR, dir, { recursive: true });
    const file = join(dir, 'onnx', 'vision_encoder.onnx');
    writeFileSync(file, readFileSync(file).subarray(0, 5000));
    const broken = engine.importModel(dir);
    const run = await runToEnd(DATASET_ID, broken.id, 3);
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/protobuf|parse|load|model/i);
    expect(engine.store.runs.get(good.id).status).toBe('done');
    expect(engine.store.runs.results(good.id)).toHaveLength(3);
  });
});

describe('dataset folders', () => {
  it('reports malformed manifests field by field', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'x', items: [{ id: 'a', images: [], labels: [{ kind: 'blob' }] }] }));
    const e = failure(() => engine.importDataset(dir));
    expect(e.code).toBe('bad-input');
    expect(e.message).toMatch(/task/);
    expect(e.message).toMatch(/kind/);
    writeFileSync(join(dir, 'dataset.json'), '[1, 2');
    expect(failure(() => engine.importDataset(dir)).message).toMatch(/not valid JSON/);
  });

  it('names a missing image and refuses paths that leave the folder', () => {
    const dir = tempDir();
    const manifest = (img: string) => JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'x', task: 't', items: [{ id: 'a', images: [img] }] });
    writeFileSync(join(dir, 'dataset.json'), manifest('images/nope.png'));
    expect(failure(() => engine.importDataset(dir)).message).toMatch(/item a: image images\/nope\.png is missing/);
    writeFileSync(join(dir, 'dataset.json'), manifest('../../etc/passwd'));
    expect(failure(() => engine.importDataset(dir)).message).toMatch(/leaves the dataset folder/);
  });

  it('records a truncated image as a failed item and finishes the rest', async () => {
    const dir = makeLongDataset(10);
    truncateSync(join(dir, 'images', 'img-1.png'), 200);
    const dataset = engine.importDataset(dir);
    const run = await runToEnd(dataset.id);
    // Items cycle through 8 images, so img-1 backs items 1 and 9.
    // Some items failed: the run is partial, not done, and says why (issue 23 item 9).
    expect(run).toMatchObject({ status: 'partial', done: 8, failed: 2, error: expect.stringMatching(/^2 of 10 items failed: cannot decode image .*img-1\.png/) });
    const ledger = engine.store.runs.itemLedger(run.id);
    expect(ledger.filter((l) => l.status === 'failed').map((l) => l.itemId)).toEqual(['long-0001', 'long-0009']);
    const failedRow = engine.store.db.prepare(`SELECT error FROM run_items WHERE run_id = ? AND item_id = 'long-0001'`).get(run.id) as { error: string };
    expect(failedRow.error).toMatch(/cannot decode image .*img-1\.png/);
  });
});

describe('compute worker crash', () => {
  it('restarts the worker, tells clients, and finishes the run', async () => {
    const dir = makeLongDataset(120);
    const dataset = engine.importDataset(dir);
    const restarted: number[] = [];
    const off = engine.onEvent((name, p) => name === 'engine/restarted' && restarted.push((p as { restarts: number }).restarts));
    let killed = false;
    const offProgress = engine.onEvent((name, p) => {
      if (name === 'job/progress' && (p as { done: number }).done === 20 && !killed) {
        killed = true;
        void engine.compute.restart();
      }
    });
    const run = await runToEnd(dataset.id);
    off();
    offProgress();
    expect(killed).toBe(true);
    expect(restarted).toEqual([1]);
    expect(run).toMatchObject({ status: 'done', done: 120, failed: 0 });
  });
});

