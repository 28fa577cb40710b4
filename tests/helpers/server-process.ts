/** Starts `loupe serve` as a real child process and reads the URL it prints. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../../src-main/paths.ts';

export interface ServerProcess {
  url: string;
  origin: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** `bare`: serve() with a one-file static root (tests/helpers/serve-child.ts) — no built renderer needed. */
export async function startServer(dataDir: string, token = 'e2e-token', opts: { bare?: boolean } = {}): Promise<ServerProcess> {
  const args = opts.bare ? [join(REPO_ROOT, 'tests/helpers/serve-child.ts'), dataDir, token] : [join(REPO_ROOT, 'src-main/cli/loupe.ts'), 'serve', '--port', '0', '--token', token, '--data-dir', dataDir, '--provider', 'cpu'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`loupe serve exited with ${code}: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /Loupe workbench: (\S+)/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  return {
    url,
    origin: new URL(url).origin,
    child,
    stop: () =>
      new Promise<void>((r) => {
        if (child.exitCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}
