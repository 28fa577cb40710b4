/** Handlers of the commands that compute: run, resume, cancel, sweep, serve, worker. */
import { existsSync } from 'node:fs';
import { type SweepFamily, modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { ParamsOf } from '../../src-shared/contract/methods.ts';
import { parseVariantFlag } from '../../src-shared/jobs/variant.ts';
import { clusterTarget, runWorkerCommand, waitForCluster } from '../cluster/cluster-commands.ts';
import { redact } from '../cluster/queue-url.ts'; // the queue URL may hold a password: never print it
import { RENDERER_DIST } from '../paths.ts';
import { resolveServeOptions } from '../server/serve-options.ts';
import { serve } from '../server/serve.ts';
import type { ParsedArgs } from './command-spec.ts';
import type { CliContext } from './context.ts';
import { reportFailedRuns } from './failed-runs.ts';
import { runLine, runsTable, sweepSummaryText } from './summaries.ts';
import { formatBytes } from '../../src-shared/tensor/format-bytes.ts';

/** `--family` / `--from` / `--keys` as a sweep family (the table has already checked each value). */
export function sweepFamily(a: ParsedArgs): SweepFamily {
  const kind = (a.str('family') ?? 'vision-patches') as SweepFamily['kind'];
  const keys = (a.str('keys') ?? 'patches') as 'patches' | 'all';
  if (kind === 'vision-single') return { kind, keys };
  if (kind === 'vision-patches') return { kind, keys, from: (a.str('from') ?? 'last') as 'first' | 'last' };
  return { kind, from: (a.str('from') ?? 'first') as 'first' | 'last' };
}

/** `--variant` as a spec field (`{}` when absent; the table's check has refused a malformed one). */
export const variantOption = (a: ParsedArgs) => {
  const v = a.str('variant');
  return v === undefined ? {} : { variant: parseVariantFlag(v) };
};

/** A dataset id, or a folder imported first (the old `--dataset PATH` shortcut). */
export const datasetOf = (ctx: CliContext, idOrPath: string) => (existsSync(idOrPath) ? ctx.engine.importDataset(idOrPath).id : idOrPath);

/** Reports runs that did not end `done`: JSON lines with --json, reasons on stderr always; marks the exit status. */
function reportFailures(ctx: CliContext, ids: Iterable<string>): void {
  const print = ctx.json ? (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`) : () => {};
  ctx.progress.finish();
  if (reportFailedRuns(ctx.engine.store, ids, print, (id) => ctx.engine.queue.unsavedStop(id))) ctx.fail();
}

export async function runCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const datasetId = datasetOf(ctx, a.need('dataset'));
  const extra = JSON.parse(a.str('spec') ?? '{}') as object;
  const spec = { limit: a.num('limit') ?? 0, ...(a.str('dtype') && { storeDtype: a.str('dtype') }), ...variantOption(a), ...extra };
  const start = { kind: a.str('kind'), modelId: a.need('model'), datasetId, spec, ...clusterTarget(a.raw()) } as ParamsOf<'jobs/start'>;
  // What the captures will take, before anything runs (jobs/start refuses when it exceeds the free space).
  const est = await ctx.call('jobs/estimate', start);
  if (est.runBytes !== null && est.itemBytes) ctx.say(`captures: about ${formatBytes(est.runBytes)} (${est.items} items × ${formatBytes(est.itemBytes)}); ${formatBytes(est.freeBytes)} free in ${est.dataDir}`);
  const run = await ctx.call('jobs/start', start);
  ctx.out(run.id); // on its own line, first, so `id=$(loupe run …)` and a reader both get it at once
  ctx.say(`${run.name}: ${run.total} items${a.str('queue') ? ` on ${redact(a.str('queue')!)}` : ''}`);
  await (a.str('queue') ? waitForCluster(ctx.engine, [run.id]) : ctx.engine.queue.drained());
  const done = ctx.engine.store.runs.get(run.id);
  ctx.progress.finish();
  if (ctx.json) process.stdout.write(`${JSON.stringify({ result: done })}\n`);
  else ctx.say(runLine(done));
  reportFailures(ctx, [run.id]);
}

export async function resumeCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  // The runs this call finishes: those the engine re-queued on start, plus --run (or every partial/failed run with --retry-failed).
  const { current, waiting } = ctx.engine.queue.snapshot();
  const touched = [...(current ? [current] : []), ...waiting];
  const runId = a.str('run');
  if (a.bool('retry-failed')) {
    const ids = runId ? [runId] : ctx.engine.store.runs.list().filter((r) => r.status === 'partial' || r.status === 'failed').map((r) => r.id);
    for (const id of ids) touched.push((await ctx.call('runs/retry-failed', { runId: id })).id);
  } else if (runId) touched.push((await ctx.call('jobs/resume', { runId })).id);
  ctx.say(touched.length === 0 ? 'nothing to resume' : `resuming ${[...new Set(touched)].join(', ')}`);
  await ctx.engine.queue.drained();
  const all = ctx.engine.store.runs.list();
  const mine = all.filter((r) => touched.includes(r.id));
  ctx.emit({ result: all }, () => (mine.length === 0 ? '' : runsTable(mine)));
  reportFailures(ctx, touched);
}

export async function cancelCommand(ctx: CliContext): Promise<void> {
  const r = await ctx.call('jobs/cancel', { runId: ctx.args.need('run') });
  ctx.emit(r, () => `${r.id}: ${r.status} (${r.done} of ${r.total} items done)`);
}

export async function sweepCommand(ctx: CliContext): Promise<void> {
  // Default: patch→other-patch attention blocked in the last k vision layers, k = 1…L (sweep-grid.ts families).
  const a = ctx.args;
  const modelId = a.need('model');
  const datasetId = a.need('dataset');
  const grid = sweepGrid(sweepFamily(a), modelShape(ctx.engine.store.models.get(modelId).config));
  const started = await ctx.call('sweeps/start', {
    modelId,
    datasetId,
    name: `${a.str('family')} · ${datasetId}`,
    base: { limit: a.num('limit') ?? 0, ...variantOption(a) },
    ablations: grid.map((g) => g.spec),
    labels: grid.map((g) => g.label),
    ...clusterTarget(a.raw()),
  } as ParamsOf<'sweeps/start'>);
  ctx.out(started.sweepId);
  started.runIds.forEach((id, i) => ctx.progress.label(id, i === 0 ? `intact (${id})` : `${grid[i - 1]!.label} (${id})`));
  ctx.say(`${started.runIds.length} runs: intact + ${grid.length} ablations`);
  await (a.str('queue') ? waitForCluster(ctx.engine, started.runIds) : ctx.engine.queue.drained());
  const summary = await ctx.call('sweeps/summary', { sweepId: started.sweepId });
  ctx.emit(summary, () => sweepSummaryText(summary));
  reportFailures(ctx, started.runIds);
}

/** `loupe serve`: returns only when the process is told to stop (the server keeps it alive). */
export async function serveCommand(ctx: CliContext): Promise<void> {
  // A weak --token or a bad port was already refused before the engine started (loupe.ts).
  const options = resolveServeOptions(ctx.args.raw(), process.env);
  if (!existsSync(RENDERER_DIST)) throw new LoupeError('not-found', `the renderer is not built (${RENDERER_DIST}); run \`npm run build:renderer\` or \`npm start\``);
  const s = await serve(ctx.engine, { ...options, staticRoot: RENDERER_DIST });
  process.stdout.write(`Loupe workbench: ${s.url}\n(execution provider: ${ctx.engine.compute.provider}; data: ${ctx.engine.options.dataDir})\n`);
  await new Promise<never>(() => {});
}

export async function workerCommand(ctx: CliContext): Promise<void> {
  await runWorkerCommand(ctx.args.raw());
}
