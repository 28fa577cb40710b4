/** Starts `loupe serve` as a real child process and reads the URL it prints. */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT } from '../../src-main/paths.ts';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import { connectNode } from './node-ws-transport.ts';

export interface ServerProcess {
  /** The first-visit URL (`/?token=…`), as printed. */
  url: string;
  token: string;
  origin: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** A fixed test token of 256 bits (serve refuses tokens under 128 bits). */
export const E2E_TOKEN = 'e2e-token-0123456789abcdefghijklmnopqrstuv';

/**
 * `bare`: serve() with a one-file static root (tests/helpers/serve-child.ts) — no built renderer needed;
 * `staticRoot` replaces that root, `env` is added to the child's environment (e.g. LOUPE_PORT).
 */
export async function startServer(dataDir: string, token = E2E_TOKEN, opts: { bare?: boolean; staticRoot?: string; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const args = opts.bare
    ? [join(REPO_ROOT, 'tests/helpers/serve-child.ts'), dataDir, token, ...(opts.staticRoot ? [opts.staticRoot] : [])]
    : [join(REPO_ROOT, 'src-main/cli/loupe.ts'), 'serve', '--port', '0', '--token', token, '--data-dir', dataDir, '--provider', 'cpu'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
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
    token,
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

/** A contract client on the server's WebSocket, authenticated with its token, from its own origin. */
export function connectEngine(server: ServerProcess): Promise<EngineClient> {
  return connectNode(`${server.origin.replace('http', 'ws')}/engine?token=${server.token}`, server.origin);
}
