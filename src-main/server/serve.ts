/**
 * `loupe serve`: the same engine contract over HTTP + WebSocket on 127.0.0.1, so the
 * unchanged renderer runs in any browser (tests here; a remote GPU box for users).
 * JSON control messages are text frames; tensors are binary frames (never JSON).
 *
 * Every request passes, in order: a parseable URL (400), a Host header naming this server (421,
 * DNS rebinding), an allowed Origin when one is sent (403), and a credential (401): the token as
 * `Authorization: Bearer`, as `?token=` or as the session cookie the first page load turns it into.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { realpathSync } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { encodeTensorFrame } from '../../src-shared/contract/wire.ts';
import { dispatch } from '../engine/dispatcher.ts';
import type { Engine } from '../engine/engine.ts';
import { type AuthFailure, authPage } from './auth-page.ts';
import { allowedHosts, cookieValues, hostAllowed, hostForUrl, originAllowed, sessionCookie, sessionCookieName, tokenMatches, tokenWeakness } from './security.ts';
import { DEFAULT_MAX_MESSAGE_BYTES } from './serve-options.ts';
import { serveStatic } from './static.ts';

export interface ServeOptions {
  host: string;
  port: number;
  token: string;
  staticRoot: string;
  /** More names the Host header may carry (`--allow-host`), beyond loopback and `host`. */
  allowHosts?: readonly string[];
  /** Largest HTTP request body and WebSocket message ($LOUPE_MAX_MESSAGE_BYTES); default 1 MiB. */
  maxMessageBytes?: number;
}

export interface RunningServer {
  /** The first-visit URL, token included (the page then moves it into a cookie). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Bodies beyond the limit are read and dropped (so the 413 reaches the client) up to this many times the limit, then the socket is cut. */
const DRAIN_FACTOR = 16;

function refuse(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ ok: false, error: new LoupeError('invalid-message', message).toPayload() }));
}

/** The request target as a URL, or null when it is not one (`//x:99999/` throws in new URL). */
function parseRequestUrl(target: string | undefined): URL | null {
  try {
    return new URL(target ?? '/', 'http://x');
  } catch {
    return null;
  }
}

function bearer(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : null;
}

type Via = 'bearer' | 'query' | 'cookie' | 'none';

/** The credential the request presents, the most explicit first, and whether it is the token. */
function credential(req: IncomingMessage, url: URL, token: string, cookieName: string): { via: Via; ok: boolean } {
  const b = bearer(req);
  if (b !== null) return { via: 'bearer', ok: tokenMatches(token, b) };
  const q = url.searchParams.get('token');
  if (q !== null) return { via: 'query', ok: tokenMatches(token, q) };
  const cookies = cookieValues(req.headers.cookie, cookieName);
  if (cookies.length) return { via: 'cookie', ok: cookies.some((c) => tokenMatches(token, c)) };
  return { via: 'none', ok: false };
}

const HOST_REFUSAL = (host: string | undefined) =>
  `Host header ${JSON.stringify(host ?? '')} does not name this server: open the URL \`loupe serve\` printed, or start it with --allow-host NAME to reach it under another name`;
const COOKIE_NEEDS_ORIGIN = 'a request authenticated by the session cookie must carry an Origin header (browsers send one); scripts send Authorization: Bearer <token> instead';
const NO_TOKEN = 'missing or wrong token: send Authorization: Bearer <token>, the token in the URL `loupe serve` printed';

/** A refusal written straight onto an upgrade socket (it never became an HTTP response). */
function refuseUpgrade(socket: Duplex, status: string, message: string): void {
  const body = Buffer.from(message);
  socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${message}`);
}

export async function serve(engine: Engine, options: ServeOptions): Promise<RunningServer> {
  const weak = tokenWeakness(options.token);
  if (weak) throw new LoupeError('bad-input', `loupe serve refused its token: ${weak}`);
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const tooBig = (n: number | string) => `message of ${n} bytes exceeds the limit of ${maxBytes} bytes (set LOUPE_MAX_MESSAGE_BYTES to raise it)`;
  // Symlinks inside the served folder are judged by where they lead, so the root is compared as a realpath.
  const staticRoot = realpathSync(options.staticRoot);
  let port = 0;
  let hosts = new Set<string>();
  let cookieName = '';
  const sockets = new Set<WebSocket>();
  const server: Server = createServer((req, res) => {
    // Everything a request carries is parsed inside an error boundary: no input may end the server.
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) refuse(res, 400, `bad request: ${(e as Error).message}`);
      else res.destroy();
    }
  });

  const denyPage = (res: ServerResponse, req: IncomingMessage, failure: AuthFailure): void => {
    if (!(req.headers.accept ?? '').includes('text/html')) return refuse(res, 401, NO_TOKEN);
    res
      .writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'", 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
      .end(authPage(failure));
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = parseRequestUrl(req.url);
    if (!url) return refuse(res, 400, `malformed request URL ${JSON.stringify(req.url)}`);
    if (!hostAllowed(req.headers.host, hosts)) return refuse(res, 421, HOST_REFUSAL(req.headers.host));
    const origin = req.headers.origin;
    if (!originAllowed(origin, hosts)) return refuse(res, 403, `origin ${origin} is not allowed`);
    const auth = credential(req, url, options.token, cookieName);
    const isApi = url.pathname === '/api/rpc';
    if (!auth.ok) {
      if (isApi) return refuse(res, 401, NO_TOKEN);
      return denyPage(res, req, auth.via === 'none' ? 'missing' : 'wrong');
    }
    const stateChanging = req.method !== 'GET' && req.method !== 'HEAD';
    if (auth.via === 'cookie' && stateChanging && origin === undefined) return refuse(res, 403, COOKIE_NEEDS_ORIGIN);
    if (isApi) return rpc(req, res);
    if (req.method !== 'GET') return refuse(res, 405, 'only GET for static files');
    if (auth.via === 'query') {
      // First visit: the token becomes an HttpOnly cookie and the address loses it (history, bookmarks, Referer).
      url.searchParams.delete('token');
      const location = `/${url.pathname.replace(/^[/\\]+/, '')}${url.search}${url.hash}`;
      res.writeHead(303, { location, 'set-cookie': sessionCookie(port, options.token), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }).end();
      return;
    }
    serveStatic(staticRoot, url.pathname, res);
  };

  const rpc = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST') return refuse(res, 405, 'use POST');
    const declared = Number(req.headers['content-length'] ?? 0);
    let size = 0;
    let over = declared > maxBytes;
    const chunks: Buffer[] = [];
    const overLimit = (n: number | string) => {
      over = true;
      chunks.length = 0;
      if (!res.headersSent) refuse(res, 413, tooBig(n), { connection: 'close' });
    };
    if (over) overLimit(declared);
    req.on('error', () => res.destroy());
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (over) {
        if (size > DRAIN_FACTOR * maxBytes) req.destroy();
        return;
      }
      if (size > maxBytes) overLimit(`more than ${maxBytes}`);
      else chunks.push(c);
    });
    req.on('end', async () => {
      if (over) return;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse(res, 400, 'request body is not JSON');
      }
      const { response, tensor } = await dispatch(engine.handlers, { t: 'req', id: 0, ...(body as object) });
      if (tensor) {
        // Over plain HTTP a tensor answer is the binary frame itself, metadata in its header.
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(encodeTensorFrame(tensor));
        return;
      }
      res.writeHead(response.ok ? 200 : 400, { 'content-type': 'application/json' }).end(JSON.stringify(response));
    });
  };

  // ws closes a socket whose message exceeds maxPayload with 1009 (Message Too Big); the renderer names the setting.
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxBytes });
  wss.on('error', () => undefined);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    try {
      const url = parseRequestUrl(req.url);
      if (!url || url.pathname !== '/engine') return refuseUpgrade(socket, '404 Not Found', 'the engine socket is /engine');
      if (!hostAllowed(req.headers.host, hosts)) return refuseUpgrade(socket, '421 Misdirected Request', HOST_REFUSAL(req.headers.host));
      const origin = req.headers.origin;
      if (!originAllowed(origin, hosts)) return refuseUpgrade(socket, '403 Forbidden', `origin ${origin} is not allowed`);
      const auth = credential(req, url, options.token, cookieName);
      if (!auth.ok) return refuseUpgrade(socket, '403 Forbidden', NO_TOKEN);
      if (auth.via === 'cookie' && origin === undefined) return refuseUpgrade(socket, '403 Forbidden', COOKIE_NEEDS_ORIGIN);
    } catch {
      return refuseUpgrade(socket, '400 Bad Request', 'malformed upgrade request');
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      // Malformed frames (bad UTF-8, unmasked, reserved opcode or bit, bad close code, over maxPayload)
      // surface here; ws has already failed the connection with the right close code. Without a
      // listener the error would end the process.
      ws.on('error', () => ws.terminate());
      ws.on('message', async (data, isBinary) => {
        let raw: unknown;
        try {
          if (isBinary) throw new Error('binary frames are only sent by the engine');
          raw = JSON.parse(data.toString());
        } catch (e) {
          ws.send(JSON.stringify({ t: 'res', id: -1, ok: false, error: { code: 'invalid-message', message: `unreadable message: ${(e as Error).message}` } }));
          return;
        }
        const { response, tensor } = await dispatch(engine.handlers, raw);
        if (tensor) ws.send(encodeTensorFrame(tensor), { binary: true });
        ws.send(JSON.stringify(response));
      });
    });
  });

  const off = engine.onEvent((name, payload) => {
    const text = JSON.stringify({ t: 'evt', name, payload });
    for (const ws of sockets) ws.send(text);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, resolve);
  });
  port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(options.host, port, options.allowHosts);
  cookieName = sessionCookieName(port);
  const url = `http://${hostForUrl(options.host)}:${port}/?token=${options.token}`;
  return {
    url,
    port,
    close: async () => {
      off();
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
