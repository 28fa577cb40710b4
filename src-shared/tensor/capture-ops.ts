/**
 * Selective capture: what one stored tensor keeps of one runtime output — token rows, heads,
 * attention as top-k per row or summed over heads — and in which dtype. Pure code, shared by
 * the compute worker (which applies the ops to ORT outputs and streams the results to a blob)
 * and the size estimate (which applies `captureShape` to shapes from config.json): one
 * definition of every stored shape.
 *
 * Source layouts (batch 1):
 *  - `kv`:        [1, kvHeads, seq, headDim]          → [heads', rows', headDim]
 *  - `hidden`:    [batch, seq, width]                 → [batch, rows', width]
 *  - `attention`: [1, heads, q, k] (or an exporter's
 *                 [heads, q, k] / [1, kv, group, q, k]) → [1, heads', rows', k];
 *                 `headsum` → [1, 1, rows', k]; `topk` → two tensors [1, heads', rows', k']
 *                 (`<name>.topk_index` int32 and `<name>.topk_value`)
 *  - `raw`:       stored as it is.
 */
import { type DType, type HostTensor, type TypedArray, elementCount, toFloat32 } from './dtype.ts';
import { f32BitsToF16Range, f32ToF16, floatBits } from './half.ts';

export type CaptureLayout = 'kv' | 'hidden' | 'attention' | 'raw';

export interface CaptureOp {
  /** Name stored in the blob (`<name>.topk_index`/`.topk_value` for top-k attention). */
  name: string;
  /** Runtime output it reads (`present.3.key`, a tap tensor, `image_features`). */
  source: string;
  layout: CaptureLayout;
  /** Token rows to keep (sequence positions; attention: query rows), in order. Absent = all. */
  rows?: number[];
  /** Heads to keep (kv: key/value heads; attention: query heads). Absent = all. */
  heads?: number[];
  /** Attention only: query heads in the model (to read [heads·b, q, k] exports). */
  attentionHeads?: number;
  /** Attention only: keep every key (`full`), the k largest per row, or the sum over the kept heads. */
  attention?: { mode: 'full' } | { mode: 'topk'; k: number } | { mode: 'headsum' };
}

/** Stored dtype of float captures. */
export type StoreFloat = 'float32' | 'float16';

/** Attention shapes as [b, heads, q, k] whatever the exporter wrote (same bytes, same order). */
export function attentionShape(shape: readonly number[], heads: number): number[] {
  if (shape.length === 4) return [...shape];
  if (shape.length === 3) return [shape[0]! / heads, heads, shape[1]!, shape[2]!];
  if (shape.length === 5) return [shape[0]!, shape[1]! * shape[2]!, shape[3]!, shape[4]!];
  throw new Error(`attention tensor of shape [${shape.join(', ')}] has no [batch, heads, q, k] reading`);
}

export interface CapturedShape {
  name: string;
  dtype: DType;
  shape: number[];
}

/** The tensors an op stores, from its source's shape alone (no data needed). */
export function captureShape(op: CaptureOp, source: readonly number[], dtype: StoreFloat): CapturedShape[] {
  const pick = (n: number, sel?: number[]) => (sel ? sel.length : n);
  switch (op.layout) {
    case 'raw':
      return [{ name: op.name, dtype, shape: [...source] }];
    case 'kv': {
      const [, h = 0, s = 0, d = 0] = source;
      return [{ name: op.name, dtype, shape: [pick(h, op.heads), pick(s, op.rows), d] }];
    }
    case 'hidden': {
      const [b = 1, s = 0, w = 0] = source;
      return [{ name: op.name, dtype, shape: [b, pick(s, op.rows), w] }];
    }
    case 'attention': {
      const [b = 1, h = 0, q = 0, k = 0] = attentionShape(source, op.attentionHeads ?? source[1] ?? 1);
      const rows = pick(q, op.rows);
      const heads = pick(h, op.heads);
      const mode = op.attention ?? { mode: 'full' };
      if (mode.mode === 'headsum') return [{ name: op.name, dtype, shape: [b, 1, rows, k] }];
      if (mode.mode === 'topk') {
        const kk = Math.min(mode.k, k);
        return [
          { name: `${op.name}.topk_index`, dtype: 'int32', shape: [b, heads, rows, kk] },
          { name: `${op.name}.topk_value`, dtype, shape: [b, heads, rows, kk] },
        ];
      }
      return [{ name: op.name, dtype, shape: [b, heads, rows, k] }];
    }
  }
}

function checkIndex(what: string, i: number, n: number, op: CaptureOp): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new Error(`capture ${op.name}: ${what} ${i} is outside 0..${n - 1} of ${op.source}`);
}

/**
 * Memory for a produced capture: shared where the platform has it, so the blob writer's
 * hashing thread reads the bytes in place instead of receiving a copy (store/hash-worker.ts).
 */
function captureBuffer(bytes: number): ArrayBufferLike {
  return typeof SharedArrayBuffer === 'function' ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
}

/**
 * Runs of consecutive row indices in `rows` as [first row, length] pairs: image tokens are one
 * contiguous run per image, so a K/V head is copied (or converted) in one call, not row by row
 * (at 7B shapes: 32 calls per tensor instead of 18,432).
 */
function rowRuns(rows: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let j = 0; j < rows.length; ) {
    let n = 1;
    while (j + n < rows.length && rows[j + n] === rows[j]! + n) n++;
    runs.push([rows[j]!, n]);
    j += n;
  }
  return runs;
}

/** Copies rows of [outer, inner-blocks] data: out[o][j] = src[o][sel[j]], each a `block`-element run (float32 values or fp16 bits). */
function gatherBlocks<T extends Float32Array | Uint16Array>(src: T, outerSel: number[], rowSel: number[], rowN: number, block: number): T {
  const n = outerSel.length * rowSel.length * block;
  const out = (src instanceof Uint16Array ? new Uint16Array(captureBuffer(n * 2), 0, n) : new Float32Array(captureBuffer(n * 4), 0, n)) as T;
  const runs = rowRuns(rowSel);
  let at = 0;
  for (const o of outerSel) {
    for (const [r, len] of runs) {
      const from = (o * rowN + r) * block;
      out.set(src.subarray(from, from + len * block) as never, at);
      at += len * block;
    }
  }
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The float32 values an op keeps (before the store dtype), and int32 indices for top-k. */
function captureFloats(op: CaptureOp, t: HostTensor): { values: Float32Array; index?: Int32Array } {
  const src = toFloat32(t);
  switch (op.layout) {
    case 'raw':
      return { values: src };
    case 'kv': {
      const [, h = 0, s = 0, d = 0] = t.shape;
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      if (!op.heads && !op.rows) return { values: src };
      return { values: gatherBlocks(src, op.heads ?? range(h), op.rows ?? range(s), s, d) };
    }
    case 'hidden': {
      const [b = 1, s = 0, w = 0] = t.shape;
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      if (!op.rows) return { values: src };
      return { values: gatherBlocks(src, range(b), op.rows, s, w) };
    }
    case 'attention': {
      const [b = 1, h = 0, q = 0, k = 0] = attentionShape(t.shape, op.attentionHeads ?? t.shape[1] ?? 1);
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('query row', i, q, op));
      const heads = op.heads ?? range(h);
      const rows = op.rows ?? range(q);
      const mode = op.attention ?? { mode: 'full' };
      const outer = range(b).flatMap((bi) => heads.map((hi) => bi * h + hi));
      if (mode.mode === 'full') return { values: op.heads || op.rows ? gatherBlocks(src, outer, rows, q, k) : src };
      if (mode.mode === 'headsum') {
        const out = new Float32Array(b * rows.length * k);
        for (let bi = 0; bi < b; bi++)
          for (const hi of heads)
            rows.forEach((r, j) => {
              const from = ((bi * h + hi) * q + r) * k;
              const to = (bi * rows.length + j) * k;
              for (let x = 0; x < k; x++) out[to + x]! += src[from + x]!;
            });
        return { values: out };
      }
      // Top-k per row: largest first, ties to the lower key index (a stable order anyone can recompute).
      const kk = Math.min(mode.k, k);
      const values = new Float32Array(outer.length * rows.length * kk);
      const index = new Int32Array(values.length);
      const order = new Int32Array(k);
      let at = 0;
      for (const o of outer) {
        for (const r of rows) {
          const from = (o * q + r) * k;
          for (let x = 0; x < k; x++) order[x] = x;
          const row = src.subarray(from, from + k);
          const sorted = Array.from(order).sort((x, y) => row[y]! - row[x]! || x - y);
          for (let j = 0; j < kk; j++) {
            index[at + j] = sorted[j]!;
            values[at + j] = row[sorted[j]!]!;
          }
          at += kk;
        }
      }
      return { values, index };
    }
  }
}

/**
 * Applies an op to a runtime output: the stored tensors, in the store dtype (fp16 through the
 * fast converter). Callers producing one op at a time keep one op's data alive at a time.
 */
/**
 * K/V and hidden-state rows stored as fp16, gathered and converted in one pass (no float32
 * copy of the rows first): the store's hot path at 7B sizes. Null for other ops (general path).
 */
function gatherToF16(op: CaptureOp, t: HostTensor): Uint16Array | null {
  if (t.dtype !== 'float32' || (op.layout !== 'kv' && op.layout !== 'hidden')) return null;
  const src = t.data as Float32Array;
  let outer: number[];
  let rows: number[];
  let rowN: number;
  let block: number;
  if (op.layout === 'kv') {
    const [, h = 0, s = 0, d = 0] = t.shape;
    (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
    (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
    [outer, rows, rowN, block] = [op.heads ?? range(h), op.rows ?? range(s), s, d];
  } else {
    const [b = 1, s = 0, w = 0] = t.shape;
    (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
    [outer, rows, rowN, block] = [range(b), op.rows ?? range(s), s, w];
  }
  const bits = floatBits(src);
  const n = outer.length * rows.length * block;
  const out = new Uint16Array(captureBuffer(n * 2), 0, n);
  const runs = rowRuns(rows);
  let at = 0;
  for (const o of outer) {
    for (const [r, len] of runs) {
      f32BitsToF16Range(bits, (o * rowN + r) * block, len * block, out, at);
      at += len * block;
    }
  }
  return out;
}

/**
 * fp16 sources stored as fp16 (an fp16 export, or a float32 output the runtime converted: taps.ts
 * fp16TapName): rows and heads are copied as bits, never through float32. Null where values must
 * be computed (top-k, head sums: ranked and summed in float32 from the fp32 source instead).
 */
function gatherF16(op: CaptureOp, t: HostTensor): Uint16Array | null {
  if (t.dtype !== 'float16') return null;
  const src = t.data as Uint16Array;
  switch (op.layout) {
    case 'raw':
      return src;
    case 'kv': {
      const [, h = 0, s = 0, d = 0] = t.shape;
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return op.heads || op.rows ? gatherBlocks(src, op.heads ?? range(h), op.rows ?? range(s), s, d) : src;
    }
    case 'hidden': {
      const [b = 1, s = 0, w = 0] = t.shape;
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return op.rows ? gatherBlocks(src, range(b), op.rows, s, w) : src;
    }
    case 'attention': {
      if ((op.attention ?? { mode: 'full' }).mode !== 'full') return null;
      const [b = 1, h = 0, q = 0, k = 0] = attentionShape(t.shape, op.attentionHeads ?? t.shape[1] ?? 1);
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('query row', i, q, op));
      if (!op.heads && !op.rows) return src;
      const outer = range(b).flatMap((bi) => (op.heads ?? range(h)).map((hi) => bi * h + hi));
      return gatherBlocks(src, outer, op.rows ?? range(q), q, k);
    }
  }
}

/**
 * An fp16 capture of an fp16 source in shared memory, as views of the source: one per (head or
 * batch, run of consecutive rows). The store writes and hashes them in place — no gathered copy —
 * so the source must not change until the blob's digest (the worker drops it only afterwards).
 * Null where the values must be gathered or computed (other memory, top-k, head sums, float32).
 */
export function captureViews(op: CaptureOp, t: HostTensor, dtype: StoreFloat): Uint8Array[] | null {
  if (dtype !== 'float16' || t.dtype !== 'float16' || typeof SharedArrayBuffer !== 'function' || !(t.data.buffer instanceof SharedArrayBuffer)) return null;
  const src = t.data as Uint16Array;
  const view = (from: number, n: number) => new Uint8Array(src.buffer, src.byteOffset + from * 2, n * 2);
  const blocks = (outer: number[], rows: number[], rowN: number, block: number) => {
    const runs = rowRuns(rows);
    return outer.flatMap((o) => runs.map(([r, len]) => view((o * rowN + r) * block, len * block)));
  };
  switch (op.layout) {
    case 'raw':
      return [view(0, src.length)];
    case 'kv': {
      const [, h = 0, s = 0, d = 0] = t.shape;
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return blocks(op.heads ?? range(h), op.rows ?? range(s), s, d);
    }
    case 'hidden': {
      const [b = 1, s = 0, w = 0] = t.shape;
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return blocks(range(b), op.rows ?? range(s), s, w);
    }
    case 'attention':
      return null;
  }
}

export function applyCapture(op: CaptureOp, t: HostTensor, dtype: StoreFloat): Record<string, HostTensor> {
  const shapes = captureShape(op, t.shape, dtype);
  if (dtype === 'float16') {
    const bits = gatherF16(op, t);
    if (bits) {
      const s = shapes[0]!;
      if (bits.length !== elementCount(s.shape)) throw new Error(`capture ${s.name}: ${bits.length} values for shape [${s.shape.join(', ')}]`);
      return { [s.name]: { dtype: s.dtype, shape: s.shape, data: bits } };
    }
    const fused = gatherToF16(op, t);
    if (fused) {
      const s = shapes[0]!;
      if (fused.length !== elementCount(s.shape)) throw new Error(`capture ${s.name}: ${fused.length} values for shape [${s.shape.join(', ')}]`);
      return { [s.name]: { dtype: s.dtype, shape: s.shape, data: fused } };
    }
  }
  const { values, index } = captureFloats(op, t);
  const toStore = (v: Float32Array): TypedArray => (dtype === 'float16' ? f32ToF16(v) : v);
  const out: Record<string, HostTensor> = {};
  for (const s of shapes) {
    const data = s.dtype === 'int32' ? index! : toStore(values);
    if (data.length !== elementCount(s.shape)) throw new Error(`capture ${s.name}: ${data.length} values for shape [${s.shape.join(', ')}]`);
    out[s.name] = { dtype: s.dtype, shape: s.shape, data };
  }
  return out;
}
