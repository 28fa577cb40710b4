/**
 * Merging finished items from the result store into this engine's SQLite + blob store, as the
 * local queue would have stored them: the same result row, the same tensor rows, the same blob
 * (re-encoded from the decoded tensors, which must give the bytes the worker hashed — checked).
 * Keyed by run + item and applied only to items still pending in the ledger, so an item that
 * was computed twice (a stalled shard redone) is merged once.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { NewTensor } from '../store/repos/runs.ts';
import type { Store } from '../store/store.ts';
import type { ItemRecord, ResultStore } from './result-store.ts';

export interface Merged {
  itemId: string;
  ok: boolean;
  worker: string;
  ep: string;
}

/** Merges one item record. A record for another model hash is refused (the worker should have refused the shard). */
export function mergeItem(store: Store, results: ResultStore, runId: string, record: ItemRecord, modelHash: string): Merged {
  const { itemId } = record;
  if (record.modelHash !== modelHash) {
    store.runs.failItem(runId, itemId, `computed by worker ${record.worker} with model hash ${record.modelHash.slice(0, 12)}…, the run's is ${modelHash.slice(0, 12)}…; not merged`);
    return { itemId, ok: false, worker: record.worker, ep: record.ep };
  }
  if (!record.ok) {
    store.runs.failItem(runId, itemId, record.error);
    return { itemId, ok: false, worker: record.worker, ep: record.ep };
  }
  const tensors: NewTensor[] = [];
  if (record.blob) {
    const decoded = results.readBlob(record.blob);
    const sha = store.blobs.putTensors(decoded);
    if (sha !== record.blob) throw new LoupeError('storage', `item ${itemId} of run ${runId}: blob ${record.blob} from ${results.location} re-encodes to ${sha}; not merged`);
    for (const t of record.tensors) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, blob: sha });
  }
  store.runs.completeItem(runId, itemId, { metrics: record.metrics, values: record.values }, tensors);
  return { itemId, ok: true, worker: record.worker, ep: record.ep };
}

/** Merges every item of the run that the store has and the ledger still calls pending. */
export function mergeAvailable(store: Store, results: ResultStore, runId: string, modelHash: string): Merged[] {
  const pending = new Set(store.runs.pendingItems(runId));
  if (!pending.size) return [];
  const out: Merged[] = [];
  for (const itemId of results.listItems(runId)) {
    if (!pending.has(itemId)) continue;
    out.push(mergeItem(store, results, runId, results.readItem(runId, itemId), modelHash));
  }
  return out;
}
