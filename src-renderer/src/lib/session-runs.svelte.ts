/**
 * Runs this window has seen queued or running, so the Experiments queue can keep them after they
 * finish (with their outcome and an "open run" link) instead of letting them vanish. Tracked from
 * the engine's job/state events for the whole session, whichever view is open; cleared by the user.
 */
import { SvelteSet } from 'svelte/reactivity';
import type { EngineClient } from '../../../src-shared/contract/client.ts';
import type { RunInfo } from '../../../src-shared/contract/domain.ts';

const FINISHED: ReadonlySet<RunInfo['status']> = new Set(['done', 'partial', 'failed', 'cancelled']);
export const isFinished = (r: Pick<RunInfo, 'status'>): boolean => FINISHED.has(r.status);

export class SessionRuns {
  /** Ids of runs seen active (queued, running, paused) in this session, oldest first. */
  readonly seen = new SvelteSet<string>();
  private readonly off: () => void;

  constructor(client: Pick<EngineClient, 'on'>, initial: readonly RunInfo[]) {
    for (const r of initial) if (!isFinished(r)) this.seen.add(r.id);
    this.off = client.on('job/state', (r) => {
      if (!isFinished(r)) this.seen.add(r.id);
    });
  }

  /** The finished ones among `runs` that were active here, newest first. */
  finished(runs: readonly RunInfo[]): RunInfo[] {
    return runs.filter((r) => this.seen.has(r.id) && isFinished(r)).sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  }

  /** Forgets the finished ones (they stay under Runs). */
  clearFinished(runs: readonly RunInfo[]): void {
    for (const r of runs) if (isFinished(r)) this.seen.delete(r.id);
  }

  dispose(): void {
    this.off();
  }
}

const byClient = new WeakMap<object, SessionRuns>();

/** One tracker per engine connection, started the first time a view asks for it. */
export function sessionRuns(client: Pick<EngineClient, 'on'>, initial: readonly RunInfo[]): SessionRuns {
  let s = byClient.get(client);
  if (!s) byClient.set(client, (s = new SessionRuns(client, initial)));
  return s;
}
