/**
 * Human renderings of the contract's results: aligned tables for lists and experiment summaries.
 * Each takes the exact result the --json mode prints, so both modes show the same numbers.
 */
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { type Cell, bytes, fixed, percent, table, withInterval } from './text-table.ts';

const day = (iso: string) => iso.replace('T', ' ').slice(0, 16);

export function modelsTable(models: ResultOf<'models/list'>): string {
  if (models.length === 0) return 'no models (add one: loupe import-model PATH)';
  return table(
    ['id', 'name', 'family', 'source', 'added'],
    models.map((m) => [m.id, m.name, m.family, m.bundled ? 'bundled' : m.path, day(m.addedAt)]),
  );
}

export function datasetsTable(datasets: ResultOf<'datasets/list'>): string {
  if (datasets.length === 0) return 'no datasets (add one: loupe import-dataset PATH or loupe import-benchmark --format F PATH)';
  return table(
    ['id', 'name', 'task', 'items', 'source'],
    datasets.map((d) => [d.id, d.name, d.task, d.itemCount, d.bundled ? 'bundled' : d.path]),
  );
}

/** `96/96`, `95/96, 1 failed`. */
const progressCell = (r: Pick<RunInfo, 'done' | 'failed' | 'total'>) => `${r.done}/${r.total}${r.failed > 0 ? `, ${r.failed} failed` : ''}`;

export function runsTable(runs: readonly RunInfo[]): string {
  if (runs.length === 0) return 'no runs (start one: loupe run --model ID --dataset ID)';
  return table(
    ['id', 'status', 'items', 'kind', 'model', 'dataset', 'created', 'name'],
    runs.map((r) => [r.id, r.status, progressCell(r), r.kind, r.modelId, r.datasetId, day(r.createdAt), r.name]),
  );
}

/** One finished run, for `loupe run`: its state line (the id has its own line already). */
export function runLine(r: RunInfo): string {
  return `${r.status}: ${r.done} of ${r.total} items${r.failed > 0 ? `, ${r.failed} failed` : ''} — ${r.name}${r.error ? `\n  ${r.error}` : ''}`;
}

export function infoText(i: ResultOf<'app/info'>): string {
  return table(
    ['', ''],
    [
      ['version', i.version],
      ['execution provider', i.executionProvider],
      ['available providers', i.availableProviders.join(', ')],
      ['data folder', i.dataDir],
    ],
  )
    .split('\n')
    .slice(2)
    .join('\n');
}

export function variantsTable(v: ResultOf<'models/variants'>): string {
  const rows: Cell[][] = [];
  for (const s of v.sessions) for (const x of s.variants) rows.push([s.session, x.dtype, x.dtype === s.default ? 'default' : '', bytes(x.bytes), x.file]);
  return `${table(['session', 'dtype', '', 'size', 'file'], rows)}\n\nevery session has: ${v.common.join(', ') || '(no dtype in common)'} (--variant DTYPE, or --variant session=dtype,…)`;
}

export function readoutSummaryText(s: ResultOf<'readout/summary'>): string {
  const stage = (x: ResultOf<'readout/summary'>['stages'][number]): Cell[] => [x.stage, x.method, withInterval(x.accuracy, x.low, x.high), fixed(x.shuffledAccuracy)];
  const out = [
    `${s.items} items, ${s.choices.length} choices (${s.choices.join(', ')}), chance ${fixed(s.chance)}`,
    '',
    table(['stage', 'readout', 'accuracy [95% CI]', 'shuffled'], [...s.stages.map(stage), ['answer', 'scored', withInterval(s.answer.accuracy, s.answer.low, s.answer.high), null], ['blind', 'scored', withInterval(s.blind.accuracy, s.blind.low, s.blind.high), null]]),
  ];
  if (s.alternatives.length > 0) out.push('', 'other readouts:', table(['stage', 'readout', 'accuracy [95% CI]', 'shuffled'], s.alternatives.map(stage)));
  if (s.generated) out.push('', `generated answers: ${withInterval(s.generated.answer.accuracy, s.generated.answer.low, s.generated.answer.high)} (${s.generated.unmatched} unmatched); blind ${withInterval(s.generated.blind.accuracy, s.generated.blind.low, s.generated.blind.high)}`);
  out.push(
    '',
    table(
      ['total variation', 'distance [95% CI]'],
      [
        ['answer vs truth', withInterval(s.tv.answerVsTruth, ...s.tvIntervals.answerVsTruth)],
        ['blind vs truth', withInterval(s.tv.blindVsTruth, ...s.tvIntervals.blindVsTruth)],
        ['answer vs blind', withInterval(s.tv.answerVsBlind, ...s.tvIntervals.answerVsBlind)],
      ],
    ),
    '',
    `present but not surfaced: ${s.presentNotSurfaced.length} of ${s.items} items (${percent(s.presentNotSurfacedStats.rate)}; shuffled control ${percent(s.presentNotSurfacedStats.controlRate)})`,
  );
  return out.join('\n');
}

export function kvSegmentationTable(rows: ResultOf<'kv/segmentation'>): string {
  if (rows.length === 0) return 'no layer scored (the run needs taps.imageKV and items with a marker and a mask)';
  return table(['layer', 'kind', 'items', 'mIoU', 'control'], rows.map((r) => [r.layer, r.kind, r.items, fixed(r.miou), fixed(r.controlMiou)]));
}

export function kvProbesTable(rows: ResultOf<'kv/probes'>): string {
  if (rows.length === 0) return 'no probe applies to this run (it needs taps.imageKV and labelled items)';
  return table(['probe', 'metric', 'layer', 'kind', 'items', 'value', 'control'], rows.map((r) => [r.probe, r.metric, r.layer, r.kind, r.items, fixed(r.value), fixed(r.control)]));
}

export function keyTokensText(k: ResultOf<'kv/key-tokens'>): string {
  const flagged = k.tokens.filter((t) => t.flagged);
  const out = [
    `${k.items} items; rule: ${k.rule}`,
    '',
    table(['layer', 'tokens', 'mean variance', 'median variance', 'flagged'], k.layers.map((l) => [l.layer, l.tokens, fixed(l.meanVariance, 4), fixed(l.medianVariance, 4), l.flagged])),
    '',
    flagged.length === 0
      ? 'no key token flagged under this threshold'
      : `flagged key tokens:\n${table(['layer', 'image', 'tile', 'row', 'col', 'variance/mean', 'z', 'input var.'], flagged.map((t) => [t.layer, t.image, t.tile, t.row, t.col, fixed(t.normalised), fixed(t.z, 2), fixed(t.inputNormalised)]))}`,
  ];
  if (k.blockingRun) out.push('', `--block runs: ${k.blockingRun.name}`);
  return out.join('\n');
}

export function kvCompareText(c: ResultOf<'kv/compare'>): string {
  const acc = (a: { accuracy: number; low: number; high: number } | null) => (a ? withInterval(a.accuracy, a.low, a.high) : null);
  const out = [
    `base ${c.baseRunId} vs ${c.runId}: ${c.sharedItems} shared items`,
    '',
    table(
      ['', 'base', 'other', 'Δ (other − base)'],
      [
        ['answer accuracy', acc(c.answer.base), acc(c.answer.other), fixed(c.answer.delta)],
        ['p(answer)', fixed(c.pAnswer.base), fixed(c.pAnswer.other), fixed(c.pAnswer.delta)],
      ],
    ),
  ];
  if (c.probes.length > 0)
    out.push('', table(['probe', 'metric', 'layer', 'kind', 'items', 'base', 'other', 'Δ', 'base ctrl', 'other ctrl'], c.probes.map((p) => [p.probe, p.metric, p.layer, p.kind, p.items, fixed(p.base), fixed(p.other), p.unchangedBy ? `= (${p.unchangedBy})` : fixed(p.delta), fixed(p.baseControl), fixed(p.otherControl)])));
  for (const n of c.notes) out.push(`note: ${n}`);
  return out.join('\n');
}

export function sweepSummaryText(s: ResultOf<'sweeps/summary'>): string {
  const ablated = s.runs.slice(1);
  const out = [`sweep ${s.sweepId}: ${s.name}`, '', table(['run', 'label', 'status', 'items'], s.runs.map((r) => [r.id, r.label, r.status, progressCell(r)]))];
  out.push('', 'accuracy per stage:', table(['stage', 'intact', ...ablated.map((r) => r.label)], s.stages.map((st) => [st.stage, fixed(st.intact), ...st.ablated.map((a) => fixed(a))])));
  out.push(
    '',
    `recovery = (ablated − floor) / (intact − floor); floor ${fixed(s.floor)} for the answer, ${fixed(s.featureFloor)} (chance) for features; [95% CI]:`,
    table(['stage', ...ablated.map((r) => r.label)], s.stages.map((st) => [st.stage, ...st.recovery.map((r, i) => (r === null ? (st.intactAboveFloor === false ? 'n/d' : null) : withInterval(r, st.recoveryInterval[i]?.[0], st.recoveryInterval[i]?.[1], 2)))])),
  );
  for (const st of s.stages) if (st.note) out.push(`${st.stage}: ${st.note}`);
  for (const r of s.runs) if (r.error) out.push(`${r.label} (${r.id}): ${r.error}`);
  return out.join('\n');
}

export function partsLogitLensText(p: ResultOf<'parts/logit-lens'>): string {
  const out = [`${p.parts.length} parts, top-${p.topK} of ${p.vocab} tokens (chance hit rate ${fixed(p.chance, 5)})${p.sharedItems !== null ? `, ${p.sharedItems} items shared by every run` : ''}`];
  for (const r of p.runs) {
    out.push('', `${r.runId} (${r.items} items), all parts:`, table(['layer', 'n', 'median rank', 'mean rank', `top-${p.topK} hits`, 'hit rate [95% CI]'], r.overall.map((c) => [c.layer, c.n, fixed(c.medianRank, 1), fixed(c.meanRank, 1), c.hits, withInterval(c.hitRate, c.hitLow, c.hitHigh)])));
  }
  for (const rec of p.recovery) {
    out.push('', `recovery of ${rec.runId} (hit rate vs the intact run):`, table(['layer', 'intact hit rate', 'ablated hit rate', 'recovery', 'intact median rank', 'ablated median rank'], rec.layers.map((l) => [l.layer, fixed(l.intactHitRate), fixed(l.ablatedHitRate), fixed(l.recovery), fixed(l.intactMedianRank, 1), fixed(l.ablatedMedianRank, 1)])));
  }
  if (p.skippedCount > 0) out.push('', `${p.skippedCount} part instances not ranked; first: ${p.skipped.slice(0, 3).map((s) => `${s.itemId} ${s.part}: ${s.reason}`).join('; ')}`);
  return out.join('\n');
}

export function benchmarkImportText(r: ResultOf<'datasets/import-benchmark'>): string {
  return [r.dataset.id, `imported ${r.items} items, ${r.labels} labels as "${r.dataset.name}" (${r.dataset.path})`, ...r.warnings.map((w) => `warning: ${w}`)].join('\n');
}
