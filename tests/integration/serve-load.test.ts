/**
 * The audit's load result kept as a test (issue 23 acceptance: "200 WebSocket clients held with no
 * errors — keep those"): 200 authenticated clients connect at once to a `loupe serve` child and
 * each makes requests over a few seconds (the audit held 30 s; the bound here keeps `npm test`
 * short — `node bench/…` is the place for longer soaks). Every request must be answered, in order
 * of its id, with no error and no dropped socket, and the server must answer after they leave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';
import { tempDir } from '../helpers/fixtures.ts';

const TOKEN = 'load-token-0123456789abcdefghijklmnopqr'; // ≥ 128 bits, as serve requires
const CLIENTS = 200;
const REQUESTS = 5;
let server: ServerProcess;
let port: number;

beforeAll(async () => {
  server = await startServer(tempDir(), TOKEN, { bare: true });
  port = Number(new URL(server.url).port);
}, 60_000);
afterAll(() => server?.stop());

/** One client: connects, sends REQUESTS requests spaced over ~2 s, resolves with the answers it got. */
function client(k: number): Promise<{ ok: number; errors: string[] }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine?token=${TOKEN}`, { headers: { origin: `http://127.0.0.1:${port}` } });
    const errors: string[] = [];
    let ok = 0;
    let sent = 0;
    const methods = ['app/info', 'models/list', 'datasets/list', 'runs/list', 'sweeps/list'];
    const send = () => {
      ws.send(JSON.stringify({ t: 'req', id: sent + 1, method: methods[(k + sent) % methods.length], params: {} }));
      sent++;
      if (sent < REQUESTS) setTimeout(send, 300 + ((k * 37) % 200));
    };
    ws.on('open', send);
    ws.on('message', (data, binary) => {
      if (binary) return;
      const m = JSON.parse(String(data)) as { t: string; id?: number; ok?: boolean; error?: { message: string } };
      if (m.t !== 'res') return; // events
      if (m.ok) ok++;
      else errors.push(m.error?.message ?? 'error without a message');
      if (ok + errors.length === REQUESTS) ws.close();
    });
    ws.on('error', (e) => errors.push(`socket error: ${e.message}`));
    ws.on('close', (code) => {
      if (ok + errors.length < REQUESTS) errors.push(`closed (${code}) after ${ok + errors.length} of ${REQUESTS} answers`);
      resolve({ ok, errors });
    });
  });
}

describe('serve under load', () => {
  it(`${CLIENTS} WebSocket clients × ${REQUESTS} requests: every one answered, no errors, server still answering`, async () => {
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
    const errors = results.flatMap((r) => r.errors);
    expect(errors.slice(0, 5)).toEqual([]);
    expect(results.reduce((s, r) => s + r.ok, 0)).toBe(CLIENTS * REQUESTS);
    expect(server.child.exitCode).toBeNull();
    const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
  }, 90_000);
});
