/** `loupe://app/…` serves the built renderer with our CSP — never `file://`. */
import { net, protocol } from 'electron';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { APP_SCHEME } from '../../src-shared/bridge.ts';
import { CONTENT_SECURITY_POLICY } from '../../src-shared/csp.ts';
import { resolveStaticFile } from '../server/static.ts';

export function registerSchemeAsPrivileged(): void {
  protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);
}

export function serveRenderer(root: string): void {
  // The same path rules as `loupe serve` (server/static.ts): malformed escapes are 400s, `..` and
  // links that lead out of the renderer folder are 404s.
  const realRoot = realpathSync(root);
  protocol.handle(APP_SCHEME, async (request) => {
    const url = new URL(request.url);
    if (url.host !== 'app') return new Response('not found', { status: 404 });
    const found = resolveStaticFile(realRoot, url.pathname);
    if (!('file' in found)) return new Response(found.message, { status: found.status });
    const res = await net.fetch(pathToFileURL(found.file).toString());
    const headers = new Headers(res.headers);
    headers.set('content-security-policy', CONTENT_SECURITY_POLICY);
    headers.set('x-content-type-options', 'nosniff');
    return new Response(res.body, { status: res.status, headers });
  });
}
