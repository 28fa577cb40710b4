/**
 * Runs, their per-item ledger and results. The ledger (`run_items`) is what makes resume
 * exact: an item's result, its tensors and its `done` mark are committed in one transaction,
 * so after a crash every item is either fully saved or still pending — never half.
 */
import { randomUUID } from 'node:crypto';
import type { JobKind, RunFailure, RunInfo, RunResult, RunStatus, TensorMeta } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type Db, json, now } from '../database.ts';

interface Row {
  id: string;
  kind: string;
  name: string;
  status: string;
  model_id: string;
  dataset_id: string;
  spec: string;
  provenance: string;
  error: string | null;
  created_at: string;
  updated_at: string;
  total: number;
  done: number;
  failed: number;
}

const SELECT = `SELECT r.*,
  (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id) AS total,
  (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'done') AS done,
  (SELECT COUNT(*) FROM run_items x WHERE x.run_id = r.id AND x.status = 'failed') AS failed
  FROM runs r`;

const toInfo = (r: Row): RunInfo => ({
  id: r.id,
  kind: r.kind as JobKind,
  name: r.name,
  status: r.status as RunStatus,
  modelId: r.model_id,
  datasetId: r.dataset_id,
  spec: json(r.spec),
  provenance: json(r.provenance),
  total: r.total,
  done: r.done,
  failed: r.failed,
  error: r.error,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export interface NewTensor {
  name: string;
  dtype: TensorMeta['dtype'];
  shape: number[];
  blob: string;
}

export class RunsRepo {
  private readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  create(run: Pick<RunInfo, 'kind' | 'name' | 'modelId' | 'datasetId' | 'spec' | 'provenance'>, itemIds: string[], sweepId: string | null = null): RunInfo {
    const id = `run-${now().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const insertItem = this.db.prepare(`INSERT INTO run_items (run_id, item_id, ord, status) VALUES (?, ?, ?, 'pending')`);
    this.db.transaction(() => {
      const t = now();
      this.db
        .prepare(`INSERT INTO runs (id, kind, name, status, model_id, dataset_id, spec, provenance, created_at, updated_at, sweep_id) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)`)
        .run(id, run.kind, run.name, run.modelId, run.datasetId, JSON.stringify(run.spec), JSON.stringify(run.provenance), t, t, sweepId);
      itemIds.forEach((item, ord) => insertItem.run(id, item, ord));
    })();
    return this.get(id);
  }

  createSweep(name: string, spec: unknown): string {
    const id = `sweep-${now().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    this.db.prepare('INSERT INTO sweeps (id, name, spec, created_at) VALUES (?, ?, ?, ?)').run(id, name, JSON.stringify(spec), now());
    return id;
  }

  /** The runs of a sweep in creation order (the intact run first). */
  sweepRuns(sweepId: string): RunInfo[] {
    const rows = this.db.prepare(`${SELECT} WHERE r.sweep_id = ? ORDER BY r.created_at, r.rowid`).all(sweepId) as Row[];
    if (!rows.length) throw new LoupeError('not-found', `no sweep with id ${sweepId}`);
    return rows.map(toInfo);
  }

  get(id: string): RunInfo {
    const row = this.db.prepare(`${SELECT} WHERE r.id = ?`).get(id) as Row | undefined;
    if (!row) throw new LoupeError('not-found', `no run with id ${id}`);
    return toInfo(row);
  }

  list(status?: RunStatus): RunInfo[] {
    // Soft-deleted runs (run-catalog.ts) leave every list at once; get() still finds them until purged.
    const rows = status
      ? this.db.prepare(`${SELECT} WHERE r.status = ? AND r.deleted_at IS NULL ORDER BY r.created_at DESC`).all(status)
      : this.db.prepare(`${SELECT} WHERE r.deleted_at IS NULL ORDER BY r.created_at DESC`).all();
    return (rows as Row[]).map(toInfo);
  }

  setStatus(id: string, status: RunStatus, error: string | null = null): RunInfo {
    this.db.prepare('UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?').run(status, error, now(), id);
    return this.get(id);
  }

  pendingItems(runId: string): string[] {
    return (this.db.prepare(`SELECT item_id FROM run_items WHERE run_id = ? AND status = 'pending' ORDER BY ord`).all(runId) as { item_id: string }[]).map((r) => r.item_id);
  }

  /** Result, tensors and the done mark in one transaction. */
  completeItem(runId: string, itemId: string, result: { metrics: Record<string, number>; values: Record<string, unknown> }, tensors: NewTensor[]): void {
    const insertTensor = this.db.prepare('INSERT INTO tensors (id, run_id, item_id, name, dtype, shape, blob, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      const t = now();
      this.db.prepare('INSERT OR REPLACE INTO results (run_id, item_id, metrics, value) VALUES (?, ?, ?, ?)').run(runId, itemId, JSON.stringify(result.metrics), JSON.stringify(result.values));
      this.db.prepare('DELETE FROM tensors WHERE run_id = ? AND item_id = ?').run(runId, itemId);
      for (const x of tensors) insertTensor.run(`t-${randomUUID()}`, runId, itemId, x.name, x.dtype, JSON.stringify(x.shape), x.blob, t);
      this.db.prepare(`UPDATE run_items SET status = 'done', attempts = attempts + 1, finished_at = ?, error = NULL WHERE run_id = ? AND item_id = ?`).run(t, runId, itemId);
      this.db.prepare('UPDATE runs SET updated_at = ? WHERE id = ?').run(t, runId);
    })();
  }

  failItem(runId: string, itemId: string, error: string): void {
    this.db.prepare(`UPDATE run_items SET status = 'failed', attempts = attempts + 1, finished_at = ?, error = ? WHERE run_id = ? AND item_id = ?`).run(now(), error, runId, itemId);
  }

  /**
   * Sets a run that went through all its items to what its ledger says: `done` (every item ok),
   * `partial` (some failed) or `failed` (none ok), with a one-line reason naming the commonest failure.
   */
  finish(runId: string): RunInfo {
    const run = this.get(runId);
    if (run.failed === 0) return this.setStatus(runId, 'done');
    return this.setStatus(runId, run.done === 0 ? 'failed' : 'partial', this.failureSummary(runId));
  }

  /** "3 of 96 items failed: <commonest reason> (and 1 other reason)", or null when none failed. */
  failureSummary(runId: string): string | null {
    const counts = this.db.prepare(`SELECT COUNT(*) AS total, SUM(status = 'failed') AS failed FROM run_items WHERE run_id = ?`).get(runId) as { total: number; failed: number | null };
    if (!counts.failed) return null;
    const reasons = this.db.prepare(`SELECT error, COUNT(*) AS n FROM run_items WHERE run_id = ? AND status = 'failed' GROUP BY error ORDER BY n DESC, MIN(ord)`).all(runId) as { error: string | null }[];
    const others = reasons.length - 1;
    return `${counts.failed} of ${counts.total} items failed: ${reasons[0]?.error ?? 'no reason recorded'}${others > 0 ? ` (and ${others} other reason${others > 1 ? 's' : ''})` : ''}`;
  }

  /** The failed items in ledger order, `limit` from `offset`, with the total count. */
  failures(runId: string, offset = 0, limit = 100): { total: number; items: RunFailure[] } {
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM run_items WHERE run_id = ? AND status = 'failed'`).get(runId) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT item_id, error, attempts FROM run_items WHERE run_id = ? AND status = 'failed' ORDER BY ord LIMIT ? OFFSET ?`)
      .all(runId, limit, offset) as { item_id: string; error: string | null; attempts: number }[];
    return { total, items: rows.map((r) => ({ itemId: r.item_id, error: r.error ?? 'no reason recorded', attempts: r.attempts })) };
  }

  /** Puts a finished run's failed items back to pending (their attempts are kept); returns how many. */
  resetFailed(runId: string): number {
    return this.db.prepare(`UPDATE run_items SET status = 'pending', error = NULL, finished_at = NULL WHERE run_id = ? AND status = 'failed'`).run(runId).changes;
  }

  /**
   * Marks items for redo (their stored blob did not match the database): result and tensor rows
   * go, the items are pending again, and their runs are queued so the next start or `resume` recomputes them.
   */
  redoItems(items: { runId: string; itemId: string }[], reason: string): string[] {
    const runs = new Set(items.map((i) => i.runId));
    this.db.transaction(() => {
      for (const { runId, itemId } of items) {
        this.db.prepare('DELETE FROM tensors WHERE run_id = ? AND item_id = ?').run(runId, itemId);
        this.db.prepare('DELETE FROM results WHERE run_id = ? AND item_id = ?').run(runId, itemId);
        this.db.prepare(`UPDATE run_items SET status = 'pending', finished_at = NULL, error = NULL WHERE run_id = ? AND item_id = ?`).run(runId, itemId);
      }
      for (const runId of runs) {
        const n = items.filter((i) => i.runId === runId).length;
        this.db.prepare(`UPDATE runs SET status = 'queued', error = ?, updated_at = ? WHERE id = ?`).run(`${n} item${n > 1 ? 's' : ''} queued for redo: ${reason}`, now(), runId);
      }
    })();
    return [...runs];
  }

  results(runId: string): RunResult[] {
    const rows = this.db
      .prepare('SELECT r.item_id, r.metrics, r.value FROM results r JOIN run_items i ON i.run_id = r.run_id AND i.item_id = r.item_id WHERE r.run_id = ? ORDER BY i.ord')
      .all(runId) as { item_id: string; metrics: string; value: string }[];
    const tensors = this.db.prepare('SELECT * FROM tensors WHERE run_id = ? AND item_id = ? ORDER BY name');
    return rows.map((r) => ({
      itemId: r.item_id,
      metrics: json(r.metrics),
      values: json(r.value),
      tensors: (tensors.all(runId, r.item_id) as TensorRow[]).map(toTensorMeta),
    }));
  }

  /** Finish timestamps per item, used by tests to prove resumed runs did not redo work. */
  itemLedger(runId: string): { itemId: string; status: string; attempts: number; finishedAt: string | null }[] {
    return (this.db.prepare('SELECT item_id, status, attempts, finished_at FROM run_items WHERE run_id = ? ORDER BY ord').all(runId) as {
      item_id: string;
      status: string;
      attempts: number;
      finished_at: string | null;
    }[]).map((r) => ({ itemId: r.item_id, status: r.status, attempts: r.attempts, finishedAt: r.finished_at }));
  }

  tensor(id: string): TensorMeta {
    const row = this.db.prepare('SELECT * FROM tensors WHERE id = ?').get(id) as TensorRow | undefined;
    if (!row) throw new LoupeError('not-found', `no tensor with id ${id}`);
    return toTensorMeta(row);
  }
}

interface TensorRow {
  id: string;
  run_id: string | null;
  item_id: string | null;
  name: string;
  dtype: string;
  shape: string;
  blob: string;
}

const toTensorMeta = (r: TensorRow): TensorMeta => ({ id: r.id, runId: r.run_id, itemId: r.item_id, name: r.name, dtype: r.dtype as TensorMeta['dtype'], shape: json(r.shape), blob: r.blob });
