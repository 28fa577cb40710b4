/**
 * Content-addressed blob store for tensor payloads: `<root>/<sha[0:2]>/<sha>.safetensors`.
 * Same bytes → same file, so identical captures are stored once. Writes go to a temp
 * file that is fsynced and renamed, so a crash never leaves a half-written blob under its name.
 * The name is the content's sha256 and `blob_files` records each blob's size, so the engine's
 * start-up check (`data-check.ts`) can find a blob that does not match cheaply (stat, not hash).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { type WriteFn, writeFileAtomicSync } from '../util/atomic-write.ts';
import { type Db, now } from './database.ts';

/**
 * TEST-ONLY fault injection (tests/integration/write-faults.test.ts): with
 * `LOUPE_TEST_FAIL_WRITES_AFTER_BYTES=N`, blob writes behave like a disk with N bytes free — the
 * write that crosses the limit is short (as the kernel's is), the next answers ENOSPC. A real
 * small tmpfs needs root (or user namespaces) that CI machines may not give.
 */
function faultInjectedWrite(): WriteFn | undefined {
  const raw = process.env.LOUPE_TEST_FAIL_WRITES_AFTER_BYTES;
  if (raw === undefined || raw === '') return undefined;
  let free = Number(raw);
  if (!Number.isInteger(free) || free < 0) throw new LoupeError('bad-input', `LOUPE_TEST_FAIL_WRITES_AFTER_BYTES must be a byte count, not "${raw}"`);
  return (fd, buffer, offset, length, position) => {
    if (free <= 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    const n = writeSync(fd, buffer, offset, Math.min(length, free), position);
    free -= n;
    return n;
  };
}

export class BlobStore {
  readonly root: string;
  private readonly db: Db | null;
  private readonly write: WriteFn | undefined = faultInjectedWrite();

  /** `db`: where blob sizes are recorded (the store's database); null keeps no records. */
  constructor(root: string, db: Db | null = null) {
    this.root = root;
    this.db = db;
    mkdirSync(root, { recursive: true });
  }

  pathOf(sha: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new LoupeError('bad-input', `not a blob id: ${sha}`);
    return join(this.root, sha.slice(0, 2), `${sha}.safetensors`);
  }

  /** Stores tensors as one safetensors file; returns its sha256. */
  putTensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): string {
    const bytes = encodeSafetensors(tensors, metadata);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const target = this.pathOf(sha);
    // Same name and same size: the same content (a truncated file from an older Loupe is rewritten).
    if (existsSync(target) && statSync(target).size === bytes.byteLength) {
      this.record(sha, bytes.byteLength);
      return sha;
    }
    mkdirSync(join(this.root, sha.slice(0, 2)), { recursive: true });
    try {
      writeFileAtomicSync(target, bytes, this.write ? { write: this.write } : {});
    } catch (e) {
      const err = e as LoupeError;
      const details = err.details as { errno?: string; written?: number | null } | undefined;
      const errno = details?.errno;
      const progress = typeof details?.written === 'number' ? `${details.written} of ${bytes.byteLength} bytes written, ` : '';
      throw new LoupeError(
        'storage',
        errno === 'ENOSPC'
          ? `disk full writing blob ${sha} under ${this.root} (${progress}no file was saved under its name); free space, then retry the failed items`
          : `cannot write tensor blob ${sha} under ${this.root}: ${err.message}`,
        { errno, blob: sha },
      );
    }
    this.record(sha, bytes.byteLength);
    return sha;
  }

  private record(sha: string, size: number): void {
    this.db?.prepare('INSERT OR REPLACE INTO blob_files (sha, size, verified_at) VALUES (?, ?, ?)').run(sha, size, now());
  }

  /** The same, where a full database must not stop the caller (the start-up check): the blob is then hashed again next start. */
  private tryRecord(sha: string, size: number): void {
    try {
      this.record(sha, size);
    } catch {
      // SQLITE_FULL and the like: verification stands, only its memo is lost.
    }
  }

  /**
   * Checks one blob against the database: its recorded size (cheap), or — for a blob written
   * before sizes were recorded — its full content hash once, recording the size when it matches.
   * Returns what is wrong, or null.
   */
  verify(sha: string): string | null {
    const path = this.pathOf(sha);
    if (!existsSync(path)) return `missing (${path})`;
    const size = statSync(path).size;
    const known = this.db?.prepare('SELECT size FROM blob_files WHERE sha = ?').get(sha) as { size: number } | undefined;
    if (known) return size === known.size ? null : `${size} bytes on disk, the database recorded ${known.size}`;
    const actual = createHash('sha256').update(readFileSync(path)).digest('hex');
    if (actual !== sha) return `content hash ${actual} does not match its name (${size} bytes on disk)`;
    this.tryRecord(sha, size);
    return null;
  }

  getTensors(sha: string): Record<string, HostTensor> {
    const path = this.pathOf(sha);
    if (!existsSync(path)) throw new LoupeError('not-found', `tensor blob ${sha} is missing from ${this.root}`);
    const bytes = readFileSync(path);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha) throw new LoupeError('storage', `tensor blob ${sha} is corrupt (content hash ${actual})`);
    return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  }
}
