/**
 * `loupe serve` against other pages and processes (issue 23, server hardening): the Host allow-list
 * (DNS rebinding), the Origin rule, the token → HttpOnly cookie hand-over, the 128-bit token floor,
 * message size limits, symlinks out of the served folder, and $LOUPE_PORT. Runs serve() in a child
 * process (tests/helpers/serve-child.ts, which reads its settings as the CLI does) and the real CLI
 * for refusals that happen before anything starts.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';

const TOKEN = 'security-test-0123456789abcdefghijklmnopq';
const LIMIT = 4096;
let server: ServerProcess;
let port: number;
let self: string;
let cookieName: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  // The served folder: a page, a link inside it, and links leading out of it.
  const root = tempDir('loupe-static-');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'index.html'), '<!doctype html><title>loupe</title>');
  symlinkSync(join(root, 'index.html'), join(root, 'alias.html'));
  symlinkSync('/etc/passwd', join(root, 'passwd.html'));
  symlinkSync('/etc', join(root, 'etc'));
  port = await freePort();
  server = await startServer(tempDir(), TOKEN, { bare: true, staticRoot: root, env: { LOUPE_PORT: String(port), LOUPE_MAX_MESSAGE_BYTES: String(LIMIT) } });
  self = `127.0.0.1:${port}`;
  cookieName = `loupe_token_${port}`;
}, 60_000);
afterAll(() => server?.stop());

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** An HTTP request with full control of Host (fetch may not set it). */
function http(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: self, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Opens a WebSocket to /engine and says whether it opened or which status refused it. */
function wsOutcome(query: string, o: { origin?: string; host?: string; cookie?: string } = {}): Promise<number | 'open'> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (o.host) headers.host = o.host;
    if (o.cookie) headers.cookie = o.cookie;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine${query}`, { headers, ...(o.origin && { origin: o.origin }) });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
    ws.once('error', reject);
  });
}

const bearer = { authorization: `Bearer ${TOKEN}` };

async function alive(): Promise<void> {
  expect(server.child.exitCode).toBeNull();
  expect((await http('GET', '/', bearer)).status).toBe(200);
}

describe('$LOUPE_PORT', () => {
  it('is the port serve binds when --port is not given', () => {
    expect(server.url).toBe(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  });

  it('a bad LOUPE_PORT stops the real CLI before anything starts, naming the variable', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'src-main/cli/loupe.ts'), 'serve', '--data-dir', tempDir()], { env: { ...process.env, LOUPE_PORT: 'http' }, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/LOUPE_PORT must be a port number from 0 \(any free port\) to 65535, got "http"/);
  });
});

describe('tokens under 128 bits are refused', () => {
  it('`loupe serve --token a` exits 1 with a message naming the requirement', () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'src-main/cli/loupe.ts'), 'serve', '--token', 'a', '--data-dir', tempDir()], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--token refused: the token has 1 character .*at least 128 bits/);
    expect(r.stdout).not.toMatch(/Loupe workbench/);
  });
});

describe('Host allow-list (DNS rebinding)', () => {
  it('answers requests naming this server, 421 for any other Host, even with the token', async () => {
    for (const h of [self, `localhost:${port}`, `[::1]:${port}`]) expect((await http('GET', '/', { ...bearer, host: h })).status, h).toBe(200);
    for (const h of [`evil.example:${port}`, 'evil.example', '127.0.0.1', `127.0.0.1:${port + 1}`, `rebind.127.0.0.1.nip.io:${port}`]) {
      const r = await http('GET', '/', { ...bearer, host: h });
      expect(r.status, h).toBe(421);
      expect(r.body).toMatch(/does not name this server/);
    }
    expect((await http('POST', '/api/rpc', { ...bearer, host: `evil.example:${port}`, 'content-type': 'application/json' }, '{"method":"app/info","params":{}}')).status).toBe(421);
    await alive();
  });

  it('refuses a WebSocket upgrade with a foreign Host (421)', async () => {
    expect(await wsOutcome(`?token=${TOKEN}`, { host: `evil.example:${port}`, origin: `http://evil.example:${port}` })).toBe(421);
    expect(await wsOutcome(`?token=${TOKEN}`, { host: self })).toBe('open');
  });
});

describe('Origin rule', () => {
  it('refuses cross-origin WebSockets and RPC even with the token (403)', async () => {
    for (const origin of ['https://evil.example', `http://127.0.0.1:${port + 1}`, 'null', `https://${self}`]) {
      expect(await wsOutcome(`?token=${TOKEN}`, { origin }), origin).toBe(403);
      expect((await http('POST', '/api/rpc', { ...bearer, origin, 'content-type': 'application/json' }, '{"method":"app/info","params":{}}')).status, origin).toBe(403);
    }
    expect(await wsOutcome(`?token=${TOKEN}`, { origin: `http://${self}` })).toBe('open');
  });
});

describe('token → cookie hand-over', () => {
  it('the first load sets an HttpOnly SameSite=Strict cookie and redirects to the same address without the token', async () => {
    const r = await http('GET', `/?view=runs&token=${TOKEN}`, { accept: 'text/html' });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/?view=runs');
    expect(r.headers['set-cookie']).toEqual([`${cookieName}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`]);
    const deep = await http('GET', `/assets/x.js?token=${TOKEN}`);
    expect(deep.headers.location).toBe('/assets/x.js');
  });

  it('a redirect never leaves the origin (protocol-relative paths are collapsed)', async () => {
    const r = await http('GET', `//evil.example/?token=${TOKEN}`);
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
  });

  it('the cookie then authenticates pages, the engine socket (with our Origin) and RPC', async () => {
    const cookie = `other=1; ${cookieName}=${TOKEN}`;
    const page = await http('GET', '/', { cookie });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>loupe</title>');
    expect(await wsOutcome('', { cookie, origin: `http://${self}` })).toBe('open');
    const rpc = await http('POST', '/api/rpc', { cookie, origin: `http://${self}`, 'content-type': 'application/json' }, '{"method":"app/info","params":{}}');
    expect(rpc.status).toBe(200);
    expect(JSON.parse(rpc.body)).toMatchObject({ ok: true, result: { version: '0.0.0-test' } });
  });

  it('a cookie alone is not enough where a browser would send an Origin (WebSocket, POST)', async () => {
    const cookie = `${cookieName}=${TOKEN}`;
    expect(await wsOutcome('', { cookie })).toBe(403);
    expect((await http('POST', '/api/rpc', { cookie, 'content-type': 'application/json' }, '{"method":"app/info","params":{}}')).status).toBe(403);
  });

  it('a wrong cookie or token is refused; browsers get a page that says how to get a valid URL', async () => {
    const wrong = `${cookieName}=${TOKEN.replace(/q$/, 'r')}`;
    const page = await http('GET', '/', { cookie: wrong, accept: 'text/html' });
    expect(page.status).toBe(401);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/Open the exact URL that <code>loupe serve<\/code>/);
    expect(page.body).toMatch(/openssl rand -hex 32/);
    expect(await wsOutcome('', { cookie: wrong, origin: `http://${self}` })).toBe(403);
    expect((await http('POST', '/api/rpc', { cookie: wrong, origin: `http://${self}`, 'content-type': 'application/json' }, '{}')).status).toBe(401);

    const badLink = await http('GET', '/?token=not-this-servers-token-0123456789abcdef', { accept: 'text/html' });
    expect(badLink.status).toBe(401);
    expect(badLink.headers['set-cookie']).toBeUndefined();
    expect(badLink.body).toMatch(/not the one this server was started with/);

    const none = await http('GET', '/');
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).error.message).toMatch(/missing or wrong token/);
    expect(await wsOutcome('', { origin: `http://${self}` })).toBe(403);
  });
});

describe('message size limits ($LOUPE_MAX_MESSAGE_BYTES = 4096 here)', () => {
  it('an over-size WebSocket message closes that socket with 1009; the server and other sockets go on', async () => {
    const other = new WebSocket(`ws://127.0.0.1:${port}/engine?token=${TOKEN}`, { origin: `http://${self}` });
    await new Promise((r) => other.once('open', r));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine?token=${TOKEN}`, { origin: `http://${self}` });
    await new Promise((r) => ws.once('open', r));
    const code = await new Promise<number>((resolve) => {
      ws.once('close', (c) => resolve(c));
      ws.send(JSON.stringify({ t: 'req', id: 1, method: 'app/info', params: { pad: 'x'.repeat(LIMIT) } }));
    });
    expect(code).toBe(1009);
    const reply = new Promise<{ id: number; ok: boolean }>((r) => other.once('message', (d) => r(JSON.parse(d.toString()))));
    other.send(JSON.stringify({ t: 'req', id: 7, method: 'app/info', params: {} }));
    expect(await reply).toMatchObject({ id: 7, ok: true });
    other.close();
    await alive();
  });

  it('an over-size HTTP body is a 413 naming the limit and its setting', async () => {
    const r = await http('POST', '/api/rpc', { ...bearer, 'content-type': 'application/json' }, JSON.stringify({ method: 'app/info', params: { pad: 'x'.repeat(LIMIT) } }));
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.message).toMatch(/exceeds the limit of 4096 bytes \(set LOUPE_MAX_MESSAGE_BYTES to raise it\)/);
    const under = await http('POST', '/api/rpc', { ...bearer, 'content-type': 'application/json' }, JSON.stringify({ method: 'app/info', params: {} }));
    expect(under.status).toBe(200);
    await alive();
  });
});

describe('symlinks out of the served folder', () => {
  it('are not followed (404); a link that stays inside still works', async () => {
    expect((await http('GET', '/passwd.html', bearer)).status).toBe(404);
    expect((await http('GET', '/etc/passwd', bearer)).status).toBe(404);
    expect((await http('GET', '/etc/hostname', bearer)).status).toBe(404);
    const inside = await http('GET', '/alias.html', bearer);
    expect(inside.status).toBe(200);
    expect(inside.body).toContain('<title>loupe</title>');
  });
});
