/** Content fingerprints for models and datasets, recorded with runs so results can be traced to inputs. */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const SAMPLE = 1 << 20;

/**
 * Hashes a folder: small files (< 4 MiB) whole; large ones by size plus their first and last
 * MiB, because hashing a multi-GB VLM in full would stall every model import for minutes,
 * while a changed export virtually always changes its size, header or tail.
 */
export function fingerprintFolder(root: string, filter: (rel: string) => boolean = () => true): string {
  const h = createHash('sha256');
  for (const file of listFiles(root)) {
    const rel = relative(root, file).split('\\').join('/');
    if (!filter(rel)) continue;
    const size = statSync(file).size;
    h.update(`${rel}\0${size}\0`);
    const fd = openSync(file, 'r');
    try {
      if (size <= 4 * SAMPLE) {
        const buf = Buffer.alloc(size);
        readSync(fd, buf, 0, size, 0);
        h.update(buf);
      } else {
        const buf = Buffer.alloc(SAMPLE);
        readSync(fd, buf, 0, SAMPLE, 0);
        h.update(buf);
        readSync(fd, buf, 0, SAMPLE, size - SAMPLE);
        h.update(buf);
      }
    } finally {
      closeSync(fd);
    }
  }
  return h.digest('hex');
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}
