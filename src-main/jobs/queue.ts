/**
 * The job queue: runs execute one at a time, item by item, each item committed before the
 * next starts. Cancel takes effect between items; resume (also after a crash) continues
 * with the items still pending, so finished work is never redone. A run that went through its
 * items ends done / partial / failed by its ledger (RunsRepo.finish); a storage failure (disk
 * full) fails its item and stops the run, since every next item would fail the same way.
 */
import type { JobKind, RunInfo, RunStatus } from '../../src-shared/contract/domain.ts';
import type { EventName, EventPayload } from '../../src-shared/contract/events.ts';
import { LoupeError, toErrorPayload } from '../../src-shared/contract/errors.ts';
import type { Store } from '../store/store.ts';
import type { JobRunner, PreparedRun } from './job-runner.ts';
import type { NewTensor } from '../store/repos/runs.ts';

const FINISHED = new Set<RunStatus>(['done', 'partial', 'failed', 'cancelled']);

/** Thrown out of the item loop when a storage failure stops the run. */
class StorageStop extends Error {
  readonly itemId: string;
  constructor(itemId: string, message: string) {
    super(message);
    this.itemId = itemId;
  }
}

export type Emit = <E extends EventName>(name: E, payload: EventPayload<E>) => void;

export class JobQueue {
  private readonly store: Store;
  private readonly runners: Record<JobKind, JobRunner>;
  private readonly emit: Emit;
  private readonly waiting: string[] = [];
  private readonly cancelRequested = new Set<string>();
  private readonly unsaved = new Map<string, string>();
  private current: string | null = null;
  private idle: Promise<void> = Promise.resolve();
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(store: Store, runners: Record<JobKind, JobRunner>, emit: Emit) {
    this.store = store;
    this.runners = runners;
    this.emit = emit;
    this.idle = this.loop();
  }

  /** Re-queues runs a previous process left queued or running (it was killed or crashed). */
  resumeInterrupted(): string[] {
    const runs = [...this.store.runs.list('running'), ...this.store.runs.list('queued')].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const resumed: string[] = [];
    for (const r of runs) {
      try {
        this.enqueue(r.id);
        resumed.push(r.id);
      } catch (e) {
        // E.g. the database cannot be written (disk full): start anyway, so the user can see and free space; the run resumes next start.
        console.error(`loupe: cannot resume run ${r.id}: ${toErrorPayload(e).message}`);
      }
    }
    return resumed;
  }

  enqueue(runId: string): RunInfo {
    this.unsaved.delete(runId);
    const run = this.store.runs.setStatus(runId, 'queued');
    if (!this.waiting.includes(runId) && this.current !== runId) this.waiting.push(runId);
    this.cancelRequested.delete(runId);
    this.emit('job/state', run);
    this.wake?.();
    return run;
  }

  cancel(runId: string): RunInfo {
    const run = this.store.runs.get(runId);
    if (FINISHED.has(run.status)) throw new LoupeError('conflict', `run ${runId} is already ${run.status}`);
    const at = this.waiting.indexOf(runId);
    if (at >= 0) this.waiting.splice(at, 1);
    if (this.current === runId) {
      this.cancelRequested.add(runId);
      return run;
    }
    const cancelled = this.store.runs.setStatus(runId, 'cancelled');
    this.emit('job/state', cancelled);
    return cancelled;
  }

  /**
   * Re-queues the failed items of a finished run (`partial`, or `failed` — which also runs the
   * items a stopped run never reached); the run ends done/partial/failed by the new outcome.
   */
  retryFailed(runId: string): RunInfo {
    const run = this.store.runs.get(runId);
    if (run.status !== 'partial' && run.status !== 'failed') {
      const why = run.status === 'done' ? 'no item failed' : run.status === 'cancelled' ? 'it was cancelled; resume it instead' : 'it has not finished';
      throw new LoupeError('conflict', `run ${runId} is ${run.status}: nothing to retry (${why})`);
    }
    this.store.runs.resetFailed(runId);
    return this.enqueue(runId);
  }

  snapshot(): { current: string | null; waiting: string[] } {
    return { current: this.current, waiting: [...this.waiting] };
  }

  /** Stops after the current item; the run stays `running` in the store and resumes next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.idle;
  }

  /** Resolves when nothing is running or waiting. */
  async drained(): Promise<void> {
    while (this.current || this.waiting.length) await new Promise((r) => setTimeout(r, 20));
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const next = this.waiting.shift();
      if (!next) {
        await new Promise<void>((r) => (this.wake = r));
        this.wake = null;
        continue;
      }
      this.current = next;
      try {
        await this.execute(next);
      } catch (e) {
        // Only bookkeeping lands here — the database itself cannot be written (full disk): never let it
        // kill the engine, and keep the reason in memory since the store cannot hold it.
        this.recordUnsaved(next, e);
      } finally {
        this.current = null;
      }
    }
  }

  /**
   * Why a run stopped when even its failure could not be saved (the database cannot be written);
   * null otherwise. The run stays `running` in the store and resumes on the next start.
   */
  unsavedStop(runId: string): string | null {
    return this.unsaved.get(runId) ?? null;
  }

  private recordUnsaved(runId: string, e: unknown): void {
    const code = (e as { code?: string }).code ?? '';
    const what = code === 'SQLITE_FULL' ? `disk full: the database ${this.store.db.name} cannot be written` : toErrorPayload(e).message;
    const why = `${what}; the run stopped and stays 'running' in the database, so it resumes on the next start once this is fixed`;
    this.unsaved.set(runId, why);
    console.error(`loupe: run ${runId} stopped: ${why}`);
    try {
      this.emit('job/state', { ...this.store.runs.get(runId), status: 'failed', error: why });
    } catch {
      // The database cannot be read either: the log line above is all there is.
    }
  }

  /** Why a run stopped, with how far it got: "disk full writing blob … (item x); stopped with 12 of 40 items done, 1 failed, 27 not run". */
  private stopReason(runId: string, e: unknown): string {
    const run = this.store.runs.get(runId);
    const code = (e as { code?: string }).code ?? '';
    // A raw SQLite "database or disk is full" from any other write says what it means.
    const what = e instanceof StorageStop ? `${e.message} (item ${e.itemId})` : code === 'SQLITE_FULL' ? `disk full: the database ${this.store.db.name} cannot be written` : toErrorPayload(e).message;
    return `${what}; stopped with ${run.done} of ${run.total} items done, ${run.failed} failed, ${run.total - run.done - run.failed} not run`;
  }

  private async processOne(runId: string, itemId: string, prepared: PreparedRun): Promise<void> {
    const out = await prepared.processItem(itemId);
    const tensors: NewTensor[] = [];
    if (Object.keys(out.tensors).length) {
      // No run id in the blob: identical captures must hash identically (dedupe, and resumed runs equal fresh ones).
      const blob = this.store.blobs.putTensors(out.tensors);
      for (const [name, t] of Object.entries(out.tensors)) tensors.push({ name, dtype: t.dtype, shape: t.shape, blob });
    }
    try {
      if (out.stored) {
        // Written and fsynced by the compute worker; checked (size) and recorded here, then committed with the item.
        this.store.blobs.adopt(out.stored.sha, out.stored.size);
        for (const t of out.stored.tensors) tensors.push({ name: t.name, dtype: t.dtype, shape: t.shape, blob: out.stored.sha });
      }
      this.store.runs.completeItem(runId, itemId, { metrics: out.metrics, values: out.values }, tensors);
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      if (code === 'SQLITE_FULL') throw new LoupeError('storage', `disk full saving item ${itemId}'s result to the database; free space, then retry the failed items`);
      if (code.startsWith('SQLITE_IOERR')) throw new LoupeError('storage', `I/O error saving item ${itemId}'s result to the database (${code}): ${(e as Error).message}`);
      throw e;
    }
  }

  private async execute(runId: string): Promise<void> {
    let run = this.store.runs.setStatus(runId, 'running');
    this.emit('job/state', run);
    const started = Date.now();
    let processed = 0;
    let prepared: PreparedRun;
    try {
      prepared = await this.runners[run.kind].prepare(run);
    } catch (e) {
      this.emit('job/state', this.store.runs.setStatus(runId, 'failed', (e as Error).message));
      return;
    }
    try {
      for (const itemId of this.store.runs.pendingItems(runId)) {
        if (this.stopped) return;
        if (this.cancelRequested.delete(runId)) {
          this.emit('job/state', this.store.runs.setStatus(runId, 'cancelled'));
          return;
        }
        for (let attempt = 1; ; attempt++) {
          try {
            await this.processOne(runId, itemId, prepared);
            break;
          } catch (e) {
            // The compute worker died under this item: it is restarted by ComputeClient; try the item again once.
            if (e instanceof LoupeError && e.code === 'engine-crashed' && attempt < 2) continue;
            // A storage failure (disk full, I/O error) fails this item and stops the run: every next item
            // would fail the same way. Other item failures are recorded and the run goes on.
            const payload = toErrorPayload(e);
            this.store.runs.failItem(runId, itemId, payload.message);
            if (payload.code === 'storage') throw new StorageStop(itemId, payload.message);
            break;
          }
        }
        processed++;
        run = this.store.runs.get(runId);
        const rate = processed / (Date.now() - started);
        const left = run.total - run.done - run.failed;
        this.emit('job/progress', { runId, done: run.done, failed: run.failed, total: run.total, etaMs: rate > 0 ? Math.round(left / rate) : null, itemId });
      }
      this.emit('job/state', this.store.runs.finish(runId));
    } catch (e) {
      this.emit('job/state', this.store.runs.setStatus(runId, 'failed', this.stopReason(runId, e)));
    } finally {
      await prepared.dispose?.();
    }
  }
}
