/**
 * `loupe worker`: takes shards from the BullMQ queue and runs them with the desktop's job runners,
 * writing each finished item to the result store. Everything about leases is BullMQ's: a job's
 * lock is renewed while the shard runs; a worker that dies stops renewing, and another worker's
 * stalled-job check puts the shard back in the queue. The new worker skips the items already in
 * the result store, so a dead worker loses at most its in-flight item.
 */
import { hostname } from 'node:os';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError, toErrorPayload } from '../../src-shared/contract/errors.ts';
import type { EngineContext } from '../engine/engine-context.ts';
import type { JobRunner, PreparedRun } from '../jobs/job-runner.ts';
import { ConnectionWatch, describe } from './connection-watch.ts';
import { forgetFingerprints, resolveDataset, resolveModel } from './model-identity.ts';
import { type QueueConnection, ioredisOptions } from './queue-url.ts';
import { type ResultStore, openResultStore } from './result-store.ts';
import { QUEUE_NAME, ShardData, type ShardResult } from './shard.ts';
import { cancelKey } from './cancel.ts';

export interface WorkerOptions {
  conn: QueueConnection;
  /** Overrides the shard's store location (the shared folder is mounted elsewhere on this box). */
  store?: string;
  concurrency: number;
  name?: string;
  /** BullMQ lock duration = stalled-check interval: how long a dead worker holds its shard. */
  lockMs: number;
  /** Progress and state lines (JSON) and human messages. */
  log: (line: Record<string, unknown>) => void;
  say: (message: string) => void;
}

/** Prepared runs are kept per run id while its shards keep coming; the oldest beyond this are disposed. */
const KEEP_PREPARED = 2;

export class ShardWorker {
  readonly name: string;
  private readonly engine: EngineContext;
  private readonly runners: Record<string, JobRunner>;
  private readonly opts: WorkerOptions;
  private readonly prepared = new Map<string, Promise<PreparedRun>>();
  private readonly stores = new Map<string, ResultStore>();
  private readonly watch: ConnectionWatch;
  private bull: Worker<ShardData, ShardResult> | null = null;

  constructor(engine: EngineContext, runners: Record<string, JobRunner>, opts: WorkerOptions) {
    this.engine = engine;
    this.runners = runners;
    this.opts = opts;
    this.name = opts.name ?? `${hostname()}:${process.pid}`;
    this.watch = new ConnectionWatch(opts.conn, (s) => {
      opts.say(`loupe worker ${this.name}: ${s.message}`);
      opts.log({ event: 'cluster/connection', ...s });
    });
  }

  async start(): Promise<void> {
    await this.watch.connect().catch((e: Error) => this.opts.say(`loupe worker ${this.name}: ${e.message}; waiting for it`));
    let lastError = '';
    this.bull = new Worker<ShardData, ShardResult>(QUEUE_NAME, (job) => this.process(job), {
      connection: ioredisOptions(this.opts.conn),
      concurrency: this.opts.concurrency,
      lockDuration: this.opts.lockMs,
      stalledInterval: this.opts.lockMs,
      // A shard may be recovered from several dead workers before it counts as failed.
      maxStalledCount: 3,
    });
    // Connection errors are reported once per outage by the watch; anything else is said once per distinct message.
    this.bull.on('error', (e: Error) => {
      const m = describe(e);
      if (m !== lastError && this.watch.current.connected) this.opts.say(`loupe worker ${this.name}: queue error: ${m}`);
      lastError = m;
    });
    this.opts.say(`loupe worker ${this.name}: taking shards from ${this.opts.conn.display} (execution provider ${this.engine.compute.provider}, concurrency ${this.opts.concurrency})`);
    this.opts.log({ event: 'cluster/worker-ready', worker: this.name, ep: this.engine.compute.provider });
  }

  private storeFor(location: string): ResultStore {
    const where = this.opts.store ?? location;
    let s = this.stores.get(where);
    if (!s) this.stores.set(where, (s = openResultStore(where)));
    return s;
  }

  /** The run's runner, prepared once per run on this worker (model and dataset resolved by content hash). */
  private prepare(shard: ShardData): Promise<PreparedRun> {
    let p = this.prepared.get(shard.runId);
    if (p) return p;
    forgetFingerprints();
    p = (async () => {
      const modelId = resolveModel(this.engine, shard, this.name);
      const datasetId = resolveDataset(this.engine, shard, this.name);
      // Runners read only kind, spec, modelId and datasetId of the run.
      const run: RunInfo = {
        id: shard.runId,
        kind: shard.kind,
        name: shard.runId,
        status: 'running',
        modelId,
        datasetId,
        spec: shard.spec,
        provenance: { modelHash: shard.model.hash, datasetHash: shard.dataset.hash, executionProvider: this.engine.compute.provider, appVersion: this.engine.options.version },
        total: 0,
        done: 0,
        failed: 0,
        error: null,
        createdAt: '',
        updatedAt: '',
      };
      return this.runners[shard.kind]!.prepare(run);
    })();
    this.prepared.set(shard.runId, p);
    p.catch(() => this.prepared.delete(shard.runId));
    while (this.prepared.size > KEEP_PREPARED) {
      const [oldest, old] = this.prepared.entries().next().value!;
      this.prepared.delete(oldest);
      void old.then((r) => r.dispose?.()).catch(() => undefined);
    }
    return p;
  }

  private async process(job: Job<ShardData, ShardResult>): Promise<ShardResult> {
    const parsed = ShardData.safeParse(job.data);
    // A shard this version cannot read will not become readable by retrying.
    if (!parsed.success) throw new UnrecoverableError(`shard ${job.id} is not a Loupe shard this worker understands: ${parsed.error.issues[0]?.message}`);
    const shard = parsed.data;
    const ep = this.engine.compute.provider;
    const result: ShardResult = { worker: this.name, ep, computed: 0, skipped: 0, failed: 0, cancelled: false };
    const store = this.storeFor(shard.store);
    let prepared: PreparedRun;
    try {
      prepared = await this.prepare(shard);
    } catch (e) {
      const p = toErrorPayload(e);
      this.opts.log({ event: 'cluster/shard-refused', shard: job.id, runId: shard.runId, worker: this.name, message: p.message });
      // A model or dataset that differs is a set-up error on this box: fail the shard at once, with the reason, for the submitter to show.
      if (p.code === 'conflict') throw new UnrecoverableError(p.message);
      throw new Error(`worker ${this.name} cannot prepare run ${shard.runId}: ${p.message}`);
    }
    for (const [k, itemId] of shard.items.entries()) {
      if (store.has(shard.runId, itemId)) {
        result.skipped++;
        continue;
      }
      if (await this.watch.client.exists(cancelKey(shard.runId))) {
        result.cancelled = true;
        break;
      }
      const base = { runId: shard.runId, itemId, worker: this.name, ep, modelHash: shard.model.hash, shard: String(job.id) };
      for (let attempt = 1; ; attempt++) {
        try {
          const out = await prepared.processItem(itemId);
          // The store names the blob from the same bytes the local queue would write (encodeSafetensors, no metadata).
          store.putItem(
            { ...base, finishedAt: new Date().toISOString(), ok: true, metrics: out.metrics, values: out.values, tensors: Object.entries(out.tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape })), blob: null },
            out.tensors,
          );
          result.computed++;
          break;
        } catch (e) {
          // As the local queue: a compute-worker crash gets one more try; a storage failure fails the shard (retried by BullMQ).
          if (e instanceof LoupeError && e.code === 'engine-crashed' && attempt < 2) continue;
          const p = toErrorPayload(e);
          if (p.code === 'storage') throw new Error(`worker ${this.name}: result store ${store.location}: ${p.message}`);
          store.putItem({ ...base, finishedAt: new Date().toISOString(), ok: false, error: p.message }, {});
          result.failed++;
          break;
        }
      }
      this.opts.log({ event: 'cluster/item', shard: job.id, runId: shard.runId, itemId, worker: this.name, index: k, of: shard.items.length });
      await job.updateProgress({ worker: this.name, ep, runId: shard.runId, done: k + 1, total: shard.items.length, itemId });
    }
    return result;
  }

  async close(): Promise<void> {
    await this.bull?.close();
    for (const p of this.prepared.values()) await p.then((r) => r.dispose?.()).catch(() => undefined);
    await this.watch.close();
  }
}
