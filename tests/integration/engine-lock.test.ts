/**
 * One engine per data folder (issue 23 item 8): two real processes. A second engine beside a
 * running server — `loupe resume` or another server — fails at once, naming the holder's pid and
 * command, and exits non-zero; a kill -9'd holder's lock is taken over; a closed one's is released.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const SERVE_CHILD = join(REPO_ROOT, 'tests/helpers/serve-child.ts');

/** A real server process (the engine + serve(), tests/helpers/serve-child.ts); resolves once it prints its URL. */
async function startHolder(dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SERVE_CHILD, dataDir, randomBytes(32).toString('hex')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => line.startsWith('Loupe workbench:') && resolve());
  });
  return child;
}

const exited = (child: ChildProcess) => new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => (child.exitCode !== null || child.signalCode !== null ? r({ code: child.exitCode, signal: child.signalCode }) : child.once('exit', (code, signal) => r({ code, signal }))));

const cli = (dataDir: string, ...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8', timeout: 120_000 });

describe('data folder lock', () => {
  it('refuses a second engine naming the holder; a kill -9 holder is taken over', async () => {
    const dataDir = tempDir();
    const holder = await startHolder(dataDir);
    try {
      const resume = cli(dataDir, 'resume');
      expect(resume.status).toBe(1);
      expect(resume.stderr).toContain(`loupe: conflict: the data folder ${dataDir} is in use by another Loupe engine (pid ${holder.pid} on ${hostname()}, running \``);
      expect(resume.stderr).toContain('serve-child.ts');
      expect(resume.stderr).toMatch(/ since \d{4}-\d\d-\d\dT/);
      expect(resume.stdout).toBe(''); // it stopped before resuming anything

      // A second server on the same folder fails the same way.
      const second = spawnSync(process.execPath, [SERVE_CHILD, dataDir, randomBytes(32).toString('hex')], { encoding: 'utf8', timeout: 120_000 });
      expect(second.status).not.toBe(0);
      expect(second.stderr).toContain(`in use by another Loupe engine (pid ${holder.pid} `);
    } finally {
      holder.kill('SIGKILL');
    }
    expect((await exited(holder)).signal).toBe('SIGKILL');

    // The kernel dropped the killed holder's lock: the next engine starts, and says whose it took over.
    const after = cli(dataDir, 'runs', '--json');
    expect(after.status).toBe(0);
    expect(after.stdout.trim()).toBe('[]');
    expect(after.stderr).toContain(`loupe: took over ${dataDir} from an engine that did not release it (pid ${holder.pid} on ${hostname()}`);
  });

  it('is released when the holder closes (SIGTERM): the next engine starts with no takeover', async () => {
    const dataDir = tempDir();
    const holder = await startHolder(dataDir);
    // serve-child registers its SIGTERM handler right after printing its URL: give it that moment.
    await new Promise((r) => setTimeout(r, 500));
    holder.kill('SIGTERM');
    expect((await exited(holder)).code).toBe(0);
    expect(existsSync(join(dataDir, 'engine.lock.json'))).toBe(false);
    const after = cli(dataDir, 'runs', '--json');
    expect(after.status).toBe(0);
    expect(after.stderr).not.toContain('took over');
  });
});
