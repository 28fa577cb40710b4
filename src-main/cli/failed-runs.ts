/**
 * What the CLI says about runs that did not fully succeed: one JSON line per `partial`/`failed`
 * run on stdout (its reason and failed items), one readable line on stderr, and whether any did,
 * so the command exits non-zero (issue 23 item 9: a run whose items all failed exited 0).
 */
import type { Store } from '../store/store.ts';

/** How many failed items are listed per run (all are counted; `runs/get` pages through the rest). */
const LISTED = 50;

/** `unsavedStop`: the queue's reason for a run that stopped without being able to save that it failed (a full database). */
export function reportFailedRuns(store: Store, runIds: Iterable<string>, print: (v: unknown) => void, unsavedStop: (runId: string) => string | null = () => null): boolean {
  let any = false;
  for (const id of new Set(runIds)) {
    const run = store.runs.get(id);
    const unsaved = unsavedStop(id);
    if (unsaved || run.status === 'running' || run.status === 'queued') {
      any = true;
      const why = unsaved ?? `still ${run.status} in the database`;
      print({ runFailures: { runId: id, status: 'failed', error: why, total: run.failed, items: [] } });
      process.stderr.write(`loupe: run ${id} did not finish: ${why}\n`);
      continue;
    }
    if (run.status !== 'partial' && run.status !== 'failed') continue;
    any = true;
    const failures = store.runs.failures(id, 0, LISTED);
    print({ runFailures: { runId: id, status: run.status, error: run.error, total: failures.total, items: failures.items } });
    process.stderr.write(`loupe: run ${id} is ${run.status}: ${run.error ?? 'no reason recorded'}\n`);
    for (const f of failures.items) process.stderr.write(`  ${f.itemId}: ${f.error}\n`);
    if (failures.total > failures.items.length) process.stderr.write(`  … and ${failures.total - failures.items.length} more (runs/get pages through them)\n`);
    process.stderr.write(`  retry the failed items: loupe resume --retry-failed --run ${id}\n`);
  }
  return any;
}
