/**
 * `loupe serve` in a child process for tests that must see the server die if it crashes, without
 * the built renderer (integration tests run before the e2e build): the real engine and `serve()`,
 * a one-file static root unless one is given. The port comes from $LOUPE_PORT as in the CLI
 * (resolveServeOptions), else any free one. Args: <data dir> <token> [static root]. Prints the URL as the CLI does.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { resolveServeOptions } from '../../src-main/server/serve-options.ts';
import { serve } from '../../src-main/server/serve.ts';

const [dataDir, token, givenRoot] = process.argv.slice(2);
let staticRoot = givenRoot;
if (!staticRoot) {
  staticRoot = mkdtempSync(join(tmpdir(), 'loupe-static-'));
  writeFileSync(join(staticRoot, 'index.html'), '<!doctype html><title>loupe</title>');
}
const options = resolveServeOptions({ token }, process.env);
const engine = await Engine.start({ dataDir: dataDir!, resourcesDir: RESOURCES_DIR, host: 'server', version: '0.0.0-test', provider: 'cpu' });
const server = await serve(engine, { ...options, staticRoot });
process.stdout.write(`Loupe workbench: ${server.url}\n`);
process.on('SIGTERM', () => void server.close().then(() => engine.close()).then(() => process.exit(0)));
