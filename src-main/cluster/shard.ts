/**
 * A shard = one run × a contiguous range of its items: the unit a worker takes from the queue.
 * Its BullMQ job id is derived from the run and the range, so adding the same shard twice (a
 * re-submission after Redis lost its data, a second `submit`) is a no-op in the queue.
 */
import { z } from 'zod';
import { JobKind } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';

export const QUEUE_NAME = 'loupe-shards';
/** Items per shard unless the submitter says otherwise: small enough that a lost worker costs little, big enough that per-shard setup amortises. */
export const DEFAULT_SHARD_ITEMS = 8;

export const ShardData = z.object({
  v: z.literal(1),
  runId: z.string(),
  kind: JobKind,
  spec: z.record(z.string(), z.unknown()),
  /** What the run was created with on the submitter: the worker must load a model with this content hash. */
  model: z.object({ id: z.string(), name: z.string(), hash: z.string(), path: z.string() }),
  dataset: z.object({ id: z.string(), name: z.string(), hash: z.string(), path: z.string() }),
  /** Position of the first item in the run's ledger, and the item ids of the range. */
  from: z.number().int().nonnegative(),
  items: z.array(z.string()).min(1),
  /** The result store as the submitter names it; a worker's `--store` overrides it (another mount point). */
  store: z.string(),
});
export type ShardData = z.infer<typeof ShardData>;

/** What a finished shard reports back through the queue (the items themselves go to the result store). */
export interface ShardResult {
  worker: string;
  ep: string;
  computed: number;
  skipped: number;
  failed: number;
  cancelled: boolean;
}

export const shardJobId = (runId: string, from: number, count: number): string => {
  // BullMQ refuses ':' in custom ids (its key separator); run ids never contain one.
  if (runId.includes(':')) throw new LoupeError('bad-input', `run id ${runId} contains ':'`);
  return `${runId}.${from}-${from + count}`;
};

/** Splits a run's pending items (in ledger order, with their positions) into shards of at most `size`. */
export function splitIntoShards(items: { itemId: string; ord: number }[], size: number): { from: number; items: string[] }[] {
  if (!Number.isInteger(size) || size < 1) throw new LoupeError('bad-input', `shard size must be a positive integer, not ${size} (--shard-items)`);
  const out: { from: number; items: string[] }[] = [];
  let cur: { from: number; items: string[] } | null = null;
  let last = -2;
  for (const it of items) {
    // A gap (items already done) starts a new shard, so a shard's range is always contiguous.
    if (!cur || cur.items.length >= size || it.ord !== last + 1) {
      cur = { from: it.ord, items: [] };
      out.push(cur);
    }
    cur.items.push(it.itemId);
    last = it.ord;
  }
  return out;
}
