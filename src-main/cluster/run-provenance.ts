/**
 * Where a cluster run's items were computed, written into the run's provenance when it finishes:
 * the queue, the result store, and per worker its execution provider, model hash and item count.
 * (A store method of our own over the Store's db handle: store/ is another module's.)
 */
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { now } from '../store/database.ts';
import type { Store } from '../store/store.ts';
import type { ResultStore } from './result-store.ts';

export interface ClusterProvenance {
  queue: string;
  store: string;
  workers: { worker: string; ep: string; modelHash: string; items: number }[];
}

export function clusterProvenance(results: ResultStore, runId: string, queue: string, ledger: Set<string>): ClusterProvenance {
  const byWorker = new Map<string, ClusterProvenance['workers'][number]>();
  for (const itemId of results.listItems(runId)) {
    if (!ledger.has(itemId)) continue;
    const r = results.readItem(runId, itemId);
    const key = `${r.worker}\0${r.ep}\0${r.modelHash}`;
    const w = byWorker.get(key) ?? { worker: r.worker, ep: r.ep, modelHash: r.modelHash, items: 0 };
    w.items++;
    byWorker.set(key, w);
  }
  return { queue, store: results.location, workers: [...byWorker.values()].sort((a, b) => a.worker.localeCompare(b.worker)) };
}

/**
 * Records the cluster provenance; the run's execution provider becomes the workers' (one name when
 * they agree, as a local run's), since they, not this engine, computed it.
 */
export function recordClusterProvenance(store: Store, run: RunInfo, cluster: ClusterProvenance): void {
  const eps = [...new Set(cluster.workers.map((w) => w.ep))].sort();
  const provenance = { ...run.provenance, ...(eps.length && { executionProvider: eps.join(',') }), cluster };
  store.db.prepare('UPDATE runs SET provenance = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(provenance), now(), run.id);
}
