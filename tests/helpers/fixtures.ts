/** Paths and builders shared by integration and e2e tests. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RESOURCES_DIR } from '../../src-main/paths.ts';

export const MODEL_ID = 'micro-llava';
export const DATASET_ID = 'colour-at-point';
export const DATASET_DIR = join(RESOURCES_DIR, 'datasets', DATASET_ID);

export function tempDir(prefix = 'loupe-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A dataset of `n` items cycling through the bundled colour-at-point images, so a run is long
 * enough to be interrupted or cancelled while in flight.
 */
export function makeLongDataset(n: number): string {
  const src = JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] };
  const dir = tempDir('loupe-long-');
  mkdirSync(join(dir, 'images'));
  const images = src.items.slice(0, 8).map((it, i) => {
    const name = `images/img-${i}.png`;
    copyFileSync(join(DATASET_DIR, it.images[0]!), join(dir, name));
    return name;
  });
  const items = Array.from({ length: n }, (_, i) => ({ id: `long-${String(i).padStart(4, '0')}`, images: [images[i % images.length]!], labels: [] }));
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'long', task: 'colour-at-point', items }));
  return dir;
}
