/** Killing the process mid-sweep and restarting resumes it; results equal an uninterrupted sweep. */
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const ARGS = ['sweep', '--json', '--model', 'micro-llava', '--dataset', 'relation', '--limit', '16', '--provider', 'cpu'];

/** Per run (in sweep order) and item: metrics, values and the stored feature blobs. */
function sweepResults(dataDir: string) {
  const db = new Database(join(dataDir, 'loupe.sqlite'), { readonly: true });
  const runs = db.prepare('SELECT id, name, status FROM runs WHERE sweep_id IS NOT NULL ORDER BY created_at, rowid').all() as { id: string; name: string; status: string }[];
  const rows = runs.map((r) => ({
    name: r.name,
    status: r.status,
    results: db.prepare(`SELECT r.item_id, r.metrics, r.value, (SELECT group_concat(t.name || ':' || t.blob) FROM tensors t WHERE t.run_id = r.run_id AND t.item_id = r.item_id) AS blobs FROM results r WHERE r.run_id = ? ORDER BY r.item_id`).all(r.id),
  }));
  db.close();
  return rows;
}

describe('kill -9 mid-sweep, then resume', () => {
  it('finishes every run of the sweep with results equal to an uninterrupted sweep', async () => {
    const reference = tempDir();
    const done = spawnSync(process.execPath, [CLI, ...ARGS, '--data-dir', reference], { encoding: 'utf8' });
    expect(done.status).toBe(0);

    const dataDir = tempDir();
    const child = spawn(process.execPath, [CLI, ...ARGS, '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, sig) => r(sig)));
    let progress = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      if ((JSON.parse(line) as { event?: string }).event === 'job/progress' && ++progress === 20) {
        child.kill('SIGKILL'); // mid-way through the second of the sweep's runs
        break;
      }
    }
    expect(await exited).toBe('SIGKILL');
    expect(sweepResults(dataDir).some((r) => r.status !== 'done')).toBe(true);

    const resumed = spawnSync(process.execPath, [CLI, 'resume', '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8' });
    expect(resumed.status).toBe(0);
    const after = sweepResults(dataDir);
    expect(after.map((r) => r.status)).toEqual(after.map(() => 'done'));
    expect(after).toEqual(sweepResults(reference));
  });
});
