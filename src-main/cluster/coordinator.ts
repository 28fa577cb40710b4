/**
 * The submitting side (desktop engine, `loupe run|sweep --queue`): sends runs to the queue as
 * shards, follows the workers' progress, merges finished items into this engine's store as they
 * land in the result store, and finishes each run as the local queue would (done/partial/failed).
 *
 * It keeps no lease or heartbeat of its own: shards are BullMQ jobs (retries with backoff,
 * stalled-job recovery). What it adds is reconciliation: whenever the queue is reachable again
 * (e.g. Redis restarted without its data) it re-adds the shards that still have pending items —
 * a no-op for shards the queue still holds (same job id) — and fails the items of shards that
 * BullMQ gave up on, with BullMQ's reason.
 */
import { join } from 'node:path';
import { Job, Queue, QueueEvents } from 'bullmq';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError, toErrorPayload } from '../../src-shared/contract/errors.ts';
import type { EngineContext } from '../engine/engine-context.ts';
import { CANCEL_TTL_S, cancelKey } from './cancel.ts';
import { type ConnectionState, ConnectionWatch } from './connection-watch.ts';
import { mergeAvailable } from './merge.ts';
import { type QueueConnection, ioredisOptions, parseQueueUrl } from './queue-url.ts';
import { type ResultStore, openResultStore } from './result-store.ts';
import { clusterProvenance, markClusterRun, recordClusterProvenance } from './run-provenance.ts';
import { DEFAULT_SHARD_ITEMS, QUEUE_NAME, type ShardData, shardJobId, splitIntoShards } from './shard.ts';

export interface ClusterTarget {
  /** redis:// or rediss:// URL, possibly with a password (never logged: queue-url.ts redacts it). */
  queue: string;
  /** The shared result store as this machine sees it; default `<data dir>/cluster-results`. */
  store?: string | undefined;
  shardItems?: number | undefined;
}

interface Link {
  conn: QueueConnection;
  queue: Queue<ShardData>;
  events: QueueEvents;
  watch: ConnectionWatch;
}

interface WorkerStat {
  worker: string;
  ep: string;
  done: number;
  first: number;
  last: number;
}

interface Tracked {
  runId: string;
  link: Link;
  store: ResultStore;
  shards: Map<string, { from: number; items: string[] }>;
  workers: Map<string, WorkerStat>;
  started: number;
  merged: number;
  finished: Promise<RunInfo>;
  resolve: (r: RunInfo) => void;
}

/** Job options: BullMQ retries a failed shard with backoff; finished jobs are kept a while for `cluster/status`. */
const JOB_OPTS = { attempts: 3, backoff: { type: 'exponential', delay: 2000 }, removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } } as const;
const MERGE_EVERY_MS = 500;
/** A full pass over the shards with items outstanding (one Redis read each); also at once after the queue comes back. */
const RECONCILE_EVERY_MS = 15_000;
const COMPLETED_GRACE_MS = 60_000;

export class ClusterCoordinator {
  private readonly engine: EngineContext;
  private readonly links = new Map<string, Link>();
  private readonly runs = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | null = null;
  private lastReconcile = 0;
  private reconciling = false;

  constructor(engine: EngineContext) {
    this.engine = engine;
  }

  /** Connects to the queue (or fails within seconds, naming the URL without its password). */
  private async link(url: string): Promise<Link> {
    const known = this.links.get(url);
    if (known) return known;
    const conn = parseQueueUrl(url);
    const watch = new ConnectionWatch(conn, (s) => this.onConnection(s));
    try {
      await watch.connect();
    } catch (e) {
      await watch.close();
      throw new LoupeError('bad-input', `cannot reach queue ${conn.display}: ${(e as Error).message}. Is redis-server running there (or the ssh tunnel open; docs/scale-out.md)?`);
    }
    const queue = new Queue<ShardData>(QUEUE_NAME, { connection: ioredisOptions(conn) });
    const events = new QueueEvents(QUEUE_NAME, { connection: ioredisOptions(conn) });
    // Connection errors are reported by the watch, once per outage; these would repeat every retry.
    queue.on('error', () => undefined);
    events.on('error', () => undefined);
    const link: Link = { conn, queue, events, watch };
    events.on('progress', ({ jobId, data }) => this.onProgress(jobId, data));
    events.on('completed', ({ jobId }) => void this.onShardEnded(link, jobId));
    events.on('failed', ({ jobId }) => void this.onShardEnded(link, jobId));
    this.links.set(url, link);
    return link;
  }

  private onConnection(s: ConnectionState): void {
    this.engine.emit('cluster/connection', s);
    // Back after an outage: the queue may have lost its jobs (Redis restarted without persistence).
    if (s.connected) this.lastReconcile = 0;
  }

  /** Connects, creates the runs (`create`, after the queue answered), and sends their pending items as shards. */
  async submit(target: ClusterTarget, create: () => string[]): Promise<RunInfo[]> {
    const link = await this.link(target.queue);
    const store = openResultStore(target.store ?? join(this.engine.options.dataDir, 'cluster-results'));
    const size = target.shardItems ?? DEFAULT_SHARD_ITEMS;
    if (!Number.isInteger(size) || size < 1) throw new LoupeError('bad-input', `shard size must be a positive integer, not ${size}`);
    const out: RunInfo[] = [];
    for (const runId of create()) out.push(await this.track(runId, link, store, size));
    return out;
  }

  /**
   * Takes up a run that was on the cluster when the last engine stopped (held `paused` by
   * run-provenance.ts): merges what the workers finished meanwhile and re-adds the shards still
   * outstanding (no-ops for those the queue still holds).
   */
  async attach(runId: string, target: ClusterTarget): Promise<RunInfo> {
    const run = this.engine.store.runs.get(runId);
    if (this.runs.has(runId)) throw new LoupeError('conflict', `run ${runId} is already followed on ${this.runs.get(runId)!.link.conn.display}`);
    if (run.status !== 'paused' || !run.provenance.cluster) throw new LoupeError('conflict', `run ${runId} is ${run.status}${run.provenance.cluster ? '' : ' and was never sent to a cluster'}: only a paused cluster run can be re-attached`);
    const link = await this.link(target.queue);
    const store = openResultStore(target.store ?? run.provenance.cluster.store);
    return this.track(runId, link, store, target.shardItems ?? DEFAULT_SHARD_ITEMS);
  }

  private async track(runId: string, link: Link, store: ResultStore, size: number): Promise<RunInfo> {
    markClusterRun(this.engine.store, runId, link.conn.display, store.location);
    const run = this.engine.store.runs.setStatus(runId, 'running');
    const shards = new Map(splitIntoShards(pendingWithOrd(this.engine, runId), size).map((s) => [shardJobId(runId, s.from, s.items.length), s]));
    let resolve!: (r: RunInfo) => void;
    const finished = new Promise<RunInfo>((r) => (resolve = r));
    const t: Tracked = { runId, link, store, shards, workers: new Map(), started: Date.now(), merged: 0, finished, resolve };
    this.runs.set(runId, t);
    this.engine.emit('job/state', run);
    this.timer ??= setInterval(() => void this.tick(), MERGE_EVERY_MS);
    // Items already in the store (a re-attach) are merged first; only what is still pending is queued.
    this.mergeRun(t);
    if (this.runs.has(runId)) await this.addShards(t, [...shards.keys()].filter((id) => shards.get(id)!.items.some((i) => !store.has(runId, i))));
    return this.engine.store.runs.get(runId);
  }

  private async addShards(t: Tracked, jobIds: string[]): Promise<void> {
    const run = this.engine.store.runs.get(t.runId);
    const model = this.engine.store.models.get(run.modelId);
    const dataset = this.engine.store.datasets.get(run.datasetId);
    await t.link.queue.addBulk(
      jobIds.map((jobId) => {
        const s = t.shards.get(jobId)!;
        const data: ShardData = {
          v: 1,
          runId: run.id,
          kind: run.kind,
          spec: run.spec,
          model: { id: model.id, name: model.name, hash: run.provenance.modelHash, path: model.path },
          dataset: { id: dataset.id, name: dataset.name, hash: run.provenance.datasetHash, path: dataset.path },
          from: s.from,
          items: s.items,
          store: t.store.location,
        };
        return { name: run.id, data, opts: { ...JOB_OPTS, jobId } };
      }),
    );
  }

  owns(runId: string): boolean {
    return this.runs.has(runId);
  }

  /** Resolves with each run once it finished (or was cancelled). */
  async wait(runIds: string[]): Promise<RunInfo[]> {
    return Promise.all(runIds.map((id) => this.runs.get(id)?.finished ?? Promise.resolve(this.engine.store.runs.get(id))));
  }

  async cancel(runId: string): Promise<RunInfo> {
    const t = this.runs.get(runId);
    if (!t) throw new LoupeError('not-found', `run ${runId} is not running on a cluster queue from this engine`);
    await t.link.watch.client.set(cancelKey(runId), '1', 'EX', CANCEL_TTL_S);
    // Waiting shards go at once; a running one stops before its next item (the worker checks the key).
    for (const jobId of t.shards.keys()) await t.link.queue.remove(jobId).catch(() => undefined);
    this.mergeRun(t);
    // Its last items may just have landed: a run that finished is not cancelled after the fact.
    if (!this.runs.has(runId)) return this.engine.store.runs.get(runId);
    const run = this.engine.store.runs.setStatus(runId, 'cancelled');
    this.untrack(t, run);
    return run;
  }

  status() {
    return {
      queues: [...this.links.values()].map((l) => l.watch.current),
      runs: [...this.runs.values()].map((t) => {
        const r = this.engine.store.runs.get(t.runId);
        return { runId: t.runId, queue: t.link.conn.display, done: r.done, failed: r.failed, total: r.total, etaMs: this.eta(t, r), workers: [...t.workers.values()].map((w) => workerView(w)) };
      }),
    };
  }

  private eta(t: Tracked, r: RunInfo): number | null {
    const rate = t.merged / (Date.now() - t.started);
    return rate > 0 ? Math.round((r.total - r.done - r.failed) / rate) : null;
  }

  private onProgress(jobId: string, data: unknown): void {
    const d = data as { worker?: string; ep?: string; runId?: string };
    const t = d.runId ? this.runs.get(d.runId) : undefined;
    if (!t || !d.worker || !t.shards.has(jobId)) return;
    const now = Date.now();
    const w = t.workers.get(d.worker) ?? { worker: d.worker, ep: d.ep ?? '?', done: 0, first: now, last: now };
    w.done++;
    w.last = now;
    t.workers.set(d.worker, w);
    this.mergeRun(t);
    const r = this.engine.store.runs.get(t.runId);
    this.engine.emit('cluster/progress', { runId: t.runId, ...workerView(w), runDone: r.done, runFailed: r.failed, runTotal: r.total, etaMs: this.eta(t, r) });
  }

  private async onShardEnded(link: Link, jobId: string): Promise<void> {
    const t = [...this.runs.values()].find((x) => x.shards.has(jobId));
    if (!t) return;
    this.mergeRun(t);
    if (link.watch.current.connected) await this.checkShard(t, jobId).catch(() => undefined);
  }

  /**
   * A shard whose job is gone is re-added; one BullMQ failed for good fails its items that have no
   * result; one that completed without putting its items in our result store is a mismatched `--store`.
   */
  private async checkShard(t: Tracked, jobId: string, pending = new Set(this.engine.store.runs.pendingItems(t.runId))): Promise<void> {
    if (!this.runs.has(t.runId)) return;
    const missing = t.shards.get(jobId)!.items.filter((i) => pending.has(i) && !t.store.has(t.runId, i));
    if (!missing.length) return;
    const job = await Job.fromId<ShardData>(t.link.queue, jobId);
    if (!job) return this.addShards(t, [jobId]);
    const state = await job.getState();
    let reason: string | null = null;
    if (state === 'failed') reason = `shard ${jobId} failed on the cluster: ${job.failedReason ?? 'no reason given'}`;
    else if (state === 'completed' && !(job.returnvalue as { cancelled?: boolean } | null)?.cancelled) {
      // A shared folder may show another client's new files late (NFS attribute caching, up to a minute): wait before calling it a mismatch.
      if (Date.now() - (job.finishedOn ?? Date.now()) < COMPLETED_GRACE_MS) return;
      const w = (job.returnvalue as { worker?: string } | null)?.worker ?? 'a worker';
      reason = `shard ${jobId} completed on ${w} ${Math.round(COMPLETED_GRACE_MS / 1000)} s ago but its items are not in result store ${t.store.location}: do the worker's --store and this machine's store name the same shared folder?`;
    }
    if (!reason) return;
    for (const itemId of missing) this.engine.store.runs.failItem(t.runId, itemId, reason);
    this.maybeFinish(t);
  }

  private mergeRun(t: Tracked): void {
    try {
      const run = this.engine.store.runs.get(t.runId);
      const merged = mergeAvailable(this.engine.store, t.store, t.runId, run.provenance.modelHash);
      if (!merged.length) return;
      t.merged += merged.length;
      const r = this.engine.store.runs.get(t.runId);
      this.engine.emit('job/progress', { runId: t.runId, done: r.done, failed: r.failed, total: r.total, etaMs: this.eta(t, r), itemId: merged.at(-1)!.itemId });
      this.maybeFinish(t);
    } catch (e) {
      // A storage failure here (disk full, a corrupt blob in the shared folder) stops the merge of this run, with the reason.
      const run = this.engine.store.runs.setStatus(t.runId, 'failed', `merging from ${t.store.location}: ${toErrorPayload(e).message}`);
      this.untrack(t, run);
    }
  }

  private maybeFinish(t: Tracked): void {
    if (!this.runs.has(t.runId) || this.engine.store.runs.pendingItems(t.runId).length) return;
    const ledger = new Set(this.engine.store.runs.itemLedger(t.runId).map((i) => i.itemId));
    recordClusterProvenance(this.engine.store, this.engine.store.runs.get(t.runId), clusterProvenance(t.store, t.runId, t.link.conn.display, ledger));
    this.untrack(t, this.engine.store.runs.finish(t.runId));
  }

  private untrack(t: Tracked, run: RunInfo): void {
    this.runs.delete(t.runId);
    this.engine.emit('job/state', run);
    t.resolve(run);
    if (!this.runs.size && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private async tick(): Promise<void> {
    for (const t of [...this.runs.values()]) this.mergeRun(t);
    if (this.reconciling || Date.now() - this.lastReconcile < RECONCILE_EVERY_MS) return;
    this.reconciling = true;
    try {
      for (const t of [...this.runs.values()]) {
        if (!t.link.watch.current.connected) continue;
        const pending = new Set(this.engine.store.runs.pendingItems(t.runId));
        for (const jobId of t.shards.keys()) await this.checkShard(t, jobId, pending);
      }
      this.lastReconcile = Date.now();
    } catch {
      // The queue went away mid-check: the next tick after it returns tries again.
    } finally {
      this.reconciling = false;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const l of this.links.values()) {
      await l.events.close().catch(() => undefined);
      await l.queue.close().catch(() => undefined);
      await l.watch.close();
    }
    this.links.clear();
  }
}

function workerView(w: WorkerStat) {
  const secs = (w.last - w.first) / 1000;
  return { worker: w.worker, ep: w.ep, done: w.done, itemsPerSec: secs > 0 ? (w.done - 1) / secs : null };
}

/** The run's pending items with their ledger positions. */
function pendingWithOrd(engine: EngineContext, runId: string): { itemId: string; ord: number }[] {
  return engine.store.runs
    .itemLedger(runId)
    .map((l, ord) => ({ itemId: l.itemId, ord, status: l.status }))
    .filter((l) => l.status === 'pending');
}

const coordinators = new WeakMap<EngineContext, ClusterCoordinator>();

/** The engine's coordinator, created on first use (an engine that never uses a cluster opens no connection). */
export function clusterOf(engine: EngineContext): ClusterCoordinator {
  let c = coordinators.get(engine);
  if (!c) coordinators.set(engine, (c = new ClusterCoordinator(engine)));
  return c;
}

/** Closes the engine's queue connections, if it ever opened any. */
export async function closeCluster(engine: EngineContext): Promise<void> {
  await coordinators.get(engine)?.close();
  coordinators.delete(engine);
}
