/** Reads and validates a dataset folder (`dataset.json` + images) before anything is stored. */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import { z } from 'zod';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { DatasetManifest } from '../../src-shared/dataset/format.ts';

export interface DatasetFolder {
  root: string;
  manifest: DatasetManifest;
}

export function readDatasetFolder(path: string): DatasetFolder {
  const file = existsSync(path) && statSync(path).isDirectory() ? join(path, 'dataset.json') : path;
  if (!existsSync(file)) throw new LoupeError('not-found', `no dataset manifest at ${file}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LoupeError('bad-input', `dataset manifest ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = DatasetManifest.safeParse(raw);
  if (!parsed.success) throw new LoupeError('bad-input', `dataset manifest ${file} is malformed:\n${z.prettifyError(parsed.error)}`, parsed.error.issues);
  const root = dirname(file);
  const ids = new Set<string>();
  for (const item of parsed.data.items) {
    if (ids.has(item.id)) throw new LoupeError('bad-input', `dataset manifest ${file}: item id "${item.id}" appears twice`);
    ids.add(item.id);
    for (const img of item.images) {
      // Images must stay inside the dataset folder: a manifest is data, not a licence to read anywhere.
      if (isAbsolute(img) || normalize(img).startsWith('..')) throw new LoupeError('bad-input', `dataset item ${item.id}: image path ${img} leaves the dataset folder`);
      if (!existsSync(join(root, img))) throw new LoupeError('bad-input', `dataset item ${item.id}: image ${img} is missing`);
    }
  }
  return { root, manifest: parsed.data };
}
