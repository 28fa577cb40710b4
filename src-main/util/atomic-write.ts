/**
 * Crash-safe file writes: the bytes go to a uniquely named temp file beside the target, are
 * fsynced, and only then renamed over the target — a crash or a full disk never leaves a
 * half-written file under the final name (rename within one folder is atomic on POSIX).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';

const tempName = (target: string) => `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;

export function writeFileAtomicSync(target: string, data: Uint8Array | string): void {
  const tmp = tempName(target);
  try {
    const fd = openSync(tmp, 'wx');
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** The same without blocking the thread, for large files (rewritten model graphs). */
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
    throw e;
  }
}
