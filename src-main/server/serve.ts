/**
 * `loupe serve`: the same engine contract over HTTP + WebSocket on 127.0.0.1, so the
 * unchanged renderer runs in any browser (tests here; a remote GPU box for users).
 * JSON control messages are text frames; tensors are binary frames (never JSON).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { encodeTensorFrame } from '../../src-shared/contract/wire.ts';
import { dispatch } from '../engine/dispatcher.ts';
import type { Engine } from '../engine/engine.ts';
import { originAllowed, tokenMatches } from './security.ts';
import { serveStatic } from './static.ts';

export interface ServeOptions {
  host: string;
  port: number;
  token: string;
  staticRoot: string;
}

export interface RunningServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY = 1 << 20;

function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: false, error: new LoupeError('invalid-message', message).toPayload() }));
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

export async function serve(engine: Engine, options: ServeOptions): Promise<RunningServer> {
  let port = 0;
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
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = parseRequestUrl(req.url);
    if (!url) return refuse(res, 400, `malformed request URL ${JSON.stringify(req.url)}`);
    if (url.pathname === '/api/rpc') {
      if (!originAllowed(req.headers.origin, port)) return refuse(res, 403, `origin ${req.headers.origin} is not allowed`);
      if (!tokenMatches(options.token, bearer(req))) return refuse(res, 401, 'missing or wrong token');
      if (req.method !== 'POST') return refuse(res, 405, 'use POST');
      let size = 0;
      const chunks: Buffer[] = [];
      req.on('error', () => res.destroy());
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy();
        else chunks.push(c);
      });
      req.on('end', async () => {
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
      return;
    }
    if (req.method !== 'GET') return refuse(res, 405, 'only GET for static files');
    serveStatic(options.staticRoot, url.pathname, res);
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY });
  wss.on('error', () => undefined);
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const url = parseRequestUrl(req.url);
    const ok = !!url && url.pathname === '/engine' && originAllowed(req.headers.origin, port) && tokenMatches(options.token, url.searchParams.get('token'));
    if (!ok) {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
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
  const url = `http://${options.host}:${port}/?token=${options.token}`;
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
