/**
 * Scale-out (issue 25): a real redis-server on a random loopback port, a temp folder as the shared
 * result store, and `loupe worker` child processes, each with its own data folder. The reference
 * is the same sweep run by the submitting engine's own local queue.
 *
 * - 3 workers: the cluster sweep's results equal the local sweep's (metrics, values, tensor bytes).
 * - kill -9 of a worker mid-shard: BullMQ's stalled-job check hands the shard to another worker,
 *   which skips the item already stored; every item is merged exactly once (ledger attempts = 1).
 * - Redis stopped mid-sweep (and restarted empty, as `--save ''` does): workers and the submitter
 *   say so, and the sweep completes once it is back.
 * - a model whose content hash differs from the run's: the shard is refused, and the run's error says why.
 * Redis runs with a password for the default user and an ACL user; the workers use the ACL user.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import type { RunInfo, RunResult } from '../../src-shared/contract/domain.ts';
import type { EventName } from '../../src-shared/contract/events.ts';
import { closeCluster } from '../../src-main/cluster/coordinator.ts';
import { Engine } from '../../src-main/engine/engine.ts';
import { REPO_ROOT, RESOURCES_DIR } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_ID, MODEL_ID, tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const LIMIT = 6; // a readout needs ≥ 5 items
const PASSWORD = 'default-pw-7f3a';
const ACL_USER = 'loupe';
const ACL_PASSWORD = 'acl-pw-91c2';
const LOCK_MS = '3000'; // how long a killed worker holds its shard before another takes it

let redisPort = 0;
let redis: ChildProcess | null = null;
let redisDir = '';
let storeDir = '';
let engine: Engine;
const workers: Worker[] = [];
const events: { name: EventName; payload: Record<string, unknown> }[] = [];
let reference: Record<string, RunResult[]> = {};
let sweepParams: Record<string, unknown>;

interface Worker {
  name: string;
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string;
  exited: Promise<NodeJS.Signals | null>;
}

const submitterUrl = () => `redis://:${PASSWORD}@127.0.0.1:${redisPort}`;
const workerUrl = () => `redis://${ACL_USER}:${ACL_PASSWORD}@127.0.0.1:${redisPort}`;

/**
 * A free port *below* the ephemeral range (Linux: 32768–60999). While Redis is down, clients retry
 * connecting to its port; with a port from the ephemeral range one retry can be given that same
 * number as its own local port and connect to itself (TCP self-connect), and the restarted Redis
 * then cannot bind — the outage test failed that way once in CI.
 */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const s = createServer();
    const free = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.listen(port, '127.0.0.1', () => r(true));
    });
    if (free) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error('no free port in 20000–31999');
}

async function startRedis(): Promise<void> {
  redis = spawn(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir, '--requirepass', PASSWORD, '--user', ACL_USER, 'on', `>${ACL_PASSWORD}`, '~*', '&*', '+@all'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = createServer(); // port still free → not up yet
      s.once('error', () => r(true));
      s.listen(redisPort, '127.0.0.1', () => s.close(() => r(false)));
    });
    if (up) return;
    await sleep(50);
  }
  throw new Error('redis-server did not start');
}

async function stopRedis(): Promise<void> {
  const r = redis!;
  redis = null;
  const gone = new Promise((res) => r.once('exit', res));
  r.kill('SIGKILL');
  await gone;
}

function startWorker(name: string): Worker {
  const proc = spawn(process.execPath, [CLI, 'worker', '--queue', workerUrl(), '--data-dir', tempDir('loupe-worker-'), '--provider', 'cpu', '--lock-ms', LOCK_MS, '--name', name], { stdio: ['ignore', 'pipe', 'pipe'] });
  const w: Worker = { name, proc, lines: [], stderr: '', exited: new Promise((r) => proc.once('exit', (_c, sig) => r(sig))) };
  createInterface({ input: proc.stdout! }).on('line', (l) => w.lines.push(JSON.parse(l) as Record<string, unknown>));
  proc.stderr!.on('data', (d: Buffer) => (w.stderr += d.toString()));
  workers.push(w);
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Results per run label (intact, the ablation), without the per-run ids. */
async function sweepResults(runIds: string[]): Promise<Record<string, RunResult[]>> {
  const out: Record<string, RunResult[]> = {};
  for (const [i, runId] of runIds.entries()) {
    const got = await callEngine<{ run: RunInfo; results: RunResult[] }>(engine, 'runs/get', { runId });
    out[i === 0 ? 'intact' : `ablated-${i}`] = got.results.map((r) => ({ ...r, tensors: r.tensors.map((t) => ({ ...t, id: '', runId: null })) }));
  }
  return out;
}

const runs = (ids: string[]) => ids.map((id) => engine.store.runs.get(id));
const waitDone = (ids: string[]) => until(`runs ${ids.join(', ')} to finish`, () => runs(ids).every((r) => ['done', 'partial', 'failed', 'cancelled'].includes(r.status)), 80_000);

beforeAll(async () => {
  redisDir = tempDir('loupe-redis-');
  storeDir = tempDir('loupe-shared-store-');
  redisPort = await freePort();
  await startRedis();
  engine = await startTestEngine();
  engine.onEvent((name, payload) => events.push({ name, payload: payload as Record<string, unknown> }));
  for (const n of ['w1', 'w2', 'w3']) startWorker(n);

  // The reference: the same sweep (intact + one ablation), run by this engine's local queue while the workers start.
  const grid = sweepGrid({ kind: 'vision-patches' }, modelShape(engine.store.models.get(MODEL_ID).config));
  const pick = [grid.at(-1)!];
  sweepParams = { modelId: MODEL_ID, datasetId: DATASET_ID, base: { limit: LIMIT }, ablations: pick.map((g) => g.spec), labels: pick.map((g) => g.label) };
  const local = await callEngine<{ runIds: string[] }>(engine, 'sweeps/start', { ...sweepParams, name: 'local' });
  await engine.queue.drained();
  expect(runs(local.runIds).map((r) => r.status)).toEqual(['done', 'done']);
  reference = await sweepResults(local.runIds);
  await until('3 workers ready', () => workers.every((w) => w.lines.some((l) => l.event === 'cluster/worker-ready'))).catch((e: Error) => {
    throw new Error(`${e.message}: ${workers.map((w) => `${w.name}: ${w.stderr}`).join('\n')}`);
  });
});

afterAll(async () => {
  await closeCluster(engine);
  await engine?.close();
  for (const w of workers) w.proc.kill('SIGKILL');
  if (redis) await stopRedis();
});

const cluster = (shardItems: number) => ({ queue: submitterUrl(), store: storeDir, shardItems });

/** The shared store's copy of a blob (written by a worker) — byte-compared with the local reference's. */
const sharedBlob = (sha: string) => readFileSync(join(storeDir, 'blobs', sha.slice(0, 2), `${sha}.safetensors`));
const localBlob = (sha: string) => readFileSync(engine.store.blobs.pathOf(sha));

function expectExactlyOnce(runIds: string[]): void {
  for (const id of runIds) {
    const ledger = engine.store.runs.itemLedger(id);
    expect(ledger).toHaveLength(LIMIT);
    // Merged once each: a second merge of the same item would have counted a second attempt.
    expect(ledger.map((l) => [l.status, l.attempts])).toEqual(ledger.map(() => ['done', 1]));
    expect(engine.store.runs.results(id)).toHaveLength(LIMIT);
  }
}

describe('one sweep over 3 worker processes on Redis + BullMQ', () => {
  it('gives results equal to the local sweep: metrics, values and tensor bytes; provenance names the workers', async () => {
    const started = await callEngine<{ runIds: string[] }>(engine, 'sweeps/start', { ...sweepParams, name: 'cluster', cluster: cluster(2) });
    await waitDone(started.runIds);
    expect(runs(started.runIds).map((r) => r.status)).toEqual(['done', 'done']);
    expectExactlyOnce(started.runIds);
    const got = await sweepResults(started.runIds);
    expect(got).toEqual(reference);
    // The same bytes: each worker-written blob in the shared store equals the locally computed one.
    const shas = new Set(Object.values(reference).flatMap((rs) => rs.flatMap((r) => r.tensors.map((t) => t.blob))));
    expect(shas.size).toBeGreaterThan(0);
    for (const sha of shas) expect(sharedBlob(sha).equals(localBlob(sha))).toBe(true);
    // 12 items in 6 shards of 2 over 3 idle workers: each took part; provenance says who, on which EP, with which model.
    const prov = runs(started.runIds).map((r) => r.provenance.cluster!);
    const byWorker = new Map<string, number>();
    for (const p of prov) for (const w of p.workers) byWorker.set(w.worker, (byWorker.get(w.worker) ?? 0) + w.items);
    expect([...byWorker.keys()].sort()).toEqual(['w1', 'w2', 'w3']);
    expect([...byWorker.values()].reduce((a, b) => a + b)).toBe(2 * LIMIT);
    expect(prov.flatMap((p) => p.workers.map((w) => [w.ep, w.modelHash]))).toEqual(prov.flatMap((p) => p.workers.map(() => ['cpu', engine.store.models.get(MODEL_ID).hash])));
    expect(prov[0]!.queue).toBe(`redis://:***@127.0.0.1:${redisPort}`);
    // Per-worker progress reached the submitter as events.
    expect(new Set(events.filter((e) => e.name === 'cluster/progress' && started.runIds.includes(e.payload.runId as string)).map((e) => e.payload.worker))).toEqual(new Set(['w1', 'w2', 'w3']));
  });

  it('survives kill -9 of a worker mid-shard: the shard moves to another worker, every item merged exactly once', async () => {
    const victim = workers[0]!;
    const before = victim.lines.length;
    const started = await callEngine<{ runIds: string[] }>(engine, 'sweeps/start', { ...sweepParams, name: 'cluster-kill', cluster: cluster(3) });
    // Killed right after it stored the first item of a 3-item shard: the second is in flight.
    const first = await until('the victim to finish the first item of a shard', () => victim.lines.slice(before).find((l) => l.event === 'cluster/item' && l.index === 0));
    victim.proc.kill('SIGKILL');
    expect(await victim.exited).toBe('SIGKILL');
    await waitDone(started.runIds);
    expect(runs(started.runIds).map((r) => r.status)).toEqual(['done', 'done']);
    expectExactlyOnce(started.runIds);
    expect(await sweepResults(started.runIds)).toEqual(reference);
    // Another worker took over the victim's shard and did only what the victim had not stored.
    const takeover = workers.slice(1).flatMap((w) => w.lines.filter((l) => l.event === 'cluster/item' && l.shard === first.shard));
    expect(takeover.length).toBeGreaterThan(0);
    expect(takeover.map((l) => l.itemId)).not.toContain(first.itemId);
  });

  it('reports a Redis outage on workers and submitter, and completes the sweep when Redis is back (restarted empty)', async () => {
    const mark = events.length;
    const started = await callEngine<{ runIds: string[] }>(engine, 'sweeps/start', { ...sweepParams, name: 'cluster-outage', cluster: cluster(2) });
    await until('the first merged item', () => events.slice(mark).some((e) => e.name === 'job/progress' && started.runIds.includes(e.payload.runId as string)));
    await stopRedis();
    await until('the submitter to report the outage', () => events.slice(mark).find((e) => e.name === 'cluster/connection' && e.payload.connected === false));
    const down = events.slice(mark).find((e) => e.name === 'cluster/connection' && e.payload.connected === false)!;
    expect(down.payload.message).toMatch(new RegExp(`queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redisPort} unreachable \\(.*ECONNREFUSED.*\\); retrying`));
    expect(JSON.stringify(events)).not.toContain(PASSWORD);
    const alive = workers.slice(1);
    await until('the workers to report the outage', () => alive.every((w) => /unreachable \(.*ECONNREFUSED/.test(w.stderr)));
    for (const w of alive) expect(w.stderr).toContain(`redis://${ACL_USER}:***@127.0.0.1:${redisPort}`);
    for (const w of alive) expect(w.stderr).not.toContain(ACL_PASSWORD);
    await startRedis();
    await until('the submitter to report the queue back', () => events.slice(mark).some((e) => e.name === 'cluster/connection' && e.payload.connected === true));
    await waitDone(started.runIds);
    expect(runs(started.runIds).map((r) => r.status)).toEqual(['done', 'done']);
    expectExactlyOnce(started.runIds);
    expect(await sweepResults(started.runIds)).toEqual(reference);
    for (const w of alive) expect(w.stderr).toMatch(/reachable\n[\s\S]*unreachable[\s\S]*reachable/);
  });

  it('refuses a shard whose model content differs from the run’s, and the submitter shows why', async () => {
    // A model only the desktop has (its own bytes, so no worker's bundled copy matches), registered,
    // then edited on disk: a worker finds other bytes at that path.
    const copy = join(tempDir('loupe-model-copy-'), 'micro-llava');
    cpSync(join(RESOURCES_DIR, 'models', 'micro-llava'), copy, { recursive: true });
    appendFileSync(join(copy, 'config.json'), '\n');
    const model = engine.importModel(copy);
    expect(model.hash).not.toBe(engine.store.models.get(MODEL_ID).hash);
    appendFileSync(join(copy, 'config.json'), '\n');
    const run = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'encode-images', modelId: model.id, datasetId: DATASET_ID, spec: { limit: 2 }, cluster: cluster(2) });
    await waitDone([run.id]);
    const after = engine.store.runs.get(run.id);
    expect(after.status).toBe('failed');
    expect(after.error).toMatch(/^2 of 2 items failed: shard \S+ failed on the cluster: worker w[23] refuses shard of run \S+: model micro-llava must have content hash [0-9a-f]{12}…, but \S+micro-llava hashes to [0-9a-f]{12}…/);
    expect(after.error).toContain(`content hash ${model.hash.slice(0, 12)}…`);
    expect(existsSync(copy)).toBe(true);
  });

  it('cancels a run on the cluster: waiting shards removed, running ones stop before their next item, nothing merged after', async () => {
    const mark = events.length;
    const run = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 24 }, cluster: cluster(3) });
    await until('the first merged item', () => events.slice(mark).some((e) => e.name === 'job/progress' && e.payload.runId === run.id));
    const cancelled = await callEngine<RunInfo>(engine, 'jobs/cancel', { runId: run.id });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.done).toBeLessThan(24);
    // Workers finish at most their in-flight item, then leave the shard; no further item of the run is computed.
    const computed = () => workers.flatMap((w) => w.lines.filter((l) => l.event === 'cluster/item' && l.runId === run.id)).length;
    await sleep(1000);
    const settled = computed();
    await sleep(2500);
    expect(computed()).toBe(settled);
    expect(settled).toBeLessThan(24);
    expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'cancelled', done: cancelled.done });
  });

  it('holds a cluster run when the desktop restarts (not re-run locally), and re-attaching merges what the workers did meanwhile', async () => {
    const mark = events.length;
    const run = await callEngine<RunInfo>(engine, 'jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 12 }, cluster: cluster(2) });
    await until('the first merged item', () => events.slice(mark).some((e) => e.name === 'job/progress' && e.payload.runId === run.id));
    const { dataDir } = engine.options;
    await closeCluster(engine);
    await engine.close();
    engine = await Engine.start({ dataDir, resourcesDir: RESOURCES_DIR, host: 'server', version: '0.0.0-test', provider: 'cpu' });
    engine.onEvent((name, payload) => events.push({ name, payload: payload as Record<string, unknown> }));
    const held = engine.store.runs.get(run.id);
    expect(held.status).toBe('paused');
    expect(held.error).toMatch(new RegExp(`^was running on cluster queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redisPort} \\(result store .*\\) when the engine stopped: re-attach`));
    expect(engine.queue.snapshot()).toEqual({ current: null, waiting: [] });
    // The workers go on meanwhile; re-attached, the run merges their items and finishes, each item once.
    await sleep(1500);
    const attached = await callEngine<RunInfo>(engine, 'cluster/attach', { runId: run.id, cluster: { queue: submitterUrl() } });
    expect(['running', 'done']).toContain(attached.status);
    await waitDone([run.id]);
    const ledger = engine.store.runs.itemLedger(run.id);
    expect(ledger.map((l) => [l.status, l.attempts])).toEqual(ledger.map(() => ['done', 1]));
    expect(engine.store.runs.get(run.id).provenance.cluster!.workers.reduce((n, w) => n + w.items, 0)).toBe(12);
  });

  it('says which queue it cannot reach, without the password, before creating anything', async () => {
    const before = engine.store.runs.list().length;
    const bad = `redis://:not-the-pw@127.0.0.1:${redisPort}`;
    const err = await callEngine(engine, 'jobs/start', { kind: 'encode-images', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 1 }, cluster: { queue: bad } }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(new RegExp(`cannot reach queue redis://:\\*\\*\\*@127\\.0\\.0\\.1:${redisPort}: .*WRONGPASS`));
    expect((err as Error).message).not.toContain('not-the-pw');
    expect(engine.store.runs.list()).toHaveLength(before);
  });
});
