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
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
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

/** Whether this machine lets an unprivileged user mount a tmpfs in a user+mount namespace. */
function canMountTmpfs(): boolean {
  const dir = tempDir();
  return spawnSync('unshare', ['-rm', 'mount', '-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { timeout: 10_000 }).status === 0;
}

describe('a full disk mid-run', () => {
  const dataset = makeLongDataset(N);
  const reference = tempDir();
  const ref = () => snapshot(reference);
  // The uninterrupted run every test compares with.
  beforeAll(() => {
    const r = cli(reference, ['run', '--model', MODEL_ID, '--dataset', dataset]);
    if (r.status !== 0) throw new Error(`reference run failed: ${r.stderr}`);
  }, 240_000);

  it('fails the item with "disk full", leaves no truncated blob, and resume --retry-failed completes equal to a clean run', () => {
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

  // A real full disk where the machine allows it: the blob folder on a 64 KiB tmpfs in a user+mount
  // namespace (no root needed; skipped where unprivileged namespaces are off). The database stays on
  // the normal disk; "space is freed" by remounting the tmpfs larger. The namespace's files vanish
  // with it, so the script copies the blob folder out after each step.
  it.skipIf(!canMountTmpfs())('on a real full tmpfs too: disk full, no truncated blob, retry completes equal to a clean run', () => {
    const dataDir = tempDir();
    const out = tempDir();
    mkdirSync(join(dataDir, 'blobs'));
    const loupe = (args: string, name: string) => `"${process.execPath}" "${CLI}" ${args} --data-dir "${dataDir}" --provider cpu > "${out}/${name}.out" 2> "${out}/${name}.err"; echo $? > "${out}/${name}.rc"`;
    const script = [
      `mount -t tmpfs -o size=64k tmpfs "${dataDir}/blobs"`,
      loupe(`run --model ${MODEL_ID} --dataset "${dataset}"`, 'run'),
      `cp -r "${dataDir}/blobs" "${out}/blobs-full"`,
      `mkdir "${out}/db-full" && cp "${dataDir}"/loupe.sqlite* "${out}/db-full/"`,
      `mount -o remount,size=8m "${dataDir}/blobs"`,
      loupe('resume --retry-failed', 'resume'),
      `cp -r "${dataDir}/blobs" "${out}/blobs-after"`,
    ].join(' && ');
    const ns = spawnSync('unshare', ['-rm', 'bash', '-c', script], { encoding: 'utf8', timeout: 480_000 });
    expect(ns.status, ns.stderr).toBe(0);
    const rc = (name: string) => Number(readFileSync(join(out, `${name}.rc`), 'utf8'));

    expect(rc('run')).toBe(1);
    const ledger = snapshot(join(out, 'db-full')).ledger; // the database as the failed run left it
    const done = ledger.filter((l) => l.status === 'done').length;
    expect(done).toBeGreaterThanOrEqual(1);
    expect(ledger[done]!.status).toBe('failed');
    expect(ledger[done]!.error).toMatch(/^disk full writing blob [0-9a-f]{64} under .*\(\d+ of \d+ bytes written, no file was saved under its name\)/);
    expect(readFileSync(join(out, 'run.err'), 'utf8')).toContain(`  ${ledger[done]!.item_id}: disk full writing blob`);
    // What was on the full disk: only whole blobs (each hashes to its name), one per done item, no temp file.
    const full = files(join(out, 'blobs-full'));
    expect(full.filter((f) => /\.tmp-/.test(f))).toEqual([]);
    for (const f of full) expect(createHash('sha256').update(readFileSync(join(out, 'blobs-full', f))).digest('hex') + '.safetensors').toBe(f.split('/').at(-1));
    expect(full).toHaveLength(done);

    expect(rc('resume')).toBe(0);
    const after = snapshot(dataDir);
    expect(after.run).toMatchObject({ status: 'done', error: null });
    expect(after.results).toEqual(ref().results);
    expect(files(join(out, 'blobs-after'))).toHaveLength(N);
  });

  // The whole data folder on a tmpfs that fills mid-run (a ballast file takes the rest): the
  // database's own writes fail too (SQLITE_FULL). The run must say so, an engine must still start on
  // the full disk (it crash-looped before), and after the ballast goes the retry completes.
  it.skipIf(!canMountTmpfs())('a data folder that fills up: run failed with the reason, the engine still starts on the full disk, retry completes', () => {
    const dataDir = tempDir();
    const out = tempDir();
    const long = makeLongDataset(400); // after the fill the database's WAL still takes ~100 items' rows before SQLite says full
    const loupe = (args: string, name: string) => `"${process.execPath}" "${CLI}" ${args} --data-dir "${dataDir}" --provider cpu > "${out}/${name}.out" 2> "${out}/${name}.err"; echo $? > "${out}/${name}.rc"`;
    const script = [
      `mount -t tmpfs -o size=8m tmpfs "${dataDir}"`,
      `(${loupe(`run --json --model ${MODEL_ID} --dataset "${long}"`, 'run')}) & P=$!`, // --json: the loop below counts job/progress event lines
      // (cat: run.out may not exist yet; a bare grep would end the loop at once)
      `while [ "$(cat "${out}/run.out" 2>/dev/null | grep -c job/progress)" -lt 12 ]; do sleep 0.05; done`,
      `(dd if=/dev/zero of="${dataDir}/ballast" bs=4k 2>/dev/null || true)`,
      'wait $P',
      `df -k "${dataDir}" > "${out}/df.txt"`,
      loupe('runs --json', 'full'),
      `rm "${dataDir}/ballast"`,
      loupe('resume --retry-failed', 'resume'),
      `mkdir "${out}/db" && cp "${dataDir}"/loupe.sqlite* "${out}/db/"`,
    ].join('; ');
    const ns = spawnSync('unshare', ['-rm', 'bash', '-c', script], { encoding: 'utf8', timeout: 480_000 });
    expect(ns.status, ns.stderr).toBe(0);
    const read = (name: string) => readFileSync(join(out, name), 'utf8');

    expect(Number(read('run.rc'))).toBe(1);
    // Said, whether SQLite still took the failure mark (run failed) or not (the run stays 'running' to resume next start).
    expect(read('run.err')).toMatch(/loupe: run \S+ (is failed: disk full.*; stopped with \d+ of 400 items done, [01] failed, \d+ not run|did not finish: disk full: the database .*loupe\.sqlite cannot be written)/);
    expect(read('df.txt')).toMatch(/ 100% /);
    // An engine starts on the full folder and answers, listing the run.
    expect(Number(read('full.rc')), read('full.err')).toBe(0);
    expect((JSON.parse(read('full.out')) as { status: string }[]).map((r) => r.status)).toEqual([expect.stringMatching(/^(failed|running)$/)]);

    expect(Number(read('resume.rc')), read('resume.err')).toBe(0);
    const after = snapshot(join(out, 'db'));
    expect(after.run).toMatchObject({ status: 'done', error: null });
    // Item i shows image i mod 8: its metrics and blob equal the clean 8-item run's item i mod 8.
    const clean = new Map(ref().results.map((r) => [Number(r.item_id.slice(-4)), r]));
    expect(after.results).toHaveLength(400);
    for (const r of after.results) {
      const c = clean.get(Number(r.item_id.slice(-4)) % 8)!;
      expect([r.metrics, r.blob]).toEqual([c.metrics, c.blob]);
    }
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
