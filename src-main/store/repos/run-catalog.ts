/**
 * Run management over the runs table (migration 5): tags, notes, rename, soft delete with
 * restore, and the purge that removes a deleted run's rows and the blob files no remaining
 * run references. Kept beside RunsRepo (which owns run states and the item ledger) so the two
 * evolve apart; both read the same tables.
 *
 * Blobs are content-addressed and shared: two runs (or two items) that captured the same bytes
 * hold one file. A purge therefore removes a blob only when no tensor row of any other run —
 * deleted-but-not-yet-purged ones included — still names it, and only when no writer touched it
 * since the run was deleted (`blob_files.verified_at`, which every put refreshes): a running job
 * may just have put the same bytes and not yet committed its tensor row.
 */
import { rmSync } from 'node:fs';
import type { RunInfo } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { RunEntry } from '../../../src-shared/contract/run-methods.ts';
import type { BlobStore } from '../blob-store.ts';
import { type Db, json, now } from '../database.ts';
import type { RunsRepo } from './runs.ts';

/** States a run may be deleted in: not while the queue may still write it. */
const DELETABLE = new Set(['done', 'partial', 'failed', 'cancelled', 'paused']);

export interface PurgeResult {
  runs: string[];
  blobsRemoved: string[];
  blobsKept: number;
}

export class RunCatalog {
  private readonly db: Db;
  private readonly runs: RunsRepo;
  private readonly blobs: BlobStore;

  constructor(db: Db, runs: RunsRepo, blobs: BlobStore) {
    this.db = db;
    this.runs = runs;
    this.blobs = blobs;
  }

  /** Runs not deleted, newest first, with their annotations. */
  list(): RunEntry[] {
    const notes = new Map(
      (this.db.prepare('SELECT id, tags, notes, sweep_id FROM runs WHERE deleted_at IS NULL').all() as { id: string; tags: string; notes: string; sweep_id: string | null }[]).map((r) => [r.id, r]),
    );
    return this.runs
      .list()
      .filter((r) => notes.has(r.id))
      .map((run) => {
        const n = notes.get(run.id)!;
        return { run, tags: json<string[]>(n.tags), notes: n.notes, sweepId: n.sweep_id };
      });
  }

  entry(runId: string): RunEntry {
    const run = this.runs.get(runId);
    const n = this.db.prepare('SELECT tags, notes, sweep_id FROM runs WHERE id = ?').get(runId) as { tags: string; notes: string; sweep_id: string | null };
    return { run, tags: json<string[]>(n.tags), notes: n.notes, sweepId: n.sweep_id };
  }

  /**
   * Changes whenever a run row is added, updated (state, progress, name, tags, notes — every
   * write sets updated_at), soft-deleted, restored or purged. One aggregate over the runs table.
   */
  version(): string {
    const r = this.db.prepare('SELECT COUNT(*) AS n, MAX(updated_at) AS u, SUM(deleted_at IS NOT NULL) AS d, MAX(deleted_at) AS dl FROM runs').get() as { n: number; u: string | null; d: number | null; dl: string | null };
    return `${r.n}:${r.u ?? ''}:${r.d ?? 0}:${r.dl ?? ''}`;
  }

  annotate(runId: string, change: { name?: string; tags?: string[]; notes?: string }): RunEntry {
    this.live(runId);
    const tags = change.tags && [...new Set(change.tags.map((t) => t.trim()).filter(Boolean))];
    this.db
      .prepare('UPDATE runs SET name = COALESCE(?, name), tags = COALESCE(?, tags), notes = COALESCE(?, notes), updated_at = ? WHERE id = ?')
      .run(change.name ?? null, tags ? JSON.stringify(tags) : null, change.notes ?? null, now(), runId);
    return this.entry(runId);
  }

  /** Soft delete: the runs leave every list; their rows and blobs stay until purged. */
  softDelete(runIds: string[]): string[] {
    for (const id of runIds) {
      const run = this.live(id);
      if (!DELETABLE.has(run.status)) throw new LoupeError('conflict', `run ${id} is ${run.status}; cancel it before deleting it`);
    }
    const t = now();
    this.db.transaction(() => {
      for (const id of runIds) this.db.prepare('UPDATE runs SET deleted_at = ?, updated_at = ? WHERE id = ?').run(t, t, id);
    })();
    return runIds;
  }

  undelete(runIds: string[]): RunInfo[] {
    for (const id of runIds) {
      const row = this.db.prepare('SELECT deleted_at FROM runs WHERE id = ?').get(id) as { deleted_at: string | null } | undefined;
      if (!row) throw new LoupeError('not-found', `run ${id} no longer exists: it was purged`);
    }
    const t = now();
    this.db.transaction(() => {
      for (const id of runIds) this.db.prepare('UPDATE runs SET deleted_at = NULL, updated_at = ? WHERE id = ?').run(t, id);
    })();
    return runIds.map((id) => this.runs.get(id));
  }

  /** Deleted runs (all, those listed, or those deleted before `deletedBefore`). */
  deleted(opts: { runIds?: string[]; deletedBefore?: string } = {}): { id: string; deletedAt: string }[] {
    const rows = this.db.prepare('SELECT id, deleted_at FROM runs WHERE deleted_at IS NOT NULL ORDER BY deleted_at').all() as { id: string; deleted_at: string }[];
    return rows
      .filter((r) => (!opts.runIds || opts.runIds.includes(r.id)) && (!opts.deletedBefore || r.deleted_at < opts.deletedBefore))
      .map((r) => ({ id: r.id, deletedAt: r.deleted_at }));
  }

  /**
   * Removes deleted runs for good: their ledger, results, tensor rows and run row in one
   * transaction, then the blob files no remaining tensor row names. A sweep left without runs goes too.
   */
  purge(opts: { runIds?: string[]; deletedBefore?: string } = {}): PurgeResult {
    if (opts.runIds) {
      for (const id of opts.runIds) {
        const row = this.db.prepare('SELECT deleted_at FROM runs WHERE id = ?').get(id) as { deleted_at: string | null } | undefined;
        if (row && !row.deleted_at) throw new LoupeError('bad-input', `run ${id} is not deleted; delete it before purging it`);
      }
    }
    const targets = this.deleted(opts);
    if (!targets.length) return { runs: [], blobsRemoved: [], blobsKept: 0 };
    const earliest = targets[0]!.deletedAt;
    let unreferenced: string[] = [];
    let kept = 0;
    this.db.transaction(() => {
      const candidates = new Set<string>();
      const blobsOf = this.db.prepare('SELECT DISTINCT blob FROM tensors WHERE run_id = ?');
      const sweeps = new Set<string>();
      for (const { id } of targets) {
        for (const r of blobsOf.all(id) as { blob: string }[]) candidates.add(r.blob);
        const s = this.db.prepare('SELECT sweep_id FROM runs WHERE id = ?').get(id) as { sweep_id: string | null };
        if (s.sweep_id) sweeps.add(s.sweep_id);
        this.db.prepare('DELETE FROM tensors WHERE run_id = ?').run(id);
        this.db.prepare('DELETE FROM results WHERE run_id = ?').run(id);
        this.db.prepare('DELETE FROM run_items WHERE run_id = ?').run(id);
        this.db.prepare('DELETE FROM runs WHERE id = ?').run(id);
      }
      for (const s of sweeps) {
        const left = this.db.prepare('SELECT 1 FROM runs WHERE sweep_id = ? LIMIT 1').get(s);
        if (!left) this.db.prepare('DELETE FROM sweeps WHERE id = ?').run(s);
      }
      const used = this.db.prepare('SELECT 1 FROM tensors WHERE blob = ? LIMIT 1');
      const touched = this.db.prepare('SELECT verified_at FROM blob_files WHERE sha = ?');
      for (const sha of candidates) {
        const fresh = (touched.get(sha) as { verified_at: string } | undefined)?.verified_at;
        if (used.get(sha) || (fresh && fresh > earliest)) kept++;
        else unreferenced.push(sha);
      }
      const forget = this.db.prepare('DELETE FROM blob_files WHERE sha = ?');
      for (const sha of unreferenced) forget.run(sha);
    })();
    // Files go after the rows are committed: a crash in between leaves an orphan file, never a row naming a missing file.
    unreferenced = unreferenced.filter((sha) => {
      rmSync(this.blobs.pathOf(sha), { force: true });
      return true;
    });
    return { runs: targets.map((t) => t.id), blobsRemoved: unreferenced, blobsKept: kept };
  }

  private live(runId: string): RunInfo {
    const row = this.db.prepare('SELECT deleted_at FROM runs WHERE id = ?').get(runId) as { deleted_at: string | null } | undefined;
    if (!row) throw new LoupeError('not-found', `no run with id ${runId}`);
    if (row.deleted_at) throw new LoupeError('not-found', `run ${runId} was deleted at ${row.deleted_at}; restore it first`);
    return this.runs.get(runId);
  }
}
