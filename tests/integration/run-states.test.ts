/**
 * Failure is visible (issue 23 item 9): a run whose items fail ends `partial` or `failed` with a
 * reason, `runs/get` lists the failed items, `runs/retry-failed` re-runs only those, and the CLI
 * prints the reasons and exits 1. Items fail here because their image file is removed after the
 * dataset was imported; putting it back is the fix the retry picks up. The retried run is compared
 * with an uninterrupted run of the same dataset (metrics and content-addressed tensor blobs).
 */
import { spawnSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunFailure, RunInfo, RunResult } from '../../src-shared/contract/domain.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { MODEL_ID, makeLongDataset, tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
type RunGet = { run: RunInfo; results: RunResult[]; failures: { total: number; items: RunFailure[] } };

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(async () => {
  await engine?.close();
});

async function runToEnd(datasetId: string): Promise<RunGet> {
  const run = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'encode-images', modelId: MODEL_ID, datasetId, spec: {} });
  await engine.queue.drained();
  return callEngine<RunGet>(engine, 'runs/get', { runId: run.id });
}

const comparable = (r: RunGet) => r.results.map((x) => [x.itemId, x.metrics, x.tensors.map((t) => [t.name, t.shape, t.blob])]);

describe('run states', () => {
  it('some items fail → partial with per-item reasons; retry-failed re-runs only those and ends done, equal to a clean run', async () => {
    const folder = makeLongDataset(6); // items long-0000…0005 cycle images img-0…img-7: img-1 is item long-0001's only
    const dataset = engine.importDataset(folder);
    const clean = await runToEnd(dataset.id);
    expect(clean.run).toMatchObject({ status: 'done', done: 6, failed: 0, error: null });

    const image = join(folder, 'images/img-1.png');
    renameSync(image, `${image}.away`);
    const partial = await runToEnd(dataset.id);
    expect(partial.run).toMatchObject({ status: 'partial', total: 6, done: 5, failed: 1 });
    expect(partial.run.error).toMatch(/^1 of 6 items failed: .*img-1\.png/);
    expect(partial.failures.total).toBe(1);
    expect(partial.failures.items).toEqual([{ itemId: 'long-0001', error: expect.stringContaining('img-1.png'), attempts: 1 }]);
    expect(partial.run.error).toBe(`1 of 6 items failed: ${partial.failures.items[0]!.error}`);
    const before = engine.store.runs.itemLedger(partial.run.id);

    renameSync(`${image}.away`, image);
    const retried = await callEngine<RunInfo>(engine, 'runs/retry-failed', { runId: partial.run.id });
    expect(retried.status).toBe('queued');
    await engine.queue.drained();
    const after = await callEngine<RunGet>(engine, 'runs/get', { runId: partial.run.id });
    expect(after.run).toMatchObject({ status: 'done', done: 6, failed: 0, error: null });
    expect(after.failures).toEqual({ total: 0, items: [] });
    // Only the failed item ran again (a second attempt); the others kept their first finish.
    const ledger = engine.store.runs.itemLedger(partial.run.id);
    expect(ledger.map((l) => [l.itemId, l.attempts])).toEqual(before.map((l) => [l.itemId, l.itemId === 'long-0001' ? 2 : 1]));
    for (const l of ledger.filter((x) => x.itemId !== 'long-0001')) expect(l.finishedAt).toBe(before.find((b) => b.itemId === l.itemId)!.finishedAt);
    expect(comparable(after)).toEqual(comparable(clean));

    await expect(callEngine(engine, 'runs/retry-failed', { runId: partial.run.id })).rejects.toThrow(`run ${partial.run.id} is done: nothing to retry (no item failed)`);
  });

  it('every item fails → failed, "3 of 3 items failed: <reason>"; failures page with offset/limit', async () => {
    const folder = makeLongDataset(3);
    const dataset = engine.importDataset(folder);
    for (const i of [0, 1, 2]) renameSync(join(folder, `images/img-${i}.png`), join(folder, `images/img-${i}.away`));
    const r = await runToEnd(dataset.id);
    expect(r.run).toMatchObject({ status: 'failed', done: 0, failed: 3 });
    expect(r.run.error).toMatch(/^3 of 3 items failed: .*img-0\.png.* \(and 2 other reasons\)$/);
    const page = await callEngine<RunGet>(engine, 'runs/get', { runId: r.run.id, failuresOffset: 1, failuresLimit: 1 });
    expect(page.failures.total).toBe(3);
    expect(page.failures.items.map((f) => f.itemId)).toEqual(['long-0001']);
  });

  it('the CLI prints the failed items with their reasons and exits 1; resume --retry-failed exits 0 once fixed', () => {
    const dataDir = tempDir();
    const folder = makeLongDataset(4);
    const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--json', '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8', timeout: 240_000 });
    const imported = cli('import-dataset', folder);
    expect(imported.status).toBe(0);
    const datasetId = (JSON.parse(imported.stdout.trim().split('\n').at(-1)!) as { id: string }).id;
    renameSync(join(folder, 'images/img-2.png'), join(folder, 'images/img-2.away'));

    const run = cli('run', '--model', MODEL_ID, '--dataset', datasetId);
    expect(run.status).toBe(1);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const result = lines.find((l) => 'result' in l)!.result as RunInfo;
    expect(result).toMatchObject({ status: 'partial', done: 3, failed: 1 });
    const failed = lines.find((l) => 'runFailures' in l)!.runFailures as { runId: string; total: number; items: RunFailure[] };
    expect(failed).toMatchObject({ runId: result.id, status: 'partial', error: result.error, total: 1, items: [{ itemId: 'long-0002', error: expect.stringContaining('img-2.png') }] });
    expect(run.stderr).toContain(`loupe: run ${result.id} is partial: 1 of 4 items failed: `);
    expect(run.stderr).toContain(`  long-0002: ${failed.items[0]!.error}\n`);
    expect(run.stderr).toContain(`loupe resume --retry-failed --run ${result.id}`);

    renameSync(join(folder, 'images/img-2.away'), join(folder, 'images/img-2.png'));
    const resumed = cli('resume', '--retry-failed');
    expect(resumed.status).toBe(0);
    const runs = (JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { result: RunInfo[] }).result;
    expect(runs.find((r) => r.id === result.id)).toMatchObject({ status: 'done', done: 4, failed: 0, error: null });
  });
});
