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

/** At submit: the run is marked as on the cluster (no workers yet), so a restarted engine knows not to run it itself. */
export function markClusterRun(store: Store, runId: string, queue: string, results: string): void {
  const run = store.runs.get(runId);
  const provenance = { ...run.provenance, cluster: { queue, store: results, workers: [] } satisfies ClusterProvenance };
  store.db.prepare('UPDATE runs SET provenance = ? WHERE id = ?').run(JSON.stringify(provenance), runId);
}

/**
 * Called when an engine starts, before its queue resumes interrupted runs: a run that was on a cluster
 * queue when the last engine stopped is set `paused`, with what to do, rather than re-run here. The
 * queue's password was never stored, so re-attaching (`cluster/attach`) takes the URL again; `jobs/resume`
 * runs its pending items here instead.
 */
export function holdClusterRuns(store: Store): string[] {
  const held: string[] = [];
  for (const run of [...store.runs.list('running'), ...store.runs.list('queued')]) {
    const c = run.provenance.cluster;
    if (!c) continue;
    try {
      store.runs.setStatus(run.id, 'paused', `was running on cluster queue ${c.queue} (result store ${c.store}) when the engine stopped: re-attach with the queue URL (cluster/attach; items the workers finished meanwhile are merged), or resume to run the ${run.total - run.done - run.failed} pending items here`);
      held.push(run.id);
    } catch (e) {
      // E.g. a full disk: the engine still starts (as the queue's resume does), and says which run it could not hold.
      console.error(`loupe: cannot hold cluster run ${run.id}: ${(e as Error).message}`);
    }
  }
  return held;
}

/** The run is taken back from the cluster (resumed here): a later restart must not hold it again. */
export function releaseClusterRun(store: Store, runId: string): void {
  const run = store.runs.get(runId);
  if (!run.provenance.cluster) return;
  const { cluster: _dropped, ...provenance } = run.provenance;
  store.db.prepare('UPDATE runs SET provenance = ? WHERE id = ?').run(JSON.stringify(provenance), runId);
}
