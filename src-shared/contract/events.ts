/** Events the engine pushes to every connected client. */
import { z } from 'zod';
import { Id, RunInfo } from './domain.ts';

export const events = {
  /** Per-item progress of a running job; `etaMs` is null until there is a rate to extrapolate. */
  'job/progress': z.object({ runId: Id, done: z.number().int(), failed: z.number().int(), total: z.number().int(), etaMs: z.number().nullable(), itemId: z.string().nullable() }),
  /** A run changed status (queued → running → done/cancelled/failed). */
  'job/state': RunInfo,
  /** Progress of a benchmark import (`datasets/import-benchmark`); `total` is null until known. */
  'import/progress': z.object({ format: z.string(), phase: z.string(), done: z.number().int(), total: z.number().int().nullable() }),
  /** Per-worker progress of a run sent to a cluster queue (`done`: items this worker finished for the run; `itemsPerSec` null until it finished two). */
  'cluster/progress': z.object({ runId: Id, worker: z.string(), ep: z.string(), done: z.number().int(), itemsPerSec: z.number().nullable(), runDone: z.number().int(), runFailed: z.number().int(), runTotal: z.number().int(), etaMs: z.number().nullable() }),
  /** A cluster queue became reachable or unreachable (`queue` is the URL without its password). */
  'cluster/connection': z.object({ queue: z.string(), connected: z.boolean(), message: z.string() }),
  /** The engine process died and was restarted; in-flight requests failed, runs resume. */
  'engine/restarted': z.object({ reason: z.string(), restarts: z.number().int() }),
} as const;

export type Events = typeof events;
export type EventName = keyof Events;
export type EventPayload<E extends EventName> = z.output<Events[E]>;
