/** Handlers of the commands that list and import: info, models, variants, datasets, runs, import-*. */
import { UsageError } from './command-spec.ts';
import type { CliContext } from './context.ts';
import { benchmarkImportText, datasetsTable, infoText, modelsTable, runsTable, variantsTable } from './summaries.ts';

export async function infoCommand(ctx: CliContext): Promise<void> {
  const i = await ctx.call('app/info', {});
  ctx.emit(i, () => infoText(i));
}

export async function modelsCommand(ctx: CliContext): Promise<void> {
  const m = await ctx.call('models/list', {});
  ctx.emit(m, () => modelsTable(m));
}

export async function variantsCommand(ctx: CliContext): Promise<void> {
  const modelId = ctx.args.str('model') ?? ctx.args.positionals[0];
  if (!modelId) throw new UsageError('loupe variants needs a model: --model ID (or the id as an argument)', 'variants');
  const v = await ctx.call('models/variants', { modelId });
  ctx.emit(v, () => variantsTable(v));
}

export async function datasetsCommand(ctx: CliContext): Promise<void> {
  const d = await ctx.call('datasets/list', {});
  ctx.emit(d, () => datasetsTable(d));
}

export async function runsCommand(ctx: CliContext): Promise<void> {
  const status = ctx.args.str('status');
  const r = await ctx.call('runs/list', status ? { status: status as never } : {});
  ctx.emit(r, () => runsTable(r));
}

export async function importDatasetCommand(ctx: CliContext): Promise<void> {
  const d = await ctx.call('datasets/import', { path: ctx.args.positionals[0]! });
  ctx.emit(d, () => `${d.id}\nimported "${d.name}": ${d.itemCount} items (${d.path})`);
}

export async function importModelCommand(ctx: CliContext): Promise<void> {
  const m = ctx.engine.importModel(ctx.args.positionals[0]!);
  ctx.emit(m, () => [m.id, `imported "${m.name}" (${m.family}) from ${m.path}`, ...(m.notes ?? []).map((n) => `note: ${n}`)].join('\n'));
}

export async function importBenchmarkCommand(ctx: CliContext): Promise<void> {
  const a = ctx.args;
  const subset = a.list('subset');
  const split = a.str('split');
  const r = await ctx.call('datasets/import-benchmark', { format: a.need('format') as never, path: a.positionals[0]!, options: { limit: a.num('limit') ?? 0, ...(split && { split }), ...(subset && { subset }) } });
  ctx.emit(r, () => benchmarkImportText(r));
}
