/**
 * The engine's start-up check of its data folder (run while it holds the folder's lock, so no
 * other engine is writing): temp files that a killed writer left behind are removed, and every
 * blob the database references is checked against it (size, or the full hash once for blobs
 * from before sizes were recorded). A bad blob is moved to `<data>/quarantine/` — a content-
 * addressed store would otherwise keep it forever, since writes skip names that exist — and the
 * items that referenced it go back to pending, their runs queued, so they are recomputed.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { toErrorPayload } from '../../src-shared/contract/errors.ts';
import { TEMP_NAME } from '../util/atomic-write.ts';
import type { Store } from './store.ts';

export interface BadBlob {
  sha: string;
  problem: string;
  /** Where the bad file was moved (null when it was missing). */
  movedTo: string | null;
  items: number;
}

export interface DataCheckReport {
  /** Temp files removed, relative to the data folder. */
  tempFilesRemoved: string[];
  blobsChecked: number;
  badBlobs: BadBlob[];
  /** Runs queued again because some of their items must be recomputed. */
  requeuedRuns: string[];
  /** Why the items could not be marked for redo this time (null when they were, or none needed it). */
  redoError: string | null;
}

function removeOrphanedTempFiles(dataDir: string): string[] {
  const removed: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path); // isDirectory() is false for symlinks: the walk never leaves the folder
      else if (e.isFile()) {
        const m = TEMP_NAME.exec(e.name);
        // Our own temp files are live writes; every other writer of this folder is gone (we hold its lock).
        if (m && Number(m[1]) !== process.pid) {
          rmSync(path, { force: true });
          removed.push(relative(dataDir, path));
        }
      }
    }
  };
  walk(dataDir);
  return removed;
}

export function checkDataFolder(store: Store, dataDir: string): DataCheckReport {
  const tempFilesRemoved = removeOrphanedTempFiles(dataDir);
  const shas = (store.db.prepare('SELECT DISTINCT blob FROM tensors').all() as { blob: string }[]).map((r) => r.blob);
  const badBlobs: BadBlob[] = [];
  const redo: { runId: string; itemId: string; reason: string }[] = [];
  for (const sha of shas) {
    const problem = store.blobs.verify(sha);
    if (!problem) continue;
    let movedTo: string | null = null;
    const path = store.blobs.pathOf(sha);
    if (existsSync(path)) {
      const quarantine = join(dataDir, 'quarantine');
      mkdirSync(quarantine, { recursive: true });
      movedTo = join(quarantine, `${sha}.safetensors.${Date.now()}`);
      renameSync(path, movedTo);
    }
    const items = store.db.prepare('SELECT DISTINCT run_id AS runId, item_id AS itemId FROM tensors WHERE blob = ? AND run_id IS NOT NULL AND item_id IS NOT NULL').all(sha) as {
      runId: string;
      itemId: string;
    }[];
    for (const i of items) redo.push({ ...i, reason: `blob ${sha} ${problem}` });
    badBlobs.push({ sha, problem, movedTo, items: items.length });
  }
  let requeuedRuns: string[] = [];
  let redoError: string | null = null;
  try {
    for (const b of badBlobs) store.db.prepare('DELETE FROM blob_files WHERE sha = ?').run(b.sha);
    if (redo.length) requeuedRuns = store.runs.redoItems(redo, redo[0]!.reason);
  } catch (e) {
    // A database that cannot be written (disk full) must not stop the engine from starting; the
    // quarantined blobs are "missing" next start and their items are marked then.
    redoError = toErrorPayload(e).message;
  }
  return { tempFilesRemoved, blobsChecked: shas.length, badBlobs, requeuedRuns, redoError };
}

/** One line per finding, for the engine's log (empty when the folder is clean). */
export function describeDataCheck(report: DataCheckReport, dataDir: string): string[] {
  const lines: string[] = [];
  if (report.tempFilesRemoved.length) lines.push(`removed ${report.tempFilesRemoved.length} orphaned temp file(s) under ${dataDir} (left by a killed writer)`);
  for (const b of report.badBlobs) {
    lines.push(`blob ${b.sha} does not match the database (${b.problem})${b.movedTo ? `; moved to ${b.movedTo}` : ''}; ${b.items} item(s) marked for redo`);
  }
  if (report.requeuedRuns.length) lines.push(`queued for recomputation: ${report.requeuedRuns.join(', ')}`);
  if (report.redoError) lines.push(`could not mark those items for redo (${report.redoError}); they will be on the next start`);
  return lines;
}
