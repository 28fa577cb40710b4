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
 * What a copy-like op keeps of its source, with its indices checked once: for each `outer` block
 * (a K/V head, a batch × attention head, a batch) the `rows` (in order) of `block` elements, rows
 * numbered 0..rowN−1 within a block. `all` when nothing is dropped. Null for `raw` (the source as it is).
 */
interface Selection {
  outer: number[];
  rows: number[];
  rowN: number;
  block: number;
  all: boolean;
}

function selectionOf(op: CaptureOp, shape: readonly number[]): Selection | null {
  switch (op.layout) {
    case 'raw':
      return null;
    case 'kv': {
      const [, h = 0, s = 0, d = 0] = shape;
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return { outer: op.heads ?? range(h), rows: op.rows ?? range(s), rowN: s, block: d, all: !op.heads && !op.rows };
    }
    case 'hidden': {
      const [b = 1, s = 0, w = 0] = shape;
      (op.rows ?? []).forEach((i) => checkIndex('position', i, s, op));
      return { outer: range(b), rows: op.rows ?? range(s), rowN: s, block: w, all: !op.rows };
    }
    case 'attention': {
      const [b = 1, h = 0, q = 0, k = 0] = attentionShape(shape, op.attentionHeads ?? shape[1] ?? 1);
      (op.heads ?? []).forEach((i) => checkIndex('head', i, h, op));
      (op.rows ?? []).forEach((i) => checkIndex('query row', i, q, op));
      const outer = range(b).flatMap((bi) => (op.heads ?? range(h)).map((hi) => bi * h + hi));
      return { outer, rows: op.rows ?? range(q), rowN: q, block: k, all: !op.heads && !op.rows };
    }
  }
}

/** Ops whose stored values are source elements as they are (full attention included); top-k and head sums compute theirs. */
function copiesElements(op: CaptureOp): boolean {
  return op.layout !== 'attention' || (op.attention ?? { mode: 'full' }).mode === 'full';
}

/**
 * The kept elements as [first element, count] runs in stored order, consecutive rows merged:
 * image tokens are one contiguous run per image, so a K/V head is one run, not one per row
 * (at 7B shapes: 32 copies per tensor instead of 18,432).
 */
function elementRuns(sel: Selection): [number, number][] {
  const rowRuns: [number, number][] = [];
  for (let j = 0; j < sel.rows.length; ) {
    let n = 1;
    while (j + n < sel.rows.length && sel.rows[j + n] === sel.rows[j]! + n) n++;
    rowRuns.push([sel.rows[j]!, n]);
    j += n;
  }
  return sel.outer.flatMap((o) => rowRuns.map(([r, n]): [number, number] => [(o * sel.rowN + r) * sel.block, n * sel.block]));
}

/** The runs copied into one new (shared where possible) array of the source's type: float32 values or fp16 bits. */
function copyRuns<T extends Float32Array | Uint16Array>(src: T, runs: [number, number][]): T {
  const n = runs.reduce((a, [, len]) => a + len, 0);
  const out = (src instanceof Uint16Array ? new Uint16Array(captureBuffer(n * 2), 0, n) : new Float32Array(captureBuffer(n * 4), 0, n)) as T;
  let at = 0;
  for (const [from, len] of runs) {
    out.set(src.subarray(from, from + len) as never, at);
    at += len;
  }
  return out;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** The float32 values an op keeps (before the store dtype), and int32 indices for top-k. */
function captureFloats(op: CaptureOp, t: HostTensor): { values: Float32Array; index?: Int32Array } {
  const src = toFloat32(t);
  const sel = selectionOf(op, t.shape);
  if (!sel) return { values: src };
  if (copiesElements(op)) return { values: sel.all ? src : copyRuns(src, elementRuns(sel)) };
  const [b = 1, h = 0, q = 0, k = 0] = attentionShape(t.shape, op.attentionHeads ?? t.shape[1] ?? 1);
  const mode = op.attention as { mode: 'headsum' } | { mode: 'topk'; k: number };
  if (mode.mode === 'headsum') {
    const out = new Float32Array(b * sel.rows.length * k);
    // outer is batch-major (bi · h + head), so each batch's heads are summed in the kept order.
    for (const o of sel.outer) {
      const bi = Math.floor(o / h);
      sel.rows.forEach((r, j) => {
        const from = (o * q + r) * k;
        const to = (bi * sel.rows.length + j) * k;
        for (let x = 0; x < k; x++) out[to + x]! += src[from + x]!;
      });
    }
    return { values: out };
  }
  // Top-k per row: largest first, ties to the lower key index (a stable order anyone can recompute).
  const kk = Math.min(mode.k, k);
  const values = new Float32Array(sel.outer.length * sel.rows.length * kk);
  const index = new Int32Array(values.length);
  const order = new Int32Array(k);
  let at = 0;
  for (const o of sel.outer) {
    for (const r of sel.rows) {
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

/**
 * The fp16 bits a copy-like op stores, without a float32 copy of the kept elements first: an fp16
 * source's bits copied as they are (an fp16 export, or a float32 output the runtime converted:
 * taps.ts fp16TapName), a float32 source's converted run by run (half.ts, bit-equal to f32ToF16) —
 * the store's hot path at 7B sizes. Null where values must be computed (top-k, head sums: ranked
 * and summed in float32) or for a float32 `raw` source (the general path converts it whole).
 */
function copyToF16(op: CaptureOp, t: HostTensor): Uint16Array | null {
  if (!copiesElements(op) || (t.dtype !== 'float16' && t.dtype !== 'float32')) return null;
  const sel = selectionOf(op, t.shape);
  if (t.dtype === 'float16') {
    const src = t.data as Uint16Array;
    return !sel || sel.all ? src : copyRuns(src, elementRuns(sel));
  }
  if (!sel) return null;
  const runs = elementRuns(sel);
  const bits = floatBits(t.data as Float32Array);
  const out = new Uint16Array(captureBuffer(runs.reduce((a, [, len]) => a + len, 0) * 2));
  let at = 0;
  for (const [from, len] of runs) {
    f32BitsToF16Range(bits, from, len, out, at);
    at += len;
  }
  return out;
}

/**
 * An fp16 capture of an fp16 source in shared memory, as views of the source: one per run of kept
 * elements. The store writes and hashes them in place — no gathered copy — so the source must not
 * change until the blob's digest (the worker drops it only afterwards). Null where the values must
 * be gathered or computed (other memory, top-k, head sums, float32).
 */
export function captureViews(op: CaptureOp, t: HostTensor, dtype: StoreFloat): Uint8Array[] | null {
  if (dtype !== 'float16' || t.dtype !== 'float16' || !copiesElements(op) || typeof SharedArrayBuffer !== 'function' || !(t.data.buffer instanceof SharedArrayBuffer)) return null;
  const src = t.data as Uint16Array;
  const sel = selectionOf(op, t.shape);
  const runs: [number, number][] = !sel || sel.all ? [[0, src.length]] : elementRuns(sel);
  return runs.map(([from, len]) => new Uint8Array(src.buffer, src.byteOffset + from * 2, len * 2));
}

/**
 * Applies an op to a runtime output: the stored tensors, in the store dtype (fp16 through the
 * fast converter). Callers producing one op at a time keep one op's data alive at a time.
 */
export function applyCapture(op: CaptureOp, t: HostTensor, dtype: StoreFloat): Record<string, HostTensor> {
  const shapes = captureShape(op, t.shape, dtype);
  const bits = dtype === 'float16' ? copyToF16(op, t) : null;
  if (bits) {
    const s = shapes[0]!;
    if (bits.length !== elementCount(s.shape)) throw new Error(`capture ${s.name}: ${bits.length} values for shape [${s.shape.join(', ')}]`);
    return { [s.name]: { dtype: s.dtype, shape: s.shape, data: bits } };
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
