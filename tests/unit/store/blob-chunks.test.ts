/**
 * Chunked blobs: with a tiny chunk size (7 bytes, so every write and read is split and no
 * boundary lines up with a tensor), blobs must be byte-identical to the one-buffer encoding,
 * stream to the same sha, read back whole, and slice reads must read only the bytes they need.
 * (A real > 2 GiB blob is benchmarked by bench/capture-7b.ts, not written in CI.)
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeBatches } from '../../../src-main/store/blob-io.ts';
import { BlobStore } from '../../../src-main/store/blob-store.ts';
import { sliceRuns } from '../../../src-main/store/tensor-slice.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { encodeSafetensors } from '../../../src-shared/tensor/safetensors.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'loupe-blob-chunks-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

// [layers=3, heads=4, tokens=5, dim=6] float32 holding its own flat index: any misplaced byte shows.
const kv: HostTensor = { dtype: 'float32', shape: [3, 4, 5, 6], data: Float32Array.from({ length: 360 }, (_, i) => i) };
const half: HostTensor = { dtype: 'float16', shape: [2, 9], data: Uint16Array.from({ length: 18 }, (_, i) => 0x3c00 + i) };
const map: HostTensor = { dtype: 'int32', shape: [5, 5], data: Int32Array.from({ length: 25 }, (_, i) => -i) };
const tensors = { 'image_kv.0.key': kv, projector: half, image_token_map: map };

describe('chunked blob store', () => {
  it('writes the same bytes as the one-buffer encoding, in chunks of at most chunkBytes, and reads them back', () => {
    const store = new BlobStore(tmp(), null, { chunkBytes: 7 });
    const sha = store.putTensors(tensors);
    const reference = encodeSafetensors(tensors);
    expect(sha).toBe(createHash('sha256').update(reference).digest('hex'));
    expect(new Uint8Array(readFileSync(store.pathOf(sha)))).toEqual(reference);
    const back = store.getTensors(sha);
    expect(Array.from(back['image_kv.0.key']!.data as Float32Array)).toEqual(Array.from(kv.data as Float32Array));
    expect(Array.from(back.projector!.data as Uint16Array)).toEqual(Array.from(half.data as Uint16Array));
    expect(Array.from(back.image_token_map!.data as Int32Array)).toEqual(Array.from(map.data as Int32Array));
    expect(store.bytesRead).toBeGreaterThanOrEqual(reference.byteLength); // a whole read reads (and hashes) every byte
  });

  it('streams lazily produced tensors to the same sha, leaving no temp file', async () => {
    const root = tmp();
    const store = new BlobStore(root, null, { chunkBytes: 7 });
    const produced: string[] = [];
    const lazy = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: () => (produced.push(n), t.data) }]));
    const { sha, size } = await store.streamTensors(lazy);
    expect(sha).toBe(createHash('sha256').update(encodeSafetensors(tensors)).digest('hex'));
    expect(size).toBe(encodeSafetensors(tensors).byteLength);
    expect(produced).toEqual(['image_kv.0.key', 'image_token_map', 'projector']); // file order, each once
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
    // The same content again: deduplicated, still no temp file.
    await store.streamTensors(lazy);
    expect(readdirSync(root).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('streams a tensor given as parts (views of a shared source, as captures of runtime fp16 are) to the same bytes and sha, on both hashing paths', async () => {
    // The K/V tensor's bytes as 13 uneven views into a SharedArrayBuffer copy, so parts cross chunk and batch boundaries.
    const bytes = new Uint8Array(new SharedArrayBuffer(kv.data.byteLength));
    bytes.set(new Uint8Array(kv.data.buffer, kv.data.byteOffset, kv.data.byteLength));
    const cuts = [0, 1, 9, 10, 100, 333, 334, 700, 701, 702, 1000, 1200, 1439, 1440];
    const parts = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i]!, end));
    const reference = encodeSafetensors(tensors);
    for (const hashOnThisThread of [false, true]) {
      const store = new BlobStore(tmp(), null, { chunkBytes: 7, hashOnThisThread });
      const lazy = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: () => (n === 'image_kv.0.key' ? { parts } : t.data) }]));
      const { sha } = await store.streamTensors(lazy);
      expect(sha).toBe(createHash('sha256').update(reference).digest('hex'));
      expect(new Uint8Array(readFileSync(store.pathOf(sha)))).toEqual(reference);
    }
    // A part list whose bytes do not add up to the tensor's size is refused, naming the tensor.
    const store = new BlobStore(tmp(), null, { chunkBytes: 7 });
    const short = Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, { dtype: t.dtype, shape: t.shape, data: () => (n === 'image_kv.0.key' ? { parts: parts.slice(1) } : t.data) }]));
    await expect(store.streamTensors(short)).rejects.toThrow(/tensor image_kv\.0\.key: shape \[3, 4, 5, 6\] needs 1440 bytes, its data has 1439/);
  });

  it('writeBatches: parts in order, split at chunk size, at most 512 buffers a batch', () => {
    const parts = [new Uint8Array(5), new Uint8Array(0), new Uint8Array(12), new Uint8Array(3)];
    parts.forEach((p, k) => p.fill(k + 1));
    const batches = [...writeBatches(parts, 7)];
    expect(batches.map((b) => b.reduce((n, x) => n + x.byteLength, 0))).toEqual([7, 7, 6]);
    expect(batches.flatMap((b) => b.flatMap((x) => Array.from(x)))).toEqual(parts.flatMap((p) => Array.from(p)));
    const many = Array.from({ length: 1030 }, () => new Uint8Array(1));
    expect([...writeBatches(many, 1 << 20)].map((b) => b.length)).toEqual([512, 512, 6]);
  });

  it('reads one layer, one head or one token of a stored tensor, and only those bytes', () => {
    const store = new BlobStore(tmp(), null, { chunkBytes: 7 });
    const sha = store.putTensors(tensors);
    const headerBytes = Math.min(...Object.values(store.entries(sha)).map((e) => e.begin));
    const cases: { select: Parameters<BlobStore['readTensor']>[2]; shape: number[]; values: number[] }[] = [
      // Layer 1: elements 120..239, one contiguous run.
      { select: [1], shape: [1, 4, 5, 6], values: Array.from({ length: 120 }, (_, i) => 120 + i) },
      // Layer 2, head 3: (2·4 + 3)·30 = 330 .. 359.
      { select: [2, 3], shape: [1, 1, 5, 6], values: Array.from({ length: 30 }, (_, i) => 330 + i) },
      // Token 4 of every head of layer 0: rows (h·5 + 4)·6 for h = 0..3, hand-listed starts 24, 54, 84, 114.
      { select: [0, undefined, 4], shape: [1, 4, 1, 6], values: [24, 54, 84, 114].flatMap((s) => [0, 1, 2, 3, 4, 5].map((d) => s + d)) },
      // Dims 2..4 of token 1, head 0, layers 0..1: starts 6+2 and 120+6+2.
      { select: [[0, 2], 0, 1, [2, 4]], shape: [2, 1, 1, 2], values: [8, 9, 128, 129] },
    ];
    for (const c of cases) {
      const before = store.bytesRead;
      const t = store.readTensor(sha, 'image_kv.0.key', c.select);
      expect(t.shape).toEqual(c.shape);
      expect(Array.from(t.data as Float32Array)).toEqual(c.values);
      expect(store.bytesRead - before).toBe(headerBytes + c.values.length * 4);
    }
    expect(() => store.readTensor(sha, 'image_kv.0.key', [3])).toThrow(/slice \[3, 4\) of axis 0 of image_kv\.0\.key is outside 0\.\.3/);
    expect(() => store.readTensor(sha, 'nope')).toThrow(/has no tensor nope/);
  });

  it('merges adjacent runs: a whole-tensor selection is one read', () => {
    expect(sliceRuns([3, 4], [])).toEqual({ shape: [3, 4], runs: [{ start: 0, length: 12 }] });
    expect(sliceRuns([3, 4], [[1, 3]])).toEqual({ shape: [2, 4], runs: [{ start: 4, length: 8 }] });
    expect(sliceRuns([3, 4], [undefined, [1, 2]])).toEqual({ shape: [3, 1], runs: [{ start: 1, length: 1 }, { start: 5, length: 1 }, { start: 9, length: 1 }] });
  });

  it('refuses a chunk size that is not a positive byte count, naming the setting', () => {
    expect(() => new BlobStore(tmp(), null, { chunkBytes: 0 })).toThrow(/LOUPE_BLOB_CHUNK_BYTES/);
  });
});
