/**
 * Serves the built renderer (index.html + assets) with a strict CSP; refuses paths outside its
 * root, lexically (`..`) and physically (a symlink inside the root that leads out of it).
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';
import { CONTENT_SECURITY_POLICY } from '../../src-shared/csp.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export type StaticLookup = { file: string } | { status: 400 | 404; message: string };

/**
 * The real file a URL path names under `realRoot` (itself a realpath), or why not. The file's
 * realpath must stay under the root: a link to /etc/passwd placed in the folder is not served.
 */
export function resolveStaticFile(realRoot: string, urlPath: string): StaticLookup {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath === '/' ? '/index.html' : urlPath);
  } catch {
    // A malformed escape (`/%zz`, which any page can request through an <img>) is the client's error, never a crash.
    return { status: 400, message: 'malformed URL escape' };
  }
  if (decoded.includes('\0')) return { status: 400, message: 'NUL in path' };
  const rel = normalize(decoded).replace(/^([/\\])+/, '');
  const lexical = join(realRoot, rel);
  if (!lexical.startsWith(realRoot + sep)) return { status: 404, message: 'not found' };
  let real: string;
  try {
    real = realpathSync(lexical);
  } catch {
    return { status: 404, message: 'not found' };
  }
  if (!real.startsWith(realRoot + sep) || !statSync(real).isFile()) return { status: 404, message: 'not found' };
  return { file: real };
}

export function serveStatic(realRoot: string, urlPath: string, res: ServerResponse): void {
  const found = resolveStaticFile(realRoot, urlPath);
  if (!('file' in found)) {
    res.writeHead(found.status, { 'content-type': 'text/plain' }).end(found.message);
    return;
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(found.file)] ?? 'application/octet-stream',
    'content-security-policy': CONTENT_SECURITY_POLICY,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  });
  res.end(readFileSync(found.file));
}
