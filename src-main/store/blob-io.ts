/**
 * Chunked blob file I/O: no whole-file buffers, so blobs may exceed 2 GiB (Node's
 * `readFileSync` limit, and the one-buffer encode's). Every write and read call moves at most
 * `chunkBytes`; writes loop over short writes (a filling disk writes fewer bytes before it
 * answers ENOSPC). Bytes go to a temp file named like `atomic-write.ts`'s (`…tmp-<pid>-<hex>`,
 * so the start-up check removes a dead process's leftovers), are fsynced, then renamed.
 *
 * Two writers:
 *  - `writePiecesSync`: the sha is known first (the caller hashed the pieces), as the blob
 *    store's synchronous `putTensors` needs for its messages;
 *  - `streamPieces`: async, hashes as it writes — chunk k goes to the hashing thread
 *    (hash-worker.ts) while chunk k−1 is written by libuv's thread pool and this thread produces
 *    chunk k+1, so a store runs at max(produce, hash, disk), not their sum. Tensors are produced
 *    lazily (converted to fp16 just before their bytes are written).
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { type WriteFn, writeFailure } from '../util/atomic-write.ts';
import { OffThreadHash } from './hash-worker.ts';

/** Default largest single read/write: 64 MiB. `LOUPE_BLOB_CHUNK_BYTES` or the store option changes it. */
export const DEFAULT_CHUNK_BYTES = 64 << 20;

export const tempPath = (dir: string, base: string) => join(dir, `${base}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);

/** Chunk size from the environment (tests set a small one to exercise chunking), else the default. */
export function chunkBytesSetting(explicit?: number): number {
  const raw = explicit ?? (process.env.LOUPE_BLOB_CHUNK_BYTES ? Number(process.env.LOUPE_BLOB_CHUNK_BYTES) : DEFAULT_CHUNK_BYTES);
  if (!Number.isInteger(raw) || raw < 1) throw new LoupeError('bad-input', `blob chunk size must be a positive byte count, not ${raw} (LOUPE_BLOB_CHUNK_BYTES)`);
  return raw;
}

/** Writes `bytes` fully at the file position, at most `chunk` per call; returns bytes written. */
function writeAllSync(fd: number, bytes: Uint8Array, chunk: number, write: WriteFn, onProgress: (n: number) => void): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const n = write(fd, bytes, done, Math.min(chunk, bytes.byteLength - done), null);
    // A write that makes no progress would loop forever; the kernel answers ENOSPC/EIO instead, so treat it as one.
    if (!(n > 0)) throw Object.assign(new Error(`write returned ${n} bytes`), { code: 'EIO' });
    done += n;
    onProgress(n);
  }
}

/**
 * Writes `pieces` in order to a temp file beside `target`, fsyncs, renames. On failure the temp
 * file is removed and a `storage` LoupeError carries `details.written` and `details.errno`.
 */
export function writePiecesSync(target: string, dir: string, pieces: Uint8Array[], options: { chunkBytes: number; write?: WriteFn }): void {
  const write = options.write ?? writeSync;
  const total = pieces.reduce((s, p) => s + p.byteLength, 0);
  const tmp = tempPath(dir, 'blob');
  let written = 0;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (const p of pieces) writeAllSync(fd, p, options.chunkBytes, write, (n) => (written += n));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeFailure(target, written, total, e);
  }
}

/** Streamed blobs are flushed to the disk every this many bytes while they are written (see streamPieces). */
const FLUSH_EVERY_BYTES = 16 << 20;

/** A piece of a streamed blob: bytes now, or a function producing them just before they are written (one buffer, or parts written back to back — views of a capture's source, not copies). */
export type Piece = Uint8Array | (() => Uint8Array | Uint8Array[]);

export interface StreamedBlob {
  sha: string;
  size: number;
  /** The temp file holding the bytes; the caller renames it to the sha's path (or removes it when a copy exists). */
  tmp: string;
  timings: StreamTimings;
}

/** Where a streamed write's time went, on the writing thread (bench/capture-7b.ts prints it). */
export interface StreamTimings {
  /** Producing the pieces' bytes (the capture ops: slicing, fp16 conversion). */
  produceMs: number;
  /** sha256 of the bytes. */
  hashMs: number;
  /** Waiting for writes still in flight (the disk slower than producing + hashing). */
  writeWaitMs: number;
  /** Flushing to the disk: the datasyncs behind the writes, then the fsync at the end. */
  syncMs: number;
  /** Waiting for the hashing thread's digest after the last byte was written. */
  digestMs: number;
  totalMs: number;
}

/** Most buffers in one writev call (Linux IOV_MAX is 1024). */
const MAX_WRITEV_BUFFERS = 512;

/**
 * Groups a piece's parts into write batches of at most `chunkBytes` bytes and MAX_WRITEV_BUFFERS
 * buffers, in order; a part larger than a chunk is split. A capture's parts can be views of the
 * runtime's own output (a K/V head's rows), written with one writev each batch — no copy first.
 */
export function* writeBatches(parts: Uint8Array[], chunkBytes: number): Generator<Uint8Array[]> {
  let batch: Uint8Array[] = [];
  let bytes = 0;
  for (const part of parts) {
    for (let at = 0; at < part.byteLength; ) {
      const take = Math.min(part.byteLength - at, chunkBytes - bytes);
      batch.push(part.subarray(at, at + take));
      bytes += take;
      at += take;
      if (bytes === chunkBytes || batch.length === MAX_WRITEV_BUFFERS) {
        yield batch;
        batch = [];
        bytes = 0;
      }
    }
  }
  if (batch.length) yield batch;
}

/** Writes the buffers back to back at `position`, looping on short writes. */
async function writeAllv(fh: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  const rest = buffers.filter((b) => b.byteLength > 0);
  let at = position;
  while (rest.length) {
    const { bytesWritten } = rest.length === 1 ? await fh.write(rest[0]!, 0, rest[0]!.byteLength, at) : await fh.writev(rest, at);
    if (!(bytesWritten > 0)) throw Object.assign(new Error(`write returned ${bytesWritten} bytes`), { code: 'EIO' });
    at += bytesWritten;
    // Drop what was written: whole buffers, then the head of a partly written one.
    let left = bytesWritten;
    while (rest.length && left >= rest[0]!.byteLength) left -= rest.shift()!.byteLength;
    if (left > 0) rest[0] = rest[0]!.subarray(left);
  }
}

/**
 * Streams pieces into a temp file under `dir`, hashing while the previous chunk is written;
 * fsyncs and returns the content's sha256. With `write` (the test-only fault hook) the writes
 * are that synchronous function, so injected short writes and ENOSPC behave as on the sync path.
 */
export async function streamPieces(dir: string, pieces: Piece[], total: number, options: { chunkBytes: number; write?: WriteFn; hashOnThisThread?: boolean }): Promise<StreamedBlob> {
  // sha256 on the hashing thread (hash-worker.ts) unless asked otherwise: same digest, off the producing thread.
  const off = options.hashOnThisThread ? null : new OffThreadHash();
  const here = off ? null : createHash('sha256');
  const tmp = tempPath(dir, 'incoming');
  let written = 0;
  let position = 0;
  let fh: FileHandle | null = null;
  const t = { produceMs: 0, hashMs: 0, writeWaitMs: 0, syncMs: 0, digestMs: 0, totalMs: 0 };
  const start = performance.now();
  let t0 = start;
  try {
    fh = await open(tmp, 'wx');
    const fd = fh.fd;
    let inflight: Promise<void> = Promise.resolve();
    // Written bytes are flushed to the disk as the stream goes (datasync on a libuv thread, behind the
    // writes so far), so the final fsync only waits for the tail instead of the whole blob.
    const flushes: Promise<void>[] = [];
    let unflushed = 0;
    for (const piece of pieces) {
      t0 = performance.now();
      const produced = typeof piece === 'function' ? piece() : piece;
      t.produceMs += performance.now() - t0;
      for (const batch of writeBatches(Array.isArray(produced) ? produced : [produced], options.chunkBytes)) {
        const bytes = batch.reduce((n, b) => n + b.byteLength, 0);
        t0 = performance.now();
        for (const b of batch) {
          if (off) await off.update(b);
          else here!.update(b);
        }
        t.hashMs += performance.now() - t0;
        t0 = performance.now();
        await inflight; // the previous batch is on its way while this one was hashed
        t.writeWaitMs += performance.now() - t0;
        if (options.write) {
          for (const b of batch) writeAllSync(fd, b, options.chunkBytes, options.write, (n) => (written += n));
        } else {
          const at0 = position;
          inflight = writeAllv(fh, batch, at0).then(() => void (written += bytes));
          unflushed += bytes;
          if (unflushed >= FLUSH_EVERY_BYTES) {
            const handle = fh;
            const flush = inflight.then(() => handle.datasync());
            flush.catch(() => {}); // awaited below; a failure before then must not be an unhandled rejection
            flushes.push(flush);
            unflushed = 0;
          }
        }
        position += bytes;
      }
    }
    t0 = performance.now();
    await inflight;
    t.writeWaitMs += performance.now() - t0;
    t0 = performance.now();
    await Promise.all(flushes);
    t.syncMs += performance.now() - t0;
    if (position !== total) throw new LoupeError('internal', `streamed blob has ${position} bytes, its layout says ${total}`);
    t0 = performance.now();
    await fh.sync();
    t.syncMs += performance.now() - t0;
    await fh.close();
    fh = null;
    t0 = performance.now();
    const sha = off ? await off.digest() : here!.digest('hex');
    t.digestMs = performance.now() - t0;
    t.totalMs = performance.now() - start;
    return { sha, size: total, tmp, timings: t };
  } catch (e) {
    off?.drop();
    if (fh) await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    const err = writeFailure(`a tensor blob under ${dir}`, written, total, e);
    const errno = (err.details as { errno?: string } | undefined)?.errno;
    throw new LoupeError(
      'storage',
      errno === 'ENOSPC' ? `disk full writing a tensor blob under ${dir} (${written} of ${total} bytes written, no file was saved); free space, then retry the failed items` : err.message,
      { errno, written, total },
    );
  }
}


/** Reads `length` bytes at `position` into `out` (at `outOffset`), at most `chunk` per call; returns bytes read. */
export function readRangeSync(fd: number, out: Uint8Array, outOffset: number, length: number, position: number, chunk: number): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, outOffset + done, Math.min(chunk, length - done), position + done);
    if (n <= 0) throw new LoupeError('storage', `unexpected end of file reading ${length} bytes at offset ${position} (got ${done})`);
    done += n;
  }
  return done;
}
