/**
 * The CLI's cluster commands, kept out of loupe.ts:
 *
 *   loupe worker --queue redis://HOST:PORT (or $LOUPE_QUEUE) [--store DIR] [--ep cpu|cuda|webgpu|…] [--concurrency N] [--name NAME] [--lock-ms 30000]
 *   loupe run|sweep … --queue URL [--store DIR] [--shard-items N]
 *
 * `worker` runs until SIGINT/SIGTERM (it finishes nothing half: a stopped worker's shard is
 * taken over by another, which skips the items already stored).
 */
import { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { Engine } from '../engine/engine.ts';
import { RESOURCES_DIR, appVersion, defaultDataDir } from '../paths.ts';
import { type ClusterTarget, clusterOf, closeCluster } from './coordinator.ts';
import { parseQueueUrl } from './queue-url.ts';
import { createRunners } from './runners.ts';
import { ShardWorker } from './worker.ts';

/** The flags loupe.ts passes through (parseArgs values). */
export interface ClusterFlags {
  queue?: string | undefined;
  store?: string | undefined;
  ep?: string | undefined;
  provider?: string | undefined;
  concurrency?: string | undefined;
  name?: string | undefined;
  'lock-ms'?: string | undefined;
  'shard-items'?: string | undefined;
  'data-dir'?: string | undefined;
}

/** parseArgs options for the flags above, for loupe.ts to spread into its own. */
export const CLUSTER_OPTIONS = {
  queue: { type: 'string' },
  store: { type: 'string' },
  ep: { type: 'string' },
  concurrency: { type: 'string' },
  name: { type: 'string' },
  'lock-ms': { type: 'string' },
  'shard-items': { type: 'string' },
} as const;

const positiveInt = (flag: string, raw: string | undefined, fallback: number): number => {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new LoupeError('bad-input', `--${flag} must be a positive integer, not "${raw}"`);
  return n;
};

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
const say = (m: string) => process.stderr.write(`${m}\n`);

/** `loupe worker`: runs until signalled. */
export async function runWorkerCommand(flags: ClusterFlags): Promise<void> {
  // $LOUPE_QUEUE keeps a password out of the process list (`ps` shows every argument).
  const queue = flags.queue ?? process.env.LOUPE_QUEUE;
  if (!queue) throw new LoupeError('bad-input', 'loupe worker needs --queue redis://HOST:PORT or $LOUPE_QUEUE (see docs/scale-out.md)');
  const conn = parseQueueUrl(queue);
  if (!conn.loopback && !conn.tls) say(`loupe worker: warning: ${conn.display} is not loopback and not TLS; use rediss:// or an ssh tunnel (docs/scale-out.md)`);
  const ep = flags.ep ?? flags.provider;
  const provider = ep ? ExecutionProvider.parse(ep) : undefined;
  const engine = await Engine.start({ dataDir: flags['data-dir'] ?? defaultDataDir(), resourcesDir: RESOURCES_DIR, host: 'server', version: appVersion(), ...(provider && { provider }) });
  const worker = new ShardWorker(engine, createRunners(engine), {
    conn,
    ...(flags.store && { store: flags.store }),
    concurrency: positiveInt('concurrency', flags.concurrency, 1),
    ...(flags.name && { name: flags.name }),
    lockMs: positiveInt('lock-ms', flags['lock-ms'], 30000),
    log: print,
    say,
  });
  const stop = async () => {
    say(`loupe worker ${worker.name}: stopping`);
    await worker.close();
    await engine.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  await worker.start();
}

/** `--queue` on run/sweep: the `cluster` field of jobs/start and sweeps/start, or nothing without --queue. */
export function clusterTarget(flags: ClusterFlags): { cluster?: ClusterTarget } {
  if (!flags.queue) return {};
  parseQueueUrl(flags.queue); // a malformed URL is refused before anything is created
  return { cluster: { queue: flags.queue, ...(flags.store && { store: flags.store }), ...(flags['shard-items'] && { shardItems: positiveInt('shard-items', flags['shard-items'], 8) }) } };
}

/** Waits for runs sent to a queue, reporting queue outages on stderr. */
export async function waitForCluster(engine: Engine, runIds: string[]): Promise<void> {
  const off = engine.onEvent((name, payload) => {
    if (name === 'cluster/connection') say(`loupe: ${(payload as { message: string }).message}`);
  });
  await clusterOf(engine).wait(runIds);
  off();
}

export { closeCluster };
