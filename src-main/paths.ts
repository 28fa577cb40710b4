/** Where Loupe keeps things when run from the source tree (CLI, `loupe serve`, tests). */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const RESOURCES_DIR = join(REPO_ROOT, 'resources');
export const RENDERER_DIST = join(REPO_ROOT, 'out', 'renderer');

export function appVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** `$LOUPE_DATA_DIR`, else the XDG data folder: runs must survive reinstalls of the app. */
export function defaultDataDir(): string {
  return process.env.LOUPE_DATA_DIR ?? join(process.env.XDG_DATA_HOME ?? join(homedir(), '.local', 'share'), 'loupe');
}
