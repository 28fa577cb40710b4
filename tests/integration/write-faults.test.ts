/**
 * A disk that fills mid-run (issue 23 item 3). A small tmpfs needs root or user namespaces, so the
 * full disk is injected: LOUPE_TEST_FAIL_WRITES_AFTER_BYTES makes the blob writer behave like a disk
 * with that many bytes free (a short write, then ENOSPC — blob-store.ts). Checks: the item fails
 * with "disk full writing blob …", the run says failed (not done), no blob under its final name is
 * truncated, no temp file is left, and `resume --retry-failed` without the limit ("space freed")
 * finishes with every item equal to an uninterrupted run. Then the start-up check: orphaned temp
 * files are removed and blobs that do not match the database (truncated; or corrupt with no size
 * recorded, as before migration 4) are quarantined and their items recomputed.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { MODEL_ID, makeLongDataset, tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const N = 8; // distinct images, so every item has its own blob

function cli(dataDir: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args, '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8', timeout: 240_000, env: { ...process.env, ...env } });
}

function snapshot(dataDir: string) {
  const db = new Database(join(dataDir, 'loupe.sqlite'), { readonly: true });
  const run = db.prepare('SELECT id, status, error FROM runs').get() as { id: string; status: string; error: string | null };
  const ledger = db.prepare('SELECT item_id, status, attempts, error FROM run_items ORDER BY ord').all() as { item_id: string; status: string; attempts: number; error: string | null }[];
  const results = db.prepare('SELECT r.item_id, r.metrics, t.blob FROM results r LEFT JOIN tensors t ON t.run_id = r.run_id AND t.item_id = r.item_id ORDER BY r.item_id').all() as { item_id: string; metrics: string; blob: string }[];
  db.close();
  return { run, ledger, results };
}

/** Every file in the data folder: blobs must hash to their names; nothing may be a temp file. */
function files(dir: string, rel = ''): string[] {
  return readdirSync(join(dir, rel), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(dir, join(rel, e.name)) : [join(rel, e.name)]));
}
function blobsIntact(dataDir: string): string[] {
  const blobs = files(dataDir).filter((f) => f.startsWith('blobs/'));
  for (const f of blobs) expect(createHash('sha256').update(readFileSync(join(dataDir, f))).digest('hex') + '.safetensors').toBe(f.split('/').at(-1));
  return blobs;
}

describe('a full disk mid-run', () => {
  const dataset = makeLongDataset(N);
  const reference = tempDir();
  const ref = () => snapshot(reference);

  it('fails the item with "disk full", leaves no truncated blob, and resume --retry-failed completes equal to a clean run', () => {
    expect(cli(reference, ['run', '--model', MODEL_ID, '--dataset', dataset]).status).toBe(0);
    expect(ref().run.status).toBe('done');
    const blobSize = statSync(join(reference, blobsIntact(reference)[0]!)).size;
    expect(blobsIntact(reference)).toHaveLength(N);

    // Room for three and a half blobs: items 0-2 are stored, item 3's write runs out of space half-way.
    const dataDir = tempDir();
    const full = cli(dataDir, ['run', '--model', MODEL_ID, '--dataset', dataset], { LOUPE_TEST_FAIL_WRITES_AFTER_BYTES: String(Math.floor(3.5 * blobSize)) });
    expect(full.status).toBe(1);
    const s = snapshot(dataDir);
    expect(s.run.status).toBe('failed');
    expect(s.ledger.map((l) => l.status)).toEqual(['done', 'done', 'done', 'failed', 'pending', 'pending', 'pending', 'pending']);
    const reason = s.ledger[3]!.error!;
    expect(reason).toMatch(new RegExp(`^disk full writing blob [0-9a-f]{64} under .*blobs \\(${Math.floor(0.5 * blobSize)} of ${blobSize} bytes written, no file was saved under its name\\)`));
    expect(s.run.error).toBe(`${reason} (item long-0003); stopped with 3 of ${N} items done, 1 failed, 4 not run`);
    expect(full.stderr).toContain(`loupe: run ${s.run.id} is failed: ${s.run.error}`);
    expect(full.stderr).toContain(`  long-0003: ${reason}`);
    // Stored blobs are whole (each hashes to its name), the half-written one is nowhere, no temp file is left.
    expect(blobsIntact(dataDir)).toHaveLength(3);
    expect(files(dataDir).filter((f) => /\.tmp-/.test(f))).toEqual([]);

    // Space freed (no limit): retry the failed item and run the rest.
    const resumed = cli(dataDir, ['resume', '--retry-failed']);
    expect(resumed.status).toBe(0);
    const after = snapshot(dataDir);
    expect(after.run).toMatchObject({ status: 'done', error: null });
    expect(after.ledger.map((l) => [l.status, l.attempts])).toEqual([...Array(3).fill(['done', 1]), ['done', 2], ...Array(4).fill(['done', 1])]);
    expect(after.results).toEqual(ref().results);
    expect(blobsIntact(dataDir)).toHaveLength(N);
  });

  it('on start: removes orphaned temp files, quarantines blobs that do not match the database, recomputes their items', () => {
    const dataDir = tempDir();
    cpSync(reference, dataDir, { recursive: true });
    const { results } = ref();
    const [truncated, flipped] = [results[1]!, results[5]!];
    const blobPath = (sha: string) => join(dataDir, 'blobs', sha.slice(0, 2), `${sha}.safetensors`);
    // A truncated blob (what the old writer left on a full disk) …
    truncateSync(blobPath(truncated.blob), 100);
    // … and a same-size corrupt one from before sizes were recorded (only its hash can tell).
    const bytes = readFileSync(blobPath(flipped.blob));
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(blobPath(flipped.blob), bytes);
    const db = new Database(join(dataDir, 'loupe.sqlite'));
    db.prepare('DELETE FROM blob_files WHERE sha = ?').run(flipped.blob);
    db.close();
    // A temp file a killed writer left (pid 999999 does not exist here).
    writeFileSync(join(dataDir, 'blobs', `${'0'.repeat(64)}.safetensors.tmp-999999-deadbeef`), 'half');

    const resumed = cli(dataDir, ['resume']);
    expect(resumed.status).toBe(0);
    expect(resumed.stderr).toContain(`loupe: removed 1 orphaned temp file(s) under ${dataDir}`);
    expect(resumed.stderr).toContain(`loupe: blob ${truncated.blob} does not match the database (100 bytes on disk, the database recorded ${statSync(join(reference, 'blobs', truncated.blob.slice(0, 2), `${truncated.blob}.safetensors`)).size})`);
    expect(resumed.stderr).toMatch(new RegExp(`loupe: blob ${flipped.blob} does not match the database \\(content hash [0-9a-f]{64} does not match its name`));
    expect(resumed.stderr).toContain('1 item(s) marked for redo');
    expect(readdirSync(join(dataDir, 'quarantine'))).toHaveLength(2);
    const after = snapshot(dataDir);
    expect(after.run.status).toBe('done');
    // Only the two items were computed again; everything equals the clean run.
    expect(after.ledger.filter((l) => l.attempts === 2).map((l) => l.item_id).sort()).toEqual([truncated.item_id, flipped.item_id].sort());
    expect(after.results).toEqual(results);
    expect(blobsIntact(dataDir)).toHaveLength(N);
    expect(existsSync(join(dataDir, 'blobs', `${'0'.repeat(64)}.safetensors.tmp-999999-deadbeef`))).toBe(false);
  });
});
