/**
 * `rediss://`: a Redis that terminates TLS (self-signed certificate made here with openssl), a worker
 * and `loupe run --queue rediss://…` as child processes. Trusting the certificate
 * (NODE_EXTRA_CA_CERTS), the run completes on the worker; without it the submitter refuses the
 * connection, because certificates are checked. The password never appears in any output.
 */
import Database from 'better-sqlite3';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const PASSWORD = 'tls-pw-5d1e';
let dir = '';
let port = 0;
let redis: ChildProcess;
let worker: ChildProcess;
const url = () => `rediss://:${PASSWORD}@localhost:${port}`;

beforeAll(async () => {
  dir = tempDir('loupe-tls-');
  const cert = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  expect(cert.status, cert.stderr).toBe(0);
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  redis = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', join(dir, 'cert.pem'), '--tls-key-file', join(dir, 'key.pem'), '--tls-ca-cert-file', join(dir, 'cert.pem'), '--tls-auth-clients', 'no', '--requirepass', PASSWORD, '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  worker = spawn(process.execPath, [CLI, 'worker', '--queue', url(), '--data-dir', tempDir('loupe-tls-worker-'), '--provider', 'cpu', '--name', 'tls-worker'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
  let stderr = '';
  worker.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker not ready: ${stderr}`)), 60_000);
    createInterface({ input: worker.stdout! }).on('line', (l) => {
      if (l.includes('"cluster/worker-ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  expect(stderr).not.toContain(PASSWORD);
});

afterAll(() => {
  worker?.kill('SIGKILL');
  redis?.kill('SIGKILL');
});

const run = (env: NodeJS.ProcessEnv, dataDir: string) =>
  spawnSync(process.execPath, [CLI, 'run', '--model', 'micro-llava', '--dataset', 'colour-at-point', '--kind', 'encode-images', '--limit', '2', '--provider', 'cpu', '--queue', url(), '--store', join(dir, 'store'), '--data-dir', dataDir], { encoding: 'utf8', env });

describe('rediss:// queue', () => {
  it('runs on a worker over TLS when the certificate is trusted; provenance shows the URL without its password', () => {
    const dataDir = tempDir('loupe-tls-submit-');
    const r = run({ ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') }, dataDir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    const db = new Database(join(dataDir, 'loupe.sqlite'), { readonly: true });
    const row = db.prepare('SELECT status, provenance FROM runs').get() as { status: string; provenance: string };
    db.close();
    expect(row.status).toBe('done');
    expect(JSON.parse(row.provenance).cluster).toMatchObject({ queue: `rediss://:***@localhost:${port}`, workers: [{ worker: 'tls-worker', ep: 'cpu', items: 2 }] });
  });

  it('refuses a certificate it cannot verify, naming the queue without the password', () => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const r = run(env, tempDir('loupe-tls-untrusted-'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot reach queue rediss://:\\*\\*\\*@localhost:${port}: .*self[- ]signed certificate`));
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});
