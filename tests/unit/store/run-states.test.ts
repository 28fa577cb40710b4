/**
 * Run states from the item ledger (issue 23 item 9): done / partial / failed with a one-line
 * reason, the failed items page, retry resetting only failed items, and migration 4 converting
 * runs an older Loupe left 'done' with failed items. Expected strings are written out by hand.
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate, migrations } from '../../../src-main/store/migrations.ts';
import { RunsRepo } from '../../../src-main/store/repos/runs.ts';

function dbWithRun(items: number, version?: number) {
  const db = new Database(':memory:');
  migrate(db, version === undefined ? migrations : migrations.filter((m) => m.version <= version));
  db.prepare(`INSERT INTO models VALUES ('m', 'm', 'llava', '/m', 'h', 0, '{}', 't')`).run();
  db.prepare(`INSERT INTO datasets (id, name, task, path, hash, added_at) VALUES ('d', 'd', 'x', '/d', 'h', 't')`).run();
  const provenance = { modelHash: 'h', datasetHash: 'h', executionProvider: 'cpu', appVersion: '0' };
  const runs = new RunsRepo(db);
  const ids = Array.from({ length: items }, (_, i) => `item-${i}`);
  const run = runs.create({ kind: 'encode-images', name: 'r', modelId: 'm', datasetId: 'd', spec: {}, provenance }, ids);
  return { db, runs, run, ids };
}

const ok = (runs: RunsRepo, runId: string, itemId: string) => runs.completeItem(runId, itemId, { metrics: { x: 1 }, values: {} }, []);

describe('run states', () => {
  it('all items ok → done, no error', () => {
    const { runs, run, ids } = dbWithRun(3);
    for (const i of ids) ok(runs, run.id, i);
    expect(runs.finish(run.id)).toMatchObject({ status: 'done', done: 3, failed: 0, error: null });
  });

  it('some failed → partial, the commonest reason first, with the count of other reasons', () => {
    const { runs, run } = dbWithRun(5);
    ok(runs, run.id, 'item-0');
    ok(runs, run.id, 'item-3');
    runs.failItem(run.id, 'item-1', 'image x.png is not a PNG');
    runs.failItem(run.id, 'item-2', 'vision layer 3 not found');
    runs.failItem(run.id, 'item-4', 'vision layer 3 not found');
    expect(runs.finish(run.id)).toMatchObject({ status: 'partial', done: 2, failed: 3, error: '3 of 5 items failed: vision layer 3 not found (and 1 other reason)' });
    expect(runs.failures(run.id)).toEqual({
      total: 3,
      items: [
        { itemId: 'item-1', error: 'image x.png is not a PNG', attempts: 1 },
        { itemId: 'item-2', error: 'vision layer 3 not found', attempts: 1 },
        { itemId: 'item-4', error: 'vision layer 3 not found', attempts: 1 },
      ],
    });
    expect(runs.failures(run.id, 1, 1)).toEqual({ total: 3, items: [{ itemId: 'item-2', error: 'vision layer 3 not found', attempts: 1 }] });
  });

  it('every item failed → failed, "N of N items failed: <reason>"', () => {
    const { runs, run, ids } = dbWithRun(96);
    for (const i of ids) runs.failItem(run.id, i, 'vision layer 3 not found in model.onnx');
    expect(runs.finish(run.id)).toMatchObject({ status: 'failed', done: 0, failed: 96, error: '96 of 96 items failed: vision layer 3 not found in model.onnx' });
  });

  it('resetFailed puts only failed items back to pending, keeping their attempt counts', () => {
    const { runs, run } = dbWithRun(3);
    ok(runs, run.id, 'item-0');
    runs.failItem(run.id, 'item-1', 'boom');
    runs.failItem(run.id, 'item-2', 'boom');
    runs.finish(run.id);
    expect(runs.resetFailed(run.id)).toBe(2);
    expect(runs.pendingItems(run.id)).toEqual(['item-1', 'item-2']);
    expect(runs.itemLedger(run.id).map((l) => [l.itemId, l.status, l.attempts])).toEqual([
      ['item-0', 'done', 1],
      ['item-1', 'pending', 1],
      ['item-2', 'pending', 1],
    ]);
  });

  it('migration 4 turns old "done" runs with failed items into partial/failed with a reason', () => {
    const partial = dbWithRun(4, 3);
    ok(partial.runs, partial.run.id, 'item-0');
    for (const i of ['item-1', 'item-2', 'item-3']) partial.runs.failItem(partial.run.id, i, 'decoder returned NaN');
    partial.runs.setStatus(partial.run.id, 'done');
    migrate(partial.db);
    expect(partial.runs.get(partial.run.id)).toMatchObject({ status: 'partial', error: '3 of 4 items failed: decoder returned NaN' });

    const failed = dbWithRun(2, 3);
    failed.runs.failItem(failed.run.id, 'item-0', 'a');
    failed.runs.failItem(failed.run.id, 'item-1', 'b');
    failed.runs.setStatus(failed.run.id, 'done');
    const clean = failed.runs.create({ kind: 'encode-images', name: 'ok', modelId: 'm', datasetId: 'd', spec: {}, provenance: failed.run.provenance }, ['a']);
    ok(failed.runs, clean.id, 'a');
    failed.runs.setStatus(clean.id, 'done');
    migrate(failed.db);
    expect(failed.runs.get(failed.run.id)).toMatchObject({ status: 'failed', error: '2 of 2 items failed: a (and 1 other reason)' });
    expect(failed.runs.get(clean.id)).toMatchObject({ status: 'done', error: null });
  });
});
