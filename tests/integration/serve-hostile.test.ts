/**
 * `loupe serve` against hostile input from any page or socket (issue 23, items 1 and 2): a bad URL
 * from an `<img>` on another origin, and every kind of malformed WebSocket frame, must leave the
 * server answering. Runs the engine and serve() in a child process, so a crash is a dead process.
 */
import { type Socket, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';
import { tempDir } from '../helpers/fixtures.ts';

const TOKEN = 'hostile-token-0123456789abcdefghijklmn'; // ≥ 128 bits, as serve requires
let server: ServerProcess;
let port: number;

beforeAll(async () => {
  server = await startServer(tempDir(), TOKEN, { bare: true });
  port = Number(new URL(server.url).port);
}, 60_000);
afterAll(() => server?.stop());

/** Writes raw bytes to the server and returns what comes back until it closes or 1 s passes. */
function raw(bytes: Buffer | string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => resolve(out));
    s.on('close', () => resolve(out));
    s.write(bytes);
    setTimeout(() => s.destroy(), 1000);
  });
}

async function alive(): Promise<void> {
  expect(server.child.exitCode).toBeNull();
  const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
}

describe('serve survives hostile HTTP', () => {
  for (const path of ['/%zz', '/%', '//x:99999/', '/..%2f..%2fetc%2fpasswd', '/%E0%A4%A']) {
    it(`GET ${path} is a clear 4xx and the server keeps answering`, async () => {
      // Host and token are valid, so each path reaches the URL parser and the static route.
      const reply = await raw(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 4\d\d/);
      await alive();
    });
  }
});

/** Opens an authenticated WebSocket and hands back its raw TCP socket after the upgrade. */
function upgraded(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const key = Buffer.from('0123456789abcdef').toString('base64');
    s.write(`GET /engine?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    s.once('data', (d) => (d.toString().startsWith('HTTP/1.1 101') ? resolve(s) : reject(new Error(d.toString()))));
    s.on('error', () => undefined);
  });
}

/** A client frame: FIN + opcode, masked (or not) payload. */
function frame(opcode: number, payload: Buffer, o: { mask?: boolean; rsv?: number; fin?: boolean } = {}): Buffer {
  const mask = o.mask ?? true;
  const head = [((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const len = payload.length;
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  const key = Buffer.from([1, 2, 3, 4]);
  const body = mask ? Buffer.from(payload.map((b, i) => b ^ key[i % 4]!)) : payload;
  return Buffer.concat([Buffer.from(head), mask ? key : Buffer.alloc(0), body]);
}

describe('serve survives malformed WebSocket frames', () => {
  const cases: [string, () => Buffer][] = [
    ['invalid UTF-8 in a text frame', () => frame(0x1, Buffer.from([0xc3, 0x28, 0xa0, 0xa1]))],
    ['an unmasked client frame', () => frame(0x1, Buffer.from('{}'), { mask: false })],
    ['a reserved opcode', () => frame(0x3, Buffer.from('x'))],
    ['a reserved bit set', () => frame(0x1, Buffer.from('{}'), { rsv: 4 })],
    ['a close frame with an invalid code', () => frame(0x8, Buffer.from([0x03, 0xe7]))],
    ['a fragmented control frame', () => frame(0x9, Buffer.from('ping'), { fin: false })],
  ];
  for (const [name, make] of cases) {
    it(`${name}: the socket is closed, the server keeps answering`, async () => {
      const s = await upgraded();
      await new Promise<void>((resolve) => {
        s.on('close', () => resolve());
        s.write(make());
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 1500);
      });
      await alive();
    });
  }

  it('an over-size message (beyond maxPayload): closed with 1009, the server keeps answering', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine?token=${TOKEN}`, { origin: `http://127.0.0.1:${port}` });
    await new Promise((r) => ws.once('open', r));
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c) => resolve(c));
      ws.send('x'.repeat(2 * 1024 * 1024));
    });
    expect(code).toBe(1009);
    await alive();
  });
});
