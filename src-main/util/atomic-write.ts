/**
 * Crash-safe file writes: the bytes go to a uniquely named temp file beside the target, are
 * fsynced, and only then renamed over the target — a crash or a full disk never leaves a
 * half-written file under the final name (rename within one folder is atomic on POSIX).
 *
 * `write(2)` may write fewer bytes than asked (a filling disk does exactly that before it
 * answers ENOSPC), so the sync writer loops until every byte is down; any failure removes the
 * temp file and throws a `storage` LoupeError naming the file, how far it got and the errno.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';

/** Temp names end in `.tmp-<pid>-<8 hex>`; the engine removes leftovers of dead processes on start. */
export const TEMP_NAME = /\.tmp-(\d+)-[0-9a-f]{8}$/;
const tempName = (target: string) => `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

/** `fs.writeSync`'s buffer form: returns how many bytes it wrote (possibly fewer than `length`). */
export type WriteFn = (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) => number;

export interface AtomicWriteOptions {
  /** The write call (default `fs.writeSync`); the blob store's test-only fault hook replaces it. */
  write?: WriteFn;
}

/** A clear error for a failed write; `details.errno` keeps the system code (ENOSPC, EIO, …). */
export function writeFailure(target: string, written: number | null, total: number, cause: unknown): LoupeError {
  const err = cause as NodeJS.ErrnoException;
  if (err instanceof LoupeError) return err;
  const errno = err?.code ?? 'EIO';
  const progress = `${written === null ? '' : `${written} of ${total} bytes written; `}nothing was saved under that name`;
  const message = errno === 'ENOSPC' ? `disk full writing ${target} (${progress})` : `cannot write ${target}: ${errno} ${err?.message ?? String(cause)} (${progress})`;
  return new LoupeError('storage', message, { errno, target, written, total });
}

/** Makes the rename itself durable; best effort (Windows cannot open a folder for fsync). */
function fsyncFolder(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // EISDIR/EPERM on platforms without directory fsync: the rename is still atomic, only its durability across power loss is the OS's.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export function writeFileAtomicSync(target: string, data: Uint8Array | string, options: AtomicWriteOptions = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const write = options.write ?? writeSync;
  const tmp = tempName(target);
  let written = 0;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      while (written < bytes.length) {
        const n = write(fd, bytes, written, bytes.length - written, null);
        // A write that makes no progress would loop forever; the kernel answers ENOSPC/EIO instead, so treat it as one.
        if (!(n > 0)) throw Object.assign(new Error(`write returned ${n} bytes`), { code: 'EIO' });
        written += n;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeFailure(target, written, bytes.length, e);
  }
  fsyncFolder(dirname(target));
}

/** The same without blocking the thread, for large files (rewritten model graphs). `FileHandle.writeFile` loops over short writes itself. */
export async function writeFileAtomic(target: string, data: Uint8Array): Promise<void> {
  const tmp = tempName(target);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (e) {
    await rm(tmp, { force: true });
    throw writeFailure(target, null, data.byteLength, e);
  }
}
