/**
 * Killing the process mid-run and restarting resumes without redoing finished items and
 * without losing saved results; the resumed run equals an uninterrupted one.
 */
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { MODEL_ID, makeLongDataset, tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const N = 400;

type Ledger = { item_id: string; status: string; attempts: number; finished_at: string | null };
type Result = { item_id: string; metrics: string; blob: string | null };

function snapshot(dataDir: string) {
  const db = new Database(join(dataDir, 'loupe.sqlite'), { readonly: true });
  const run = db.prepare('SELECT id, status FROM runs').get() as { id: string; status: string };
  const ledger = db.prepare('SELECT item_id, status, attempts, finished_at FROM run_items ORDER BY ord').all() as Ledger[];
  const results = db
    .prepare('SELECT r.item_id, r.metrics, t.blob FROM results r LEFT JOIN tensors t ON t.run_id = r.run_id AND t.item_id = r.item_id ORDER BY r.item_id')
    .all() as Result[];
  db.close();
  return { run, ledger, results };
}

function cli(dataDir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loupe ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

describe('kill -9 mid-run, then resume', () => {
  it('finishes the run without redoing or losing items, equal to an uninterrupted run', async () => {
    const dataset = makeLongDataset(N);

    const reference = tempDir();
    cli(reference, 'run', '--model', MODEL_ID, '--dataset', dataset);
    const ref = snapshot(reference);
    expect(ref.run.status).toBe('done');
    expect(ref.results).toHaveLength(N);

    const dataDir = tempDir();
    const child = spawn(process.execPath, [CLI, 'run', '--json', '--model', MODEL_ID, '--dataset', dataset, '--data-dir', dataDir, '--provider', 'cpu'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
    for await (const line of createInterface({ input: child.stdout! })) {
      const msg = JSON.parse(line) as { event?: string; done?: number };
      if (msg.event === 'job/progress' && msg.done! >= 25) {
        child.kill('SIGKILL');
        break;
      }
    }
    expect(await exited).toBe('SIGKILL');

    const before = snapshot(dataDir);
    const doneBefore = before.ledger.filter((l) => l.status === 'done');
    expect(before.run.status).toBe('running');
    expect(doneBefore.length).toBeGreaterThanOrEqual(25);
    expect(doneBefore.length).toBeLessThan(N);
    // Every item marked done has its result and tensor (committed together).
    expect(before.results.map((r) => r.item_id).sort()).toEqual(doneBefore.map((l) => l.item_id).sort());

    cli(dataDir, 'resume');
    const after = snapshot(dataDir);
    expect(after.run.status).toBe('done');
    expect(after.ledger.every((l) => l.status === 'done' && l.attempts === 1)).toBe(true);
    for (const d of doneBefore) expect(after.ledger.find((l) => l.item_id === d.item_id)!.finished_at).toBe(d.finished_at);

    // Same metrics and byte-identical stored tensors as the uninterrupted run.
    expect(after.results.map((r) => [r.item_id, r.metrics, r.blob])).toEqual(ref.results.map((r) => [r.item_id, r.metrics, r.blob]));
  });
});
