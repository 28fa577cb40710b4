/**
 * Content-addressed blob store for tensor payloads: `<root>/<sha[0:2]>/<sha>.safetensors`.
 * Same bytes → same file, so identical captures are stored once. Writes go to a temp
 * file that is fsynced and renamed, so a crash never leaves a half-written blob under its name.
 * The name is the content's sha256 and `blob_files` records each blob's size, so the engine's
 * start-up check (`data-check.ts`) can find a blob that does not match cheaply (stat, not hash).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { type DType, type HostTensor, BYTES_PER_ELEMENT, elementCount, typedArrayFor } from '../../src-shared/tensor/dtype.ts';
import { type TensorLayoutMeta, parseSafetensorsHeader, safetensorsLayout, safetensorsPieces } from '../../src-shared/tensor/safetensors.ts';
import type { WriteFn } from '../util/atomic-write.ts';
import { type Piece, type StreamTimings, chunkBytesSetting, readRangeSync, streamPieces, writePiecesSync } from './blob-io.ts';
import { type Db, now } from './database.ts';
import { type AxisSelection, sliceRuns } from './tensor-slice.ts';

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

/** One tensor of a blob, as its header describes it: where its bytes lie in the file. */
export interface BlobEntry {
  dtype: DType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

/** A tensor to stream into a blob: its header entry now, its bytes when `data()` is called (once, in file order). */
/** A tensor's bytes: one array, or parts stored back to back (views of a source, e.g. one K/V head's image rows each). */
export type TensorBytes = HostTensor['data'] | { parts: Uint8Array[] };

export interface LazyTensor extends TensorLayoutMeta {
  data: () => TensorBytes;
}

export class BlobStore {
  readonly root: string;
  private readonly db: Db | null;
  private readonly write: WriteFn | undefined = faultInjectedWrite();
  /** Largest single read or write call (`LOUPE_BLOB_CHUNK_BYTES`, default 64 MiB). */
  readonly chunkBytes: number;
  /** Bytes read from blob files by this store since it opened (views and tests check what a slice read costs). */
  bytesRead = 0;

  /** Streamed writes hash on this thread instead of the hashing thread (bench/capture-7b.ts compares the two). */
  private readonly hashOnThisThread: boolean;

  /** `db`: where blob sizes are recorded (the store's database); null keeps no records. */
  constructor(root: string, db: Db | null = null, options: { chunkBytes?: number; hashOnThisThread?: boolean } = {}) {
    this.root = root;
    this.db = db;
    this.chunkBytes = chunkBytesSetting(options.chunkBytes);
    this.hashOnThisThread = options.hashOnThisThread ?? false;
    mkdirSync(root, { recursive: true });
  }

  pathOf(sha: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new LoupeError('bad-input', `not a blob id: ${sha}`);
    return join(this.root, sha.slice(0, 2), `${sha}.safetensors`);
  }

  /**
   * Stores tensors as one safetensors file; returns its sha256. The file is hashed and written
   * piece by piece from the tensors' own buffers (never joined into one buffer), in chunks.
   */
  putTensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): string {
    const { pieces, size } = safetensorsPieces(tensors, metadata);
    const hash = createHash('sha256');
    for (const p of pieces) for (let at = 0; at < p.byteLength; at += this.chunkBytes) hash.update(p.subarray(at, at + this.chunkBytes));
    const sha = hash.digest('hex');
    const target = this.pathOf(sha);
    // Same name and same size: the same content (a truncated file from an older Loupe is rewritten).
    if (existsSync(target) && statSync(target).size === size) {
      this.record(sha, size);
      return sha;
    }
    const dir = join(this.root, sha.slice(0, 2));
    mkdirSync(dir, { recursive: true });
    try {
      writePiecesSync(target, dir, pieces, { chunkBytes: this.chunkBytes, ...(this.write && { write: this.write }) });
    } catch (e) {
      const err = e as LoupeError;
      const details = err.details as { errno?: string; written?: number | null } | undefined;
      const errno = details?.errno;
      const progress = typeof details?.written === 'number' ? `${details.written} of ${size} bytes written, ` : '';
      throw new LoupeError(
        'storage',
        errno === 'ENOSPC'
          ? `disk full writing blob ${sha} under ${this.root} (${progress}no file was saved under its name); free space, then retry the failed items`
          : `cannot write tensor blob ${sha} under ${this.root}: ${err.message}`,
        { errno, blob: sha },
      );
    }
    this.record(sha, size);
    return sha;
  }

  /**
   * Streams tensors into a blob without holding the file in memory: the header first, then each
   * tensor's bytes as its `data()` produces them (e.g. converted to fp16 just then), hashed while
   * the previous chunk is written. Same bytes, same sha as `putTensors` of the same tensors.
   * `record: false` leaves the size record to the caller (a worker thread has no database).
   */
  async streamTensors(tensors: Record<string, LazyTensor>, metadata: Record<string, string> = {}, options: { record?: boolean } = {}): Promise<{ sha: string; size: number; timings: StreamTimings }> {
    const layout = safetensorsLayout(tensors, metadata);
    const pieces: Piece[] = [
      layout.header,
      ...layout.entries.map((e) => () => {
        const t = tensors[e.name]!;
        const data = t.data();
        const bytes = 'parts' in data ? data.parts.reduce((n, p) => n + p.byteLength, 0) : data.byteLength;
        if (bytes !== e.end - e.begin) throw new LoupeError('internal', `tensor ${e.name}: shape [${t.shape.join(', ')}] needs ${e.end - e.begin} bytes, its data has ${bytes}`);
        return 'parts' in data ? data.parts : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      }),
    ];
    const blob = await streamPieces(this.root, pieces, layout.size, { chunkBytes: this.chunkBytes, hashOnThisThread: this.hashOnThisThread, ...(this.write && { write: this.write }) });
    const target = this.pathOf(blob.sha);
    const existing = await stat(target).catch(() => null);
    if (existing?.size === blob.size) await rm(blob.tmp, { force: true });
    else {
      await mkdir(join(this.root, blob.sha.slice(0, 2)), { recursive: true });
      await rename(blob.tmp, target);
    }
    if (options.record !== false) this.record(blob.sha, blob.size);
    return { sha: blob.sha, size: blob.size, timings: blob.timings };
  }

  /** Records a blob another thread wrote (the compute worker's streamed captures), after checking it is there with that size. */
  adopt(sha: string, size: number): void {
    const path = this.pathOf(sha);
    const actual = existsSync(path) ? statSync(path).size : -1;
    if (actual !== size) throw new LoupeError('storage', `blob ${sha} written by the compute worker is ${actual < 0 ? 'missing' : `${actual} bytes`} under ${this.root}, expected ${size}`);
    this.record(sha, size);
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
    const actual = this.hashFile(path, size);
    if (actual !== sha) return `content hash ${actual} does not match its name (${size} bytes on disk)`;
    this.tryRecord(sha, size);
    return null;
  }

  /** sha256 of a file read in chunks (any size). */
  private hashFile(path: string, size: number): string {
    const hash = createHash('sha256');
    const buf = new Uint8Array(Math.min(this.chunkBytes, Math.max(1, size)));
    const fd = openSync(path, 'r');
    try {
      for (let at = 0; at < size; at += buf.byteLength) {
        const n = readRangeSync(fd, buf, 0, Math.min(buf.byteLength, size - at), at, this.chunkBytes);
        this.bytesRead += n;
        hash.update(buf.subarray(0, n));
      }
    } finally {
      closeSync(fd);
    }
    return hash.digest('hex');
  }

  private openExisting(sha: string): number {
    const path = this.pathOf(sha);
    if (!existsSync(path)) throw new LoupeError('not-found', `tensor blob ${sha} is missing from ${this.root}`);
    return openSync(path, 'r');
  }

  /** The blob's header: each tensor's dtype, shape and byte range (reads only the header's bytes). */
  entries(sha: string): Record<string, BlobEntry> {
    const fd = this.openExisting(sha);
    try {
      return this.readHeader(fd, sha).tensors;
    } finally {
      closeSync(fd);
    }
  }

  private readHeader(fd: number, sha: string): { tensors: Record<string, BlobEntry>; size: number } {
    const size = fstatSync(fd).size;
    if (size < 8) throw new LoupeError('storage', `tensor blob ${sha} is ${size} bytes, shorter than its 8-byte header length`);
    const len = new Uint8Array(8);
    this.bytesRead += readRangeSync(fd, len, 0, 8, 0, this.chunkBytes);
    const headerLen = Number(new DataView(len.buffer).getBigUint64(0, true));
    if (8 + headerLen > size) throw new LoupeError('storage', `tensor blob ${sha}: header of ${headerLen} bytes runs past the end of a ${size}-byte file (truncated?)`);
    const json = new Uint8Array(headerLen);
    this.bytesRead += readRangeSync(fd, json, 0, headerLen, 8, this.chunkBytes);
    const { tensors } = parseSafetensorsHeader(json, 8 + headerLen);
    for (const [name, e] of Object.entries(tensors)) if (e.end > size) throw new LoupeError('storage', `tensor blob ${sha}: tensor ${name} ends at byte ${e.end}, past the end of a ${size}-byte file (truncated?)`);
    return { tensors, size };
  }

  /**
   * Every tensor of a blob, read in chunks into one buffer per tensor (no whole-file buffer, so
   * blobs over 2 GiB read back) and checked against the blob's content hash as it streams by.
   */
  getTensors(sha: string): Record<string, HostTensor> {
    const fd = this.openExisting(sha);
    try {
      const { tensors: entries, size } = this.readHeader(fd, sha);
      const hash = createHash('sha256');
      // The header's bytes (read again, small) and every tensor's, in file order, feed the hash.
      const payloadStart = Math.min(size, ...Object.values(entries).map((e) => e.begin));
      const head = new Uint8Array(payloadStart);
      this.bytesRead += readRangeSync(fd, head, 0, payloadStart, 0, this.chunkBytes);
      hash.update(head);
      const out: Record<string, HostTensor> = {};
      let at = payloadStart;
      for (const [name, e] of Object.entries(entries).sort((a, b) => a[1].begin - b[1].begin)) {
        if (e.begin !== at) throw new LoupeError('storage', `tensor blob ${sha}: tensor ${name} starts at byte ${e.begin}, expected ${at} (not a Loupe blob?)`);
        const buf = new ArrayBuffer(e.end - e.begin);
        const bytes = new Uint8Array(buf);
        for (let o = 0; o < bytes.byteLength; o += this.chunkBytes) {
          const n = readRangeSync(fd, bytes, o, Math.min(this.chunkBytes, bytes.byteLength - o), e.begin + o, this.chunkBytes);
          this.bytesRead += n;
          hash.update(bytes.subarray(o, o + n));
        }
        out[name] = { dtype: e.dtype, shape: e.shape, data: typedArrayFor(e.dtype, buf, 0, elementCount(e.shape)) };
        at = e.end;
      }
      if (at !== size) throw new LoupeError('storage', `tensor blob ${sha} has ${size - at} bytes after its last tensor`);
      const actual = hash.digest('hex');
      if (actual !== sha) throw new LoupeError('storage', `tensor blob ${sha} is corrupt (content hash ${actual})`);
      return out;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * One tensor, or a slice of it, reading only the bytes the slice covers (plus the header):
   * `select[axis]` is an index, a [start, end) range, or undefined for the whole axis. The file's
   * size is checked against the database's record instead of its hash (hashing would read it all).
   */
  readTensor(sha: string, name: string, select: AxisSelection[] = []): HostTensor {
    const fd = this.openExisting(sha);
    try {
      const { tensors, size } = this.readHeader(fd, sha);
      const known = this.db?.prepare('SELECT size FROM blob_files WHERE sha = ?').get(sha) as { size: number } | undefined;
      if (known && known.size !== size) throw new LoupeError('storage', `tensor blob ${sha} is ${size} bytes on disk, the database recorded ${known.size}`);
      const e = tensors[name];
      if (!e) throw new LoupeError('not-found', `tensor blob ${sha} has no tensor ${name} (it has ${Object.keys(tensors).join(', ')})`);
      const el = BYTES_PER_ELEMENT[e.dtype];
      const { shape, runs } = sliceRuns(e.shape, select, name);
      const count = elementCount(shape);
      const buf = new ArrayBuffer(count * el);
      const bytes = new Uint8Array(buf);
      let at = 0;
      for (const r of runs) {
        this.bytesRead += readRangeSync(fd, bytes, at, r.length * el, e.begin + r.start * el, this.chunkBytes);
        at += r.length * el;
      }
      return { dtype: e.dtype, shape, data: typedArrayFor(e.dtype, buf, 0, count) };
    } finally {
      closeSync(fd);
    }
  }
}
