/** Handlers of the commands that summarise stored runs: readout-summary, kv-*, parts-logit-lens. */
import type { ParamsOf } from '../../src-shared/contract/methods.ts';
import { modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { UsageError } from './command-spec.ts';
import type { CliContext } from './context.ts';
import { datasetOf, sweepFamily, variantOption } from './run-commands.ts';
import { keyTokensText, kvCompareText, kvProbesTable, kvSegmentationTable, partsLogitLensText, readoutSummaryText, runLine } from './summaries.ts';

/** `{ key: value }` for the flags given, `{}` for those left out (the contract's defaults apply). */
const given = <K extends string>(pairs: [K, number | undefined][]) => Object.fromEntries(pairs.filter(([, v]) => v !== undefined)) as Partial<Record<K, number>>;

export async function readoutSummaryCommand(ctx: CliContext): Promise<void> {
  const s = await ctx.call('readout/summary', { runId: ctx.args.need('run') });
  ctx.emit(s, () => readoutSummaryText(s));
}

export async function kvSegmentationCommand(ctx: CliContext): Promise<void> {
  const rows = await ctx.call('kv/segmentation', { runId: ctx.args.need('run') });
  ctx.emit(rows, () => kvSegmentationTable(rows));
}

export async function kvProbesCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const rows = await ctx.call('kv/probes', {
    runId: a.need('run'),
    ...given([['alpha', a.num('alpha')], ['k', a.num('k')], ['shots', a.num('shots')], ['permutations', a.num('permutations')]]),
    ...(a.list('layers') && { layers: a.list('layers')!.map(Number) }),
  });
  ctx.emit(rows, () => kvProbesTable(rows));
}

export async function kvKeyTokensCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const runId = a.need('run');
  const found = await ctx.call('kv/key-tokens', { runId, ...given([['maxPerLayer', a.num('max-per-layer')], ['threshold', a.num('threshold')], ['inputFloor', a.num('input-floor')]]) });
  ctx.emit(found, () => keyTokensText(found));
  if (!a.bool('block')) return;
  if (!found.blockingRun) throw new LoupeError('bad-input', 'no key token is flagged under this threshold: nothing to block');
  const blocked = await ctx.call('jobs/start', found.blockingRun);
  ctx.out(blocked.id);
  await ctx.engine.queue.drained();
  const done = ctx.engine.store.runs.get(blocked.id);
  ctx.emit({ result: done }, () => runLine(done));
  const compared = await ctx.call('kv/compare', { baseRunId: runId, runId: blocked.id });
  ctx.emit(compared, () => kvCompareText(compared));
}

export async function kvCompareCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const c = await ctx.call('kv/compare', { baseRunId: a.need('base'), runId: a.need('run'), ...given([['alpha', a.num('alpha')], ['k', a.num('k')]]) });
  ctx.emit(c, () => kvCompareText(c));
}

export async function partsLogitLensCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const run = a.str('run');
  let runIds = [...(run ? [run] : []), ...(a.list('ablated') ?? [])];
  if (!run) {
    // No run given: the intact run and the sweep family's ablated runs, as vlm-forward runs with float32 hidden states.
    const modelId = a.str('model');
    const dataset = a.str('dataset');
    if (!modelId || !dataset) throw new UsageError('loupe parts-logit-lens needs --run, or --model and --dataset to run the sweep first', 'parts-logit-lens');
    const heads = a.list('heads')?.map(Number);
    const grid = sweepGrid(sweepFamily(a), modelShape(ctx.engine.store.models.get(modelId).config));
    const datasetId = datasetOf(ctx, dataset);
    // --prompt asks datasets without questions (PASCAL-Part) something; an item's own prompt wins.
    const base = { limit: a.num('limit') ?? 0, storeDtype: 'float32', taps: { llmLayers: true }, ...(a.str('prompt') && { prompt: a.str('prompt') }), ...variantOption(a) };
    const specs = [undefined, ...grid.map((g) => ({ edits: g.spec.edits.map((e) => (heads && e.op !== 'zero' && e.op !== 'mean' ? { ...e, heads } : e)) }))];
    runIds = [];
    for (const [i, ablation] of specs.entries()) {
      const name = `parts · ${i === 0 ? 'intact' : grid[i - 1]!.label}${heads ? ` · heads ${heads.join(',')}` : ''}`;
      const started = await ctx.call('jobs/start', { kind: 'vlm-forward', modelId, datasetId, name, spec: { ...base, ...(ablation && { ablation }) } } as ParamsOf<'jobs/start'>);
      ctx.progress.label(started.id, `${name} (${started.id})`);
      ctx.out(started.id);
      runIds.push(started.id);
    }
    await ctx.engine.queue.drained();
  }
  const parts = a.list('parts');
  const r = await ctx.call('parts/logit-lens', { runIds, ...(parts && { parts }), ...given([['topK', a.num('top-k')]]) });
  ctx.emit(r, () => partsLogitLensText(r));
}
