/**
 * Runs in the compute worker: applies a capture request's ops to the forward pass's outputs
 * and streams the results straight into a content-addressed blob — tensors never cross to the
 * engine thread (no postMessage of whole items), each op's data is produced just before its
 * bytes are written and dropped after, and the engine only records the blob (BlobStore.adopt).
 */
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { type CaptureOp, type CapturedShape, type StoreFloat, applyCapture, captureShape, captureViews } from '../../../src-shared/tensor/capture-ops.ts';
import { BlobStore, type LazyTensor, type TensorBytes } from '../../store/blob-store.ts';
import type { StreamTimings } from '../../store/blob-io.ts';
import { type StreamRequest, accumulateStream, streamSources } from './stream-stats.ts';

export interface CaptureRequest {
  /** The data folder's blob root (the worker writes there; the engine records what it wrote). */
  blobRoot: string;
  chunkBytes?: number;
  dtype: StoreFloat;
  ops: CaptureOp[];
  /** Small tensors stored as they are (image_token_map, prompt_token_map). */
  extra?: Record<string, HostTensor>;
  /** Streaming statistics to update from this item's outputs (stream-stats.ts); nothing of the item is kept for them. */
  stream?: StreamRequest;
}

export interface StoredCapture {
  sha: string;
  size: number;
  tensors: CapturedShape[];
  /** Where the write's time went (produce = slicing + conversion, hash, waiting on the disk, fsync). */
  timings?: StreamTimings;
}

/** Outputs the ops read: the worker fetches exactly these from the runtime. */
export function captureSources(req: CaptureRequest): Set<string> {
  return new Set([...req.ops.map((o) => o.source), ...(req.stream ? streamSources(req.stream) : [])]);
}

const stores = new Map<string, BlobStore>();

/** Updates the item's streamed statistics, then writes its captures to one blob; undefined when there is nothing to store (statistics only). */
export async function storeCapture(req: CaptureRequest, outputs: (name: string) => HostTensor | undefined, release: (name: string) => void): Promise<StoredCapture | undefined> {
  if (req.stream) {
    accumulateStream(req.stream, outputs);
    const byOps = new Set(req.ops.map((o) => o.source));
    for (const s of streamSources(req.stream)) if (!byOps.has(s)) release(s);
  }
  if (!req.ops.length && !Object.keys(req.extra ?? {}).length) return undefined;
  const key = `${req.blobRoot}\u0000${req.chunkBytes ?? ''}`;
  let store = stores.get(key);
  if (!store) stores.set(key, (store = new BlobStore(req.blobRoot, null, req.chunkBytes ? { chunkBytes: req.chunkBytes } : {})));
  const lazy: Record<string, LazyTensor> = {};
  const shapes: CapturedShape[] = [];
  // Sources still needed by ops not yet produced: a source is released once its last op ran.
  const uses = new Map<string, number>();
  for (const op of req.ops) uses.set(op.source, (uses.get(op.source) ?? 0) + 1);
  for (const op of req.ops) {
    const src = outputs(op.source);
    if (!src) throw new Error(`capture ${op.name}: the forward pass produced no ${op.source}`);
    const produced = captureShape(op, src.shape, req.dtype);
    let memo: Record<string, TensorBytes> | null = null;
    let left = produced.length;
    for (const s of produced) {
      shapes.push(s);
      lazy[s.name] = {
        dtype: s.dtype,
        shape: s.shape,
        data: () => {
          if (!memo) {
            const source = outputs(op.source)!;
            // fp16 from the runtime in shared memory: written and hashed as views of the source, no copy.
            const views = captureViews(op, source, req.dtype);
            memo = views ? { [s.name]: { parts: views } } : Object.fromEntries(Object.entries(applyCapture(op, source, req.dtype)).map(([k, v]) => [k, v.data]));
            const n = uses.get(op.source)! - 1;
            uses.set(op.source, n);
            if (n === 0) release(op.source);
          }
          const d = memo[s.name]!;
          if (--left === 0) memo = null;
          return d;
        },
      };
    }
  }
  for (const [name, t] of Object.entries(req.extra ?? {})) {
    shapes.push({ name, dtype: t.dtype, shape: t.shape });
    lazy[name] = { dtype: t.dtype, shape: t.shape, data: () => t.data };
  }
  const { sha, size, timings } = await store.streamTensors(lazy, {}, { record: false });
  return { sha, size, tensors: shapes, timings };
}
