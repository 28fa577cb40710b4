/** Waiting for a run through the engine contract, as the end-to-end tests drive the served workbench. */
import type { EngineClient } from '../../src-shared/contract/client.ts';

/**
 * Polls `runs/get` until the run is done. A run that ends any other way (failed, partial,
 * cancelled) throws at once with its status and error; one still going after `timeoutMs` throws too.
 */
export async function waitForRun(client: EngineClient, runId: string, timeoutMs: number, pollMs = 300): Promise<void> {
  for (const t0 = Date.now(); ; ) {
    const { run } = await client.call('runs/get', { runId });
    if (run.status === 'done') return;
    if (run.status === 'failed' || run.status === 'partial' || run.status === 'cancelled') throw new Error(`run ${runId} ended ${run.status}: ${run.error ?? 'no error recorded'}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`run ${runId} did not finish in ${timeoutMs / 1000} s (status ${run.status})`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
