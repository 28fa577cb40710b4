/**
 * Scale-out benchmark (`node bench/cluster.ts [--items 48] [--kind readout] [--shard-items 4] [--workers 1,2,3] [--rounds 1]`):
 * items/s of one run sent to a Redis + BullMQ queue and taken by 1, 2, 3 `loupe worker` processes on
 * this machine, against the same run on the engine's own local queue, measured in the same process
 * on the same machine. Each figure is a ratio to that local baseline:
 *  - per-item overhead of the queue: local items/s ÷ 1-worker items/s (1.00 = free);
 *  - scaling: k-worker items/s ÷ local items/s.
 * Every measurement goes from submit to the last item merged, so each worker's per-run setup
 * (prepare: taps resolved, sessions opened) counts, as the local run's does. Both sides are warm: the
 * local queue ran the job once before, and each set of workers runs a warm-up run (2 shards per
 * worker; its time is printed as the cold start) before the timed one. Workers are killed after;
 * Redis runs on a random loopback port without persistence.
 * With local workers, scaling is bounded by the machine's cores (printed): on a 2-core box three
 * workers share two cores with the submitter.
 * Results: printed, and written to bench/results/cluster-<time>.json.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { RunInfo } from '../src-shared/contract/domain.ts';
import { closeCluster } from '../src-main/cluster/coordinator.ts';
import { dispatch } from '../src-main/engine/dispatcher.ts';
import { Engine } from '../src-main/engine/engine.ts';
import { REPO_ROOT, RESOURCES_DIR } from '../src-main/paths.ts';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '48' },
    kind: { type: 'string', default: 'readout' },
    dataset: { type: 'string', default: 'colour-at-point' },
    'shard-items': { type: 'string', default: '4' },
    workers: { type: 'string', default: '1,2,3' },
    rounds: { type: 'string', default: '1' },
  },
});
const ITEMS = Number(values.items);
const SHARD = Number(values['shard-items']);
const COUNTS = values.workers!.split(',').map(Number);
const ROUNDS = Number(values.rounds);
const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const port = await freePort();
const redisVersion = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp('loupe-bench-redis-')], { stdio: 'ignore' });
const queue = `redis://127.0.0.1:${port}`;
const store = tmp('loupe-bench-store-');
await sleep(300);

const engine = await Engine.start({ dataDir: tmp('loupe-bench-submit-'), resourcesDir: RESOURCES_DIR, host: 'server', version: 'bench', provider: 'cpu' });
async function call<T>(method: string, params: unknown): Promise<T> {
  const { response } = await dispatch(engine.handlers, { t: 'req', id: 1, method, params });
  if (!response.ok) throw new Error(`${method}: ${response.error.message}`);
  return response.result as T;
}
const job = (name: string, limit = ITEMS) => ({ kind: values.kind, modelId: 'micro-llava', datasetId: values.dataset, name, spec: { limit } });

async function startWorkers(k: number): Promise<ChildProcess[]> {
  const procs = Array.from({ length: k }, (_, i) => spawn(process.execPath, [CLI, 'worker', '--queue', queue, '--data-dir', tmp('loupe-bench-worker-'), '--provider', 'cpu', '--name', `bench-${i + 1}`], { stdio: ['ignore', 'pipe', 'ignore'] }));
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve, reject) => {
          p.once('exit', (c) => reject(new Error(`worker exited with ${c} before it was ready`)));
          createInterface({ input: p.stdout! }).on('line', (l) => {
            if (l.includes('"cluster/worker-ready"')) resolve();
          });
        }),
    ),
  );
  return procs;
}

async function local(): Promise<number> {
  const t0 = performance.now();
  const run = await call<RunInfo>('jobs/start', job('bench local'));
  await engine.queue.drained();
  const done = engine.store.runs.get(run.id);
  if (done.status !== 'done') throw new Error(`local run ended ${done.status}: ${done.error}`);
  return done.done / ((performance.now() - t0) / 1000);
}

/** One run on the queue, from submit to its last item merged: items/s and items per worker. */
async function clusterRun(name: string, limit: number): Promise<{ rate: number; secs: number; perWorker: Record<string, number> }> {
  const finished = new Map<string, RunInfo>();
  const off = engine.onEvent((n, p) => {
    const r = p as RunInfo;
    if (n === 'job/state' && ['done', 'partial', 'failed', 'cancelled'].includes(r.status)) finished.set(r.id, r);
  });
  const t0 = performance.now();
  const run = await call<RunInfo>('jobs/start', { ...job(name, limit), cluster: { queue, store, shardItems: SHARD } });
  while (!finished.has(run.id)) await sleep(20);
  const secs = (performance.now() - t0) / 1000;
  off();
  const done = finished.get(run.id)!;
  if (done.status !== 'done') throw new Error(`cluster run ended ${done.status}: ${done.error}`);
  const prov = engine.store.runs.get(run.id).provenance.cluster!;
  return { rate: done.done / secs, secs, perWorker: Object.fromEntries(prov.workers.map((w) => [w.worker, w.items])) };
}

const coldStarts: Record<string, number> = {};
async function onCluster(k: number): Promise<{ rate: number; perWorker: Record<string, number> }> {
  const procs = await startWorkers(k);
  try {
    // Warm-up, as the local baseline had: each worker's graph cache, ORT sessions and JIT (2 shards per worker).
    coldStarts[`${k}`] = (await clusterRun(`bench ${k} workers warm-up`, Math.min(ITEMS, 2 * SHARD * k))).secs;
    return await clusterRun(`bench ${k} workers`, ITEMS);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await sleep(500);
  }
}

const rows: { label: string; rates: number[]; perWorker?: Record<string, number> }[] = [{ label: 'local queue', rates: [] }, ...COUNTS.map((k) => ({ label: `${k} worker${k > 1 ? 's' : ''}`, rates: [] as number[] }))];
await local(); // warm-up: the graph cache and OS file cache, as a desktop that has run before
for (let r = 0; r < ROUNDS; r++) {
  rows[0]!.rates.push(await local());
  for (const [i, k] of COUNTS.entries()) {
    const res = await onCluster(k);
    rows[i + 1]!.rates.push(res.rate);
    rows[i + 1]!.perWorker = res.perWorker;
  }
}

const base = median(rows[0]!.rates);
const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, redis: redisVersion };
process.stdout.write(`cluster bench: ${values.kind} × ${ITEMS} items of ${values.dataset} on micro-llava, shards of ${SHARD}, ${ROUNDS} round(s)\n`);
process.stdout.write(`machine: ${machine.cpus} cores (${machine.cpu}), ${machine.node}, ${machine.redis}\n`);
for (const row of rows) {
  const rate = median(row.rates);
  process.stdout.write(`${row.label.padEnd(12)} ${rate.toFixed(2).padStart(7)} items/s   × ${(rate / base).toFixed(2)} of local${row.perWorker ? `   items per worker ${JSON.stringify(row.perWorker)}` : ''}\n`);
}
const one = rows.find((r) => r.label === '1 worker');
process.stdout.write(`warm-up runs (cold workers: graph rewrite, session load), seconds: ${JSON.stringify(coldStarts)}\n`);
if (one) process.stdout.write(`queue per-item overhead (local ÷ 1 worker): ${(base / median(one.rates)).toFixed(2)}× (${((1 / median(one.rates) - 1 / base) * 1000).toFixed(1)} ms per item)\n`);

mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
const out = join(REPO_ROOT, 'bench', 'results', `cluster-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ machine, coldStarts, items: ITEMS, kind: values.kind, shardItems: SHARD, rows: rows.map((r) => ({ ...r, median: median(r.rates), ratio: median(r.rates) / base })) }, null, 2));
process.stdout.write(`written ${out}\n`);
await closeCluster(engine);
await engine.close();
redis.kill('SIGKILL');
process.exit(0);
