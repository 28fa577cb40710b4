/**
 * Compensation sweeps: one intact readout run plus one per ablation spec, queued together and
 * summarised as recovery per stage. Summaries are partial while the sweep runs: a run that is
 * not done (or whose readout cannot be summarised) gives null cells, so a UI can refresh the
 * table as each run finishes. Finished runs never change, so their readout summaries are cached.
 */
import { modelShape, checkLayers } from '../../../src-shared/ablation/sweep-grid.ts';
import { refuseTokenAblation } from '../../../src-shared/ablation/mask.ts';
import type { RunInfo } from '../../../src-shared/contract/domain.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { ParsedParamsOf, ResultOf } from '../../../src-shared/contract/methods.ts';
import { type StageAccuracy, recoveryTable, recoveryWithInterval } from '../../../src-shared/metrics/recovery.ts';
import { json } from '../../store/database.ts';
import type { Store } from '../../store/store.ts';
import type { EngineContext } from '../../engine/engine-context.ts';
import { createRun } from '../../engine/create-run.ts';
import { type ReadoutPerItem, type ReadoutSummary, readoutAnalysis } from '../hidden-in-plain-sight/readout-summary.ts';
import { mcnemar } from '../../../src-shared/metrics/mcnemar.ts';

/** A readout needs this many finished items (readout-summary.ts). */
const MIN_ITEMS = 5;

type SweepRun = ResultOf<'sweeps/list'>[number]['runs'][number];

interface StoredSweep {
  base: Record<string, unknown>;
  ablations: unknown[];
  /** Absent in sweeps started before labels existed. */
  labels?: string[];
}

/**
 * Checks everything that would only fail later in a run, then creates the sweep and its runs in one transaction and queues them
 * (`enqueue`: this engine's queue, or nothing when a cluster queue takes them — src-main/cluster/coordinator.ts).
 */
export function startSweep(engine: EngineContext, p: ParsedParamsOf<'sweeps/start'>, enqueue: (runId: string) => void = (id) => void engine.queue.enqueue(id)): ResultOf<'sweeps/start'> {
  const { store } = engine;
  const { modelId, datasetId, name, base, ablations, labels } = p;
  if (labels && labels.length !== ablations.length) throw new LoupeError('bad-input', `sweep has ${ablations.length} ablation spec(s) but ${labels.length} label(s)`);
  const model = store.models.get(modelId);
  const dataset = store.datasets.get(datasetId);
  const items = base.limit ? Math.min(base.limit, dataset.itemCount) : dataset.itemCount;
  if (items < MIN_ITEMS) throw new LoupeError('bad-input', `a sweep's readouts need at least ${MIN_ITEMS} items; dataset ${datasetId} gives ${items}${base.limit ? ` with limit ${base.limit}` : ''}`);
  const shape = modelShape(model.config);
  ablations.forEach((spec, i) => {
    try {
      refuseTokenAblation(spec);
      checkLayers(spec, shape);
    } catch (e) {
      throw new LoupeError('bad-input', `ablation ${i + 1}${labels ? ` (${labels[i]})` : ''}: ${(e as Error).message}`);
    }
  });
  const { sweepId, runs } = store.db.transaction(() => {
    const id = store.runs.createSweep(name, { base, ablations, ...(labels && { labels }) } satisfies StoredSweep);
    const created = [undefined, ...ablations].map((ablation, i) =>
      createRun(engine, { kind: 'readout', modelId, datasetId, name: `${name} · ${i === 0 ? 'intact' : (labels?.[i - 1] ?? `ablation ${i}`)}`, spec: { ...base, ...(ablation && { ablation }) } }, id),
    );
    return { sweepId: id, runs: created };
  })();
  for (const r of runs) enqueue(r.id);
  return { sweepId, runIds: runs.map((r) => r.id) };
}

interface SweepRow {
  id: string;
  name: string;
  spec: string;
  created_at: string;
}

function sweepRow(store: Store, sweepId: string): SweepRow {
  const row = store.db.prepare('SELECT id, name, spec, created_at FROM sweeps WHERE id = ?').get(sweepId) as SweepRow | undefined;
  if (!row) throw new LoupeError('not-found', `no sweep with id ${sweepId}`);
  return row;
}

/** Labels of the runs, intact first. */
function runLabels(row: SweepRow, count: number): string[] {
  const spec = json<StoredSweep>(row.spec);
  return ['intact', ...Array.from({ length: count - 1 }, (_, i) => spec.labels?.[i] ?? `ablation ${i + 1}`)];
}

const sweepRun = (r: RunInfo, label: string, error: string | null = r.error): SweepRun => ({ id: r.id, label, status: r.status, done: r.done, total: r.total, failed: r.failed, error });

/** Every sweep, newest first, with its runs' progress. */
export function listSweeps(store: Store): ResultOf<'sweeps/list'> {
  const rows = store.db.prepare('SELECT id, name, spec, created_at FROM sweeps ORDER BY created_at DESC, rowid DESC').all() as SweepRow[];
  return rows.flatMap((row) => {
    const runs = store.db.prepare('SELECT 1 FROM runs WHERE sweep_id = ? LIMIT 1').get(row.id) ? store.runs.sweepRuns(row.id) : [];
    if (!runs.length) return []; // never started (no runs): nothing to reopen
    const labels = runLabels(row, runs.length);
    return [{ id: row.id, name: row.name, createdAt: row.created_at, modelId: runs[0]!.modelId, datasetId: runs[0]!.datasetId, runs: runs.map((r, i) => sweepRun(r, labels[i]!)) }];
  });
}

type Analysis = ReturnType<typeof readoutAnalysis>;
const cache = new WeakMap<Store, Map<string, Analysis>>();
const CACHE_SIZE = 256;

/** A finished run's readout summary and per-item outcomes (cached: a done run's results never change). */
function finishedAnalysis(store: Store, run: RunInfo): Analysis {
  const key = `${run.id}@${run.updatedAt}`;
  const byStore = cache.get(store) ?? new Map<string, Analysis>();
  cache.set(store, byStore);
  const hit = byStore.get(key);
  if (hit) return hit;
  const analysis = readoutAnalysis(store, run.id);
  if (byStore.size >= CACHE_SIZE) byStore.delete(byStore.keys().next().value!);
  byStore.set(key, analysis);
  return analysis;
}

const withAnswer = (s: ReadoutSummary): StageAccuracy[] => [...s.stages, { stage: 'answer', accuracy: s.answer.accuracy }];

/**
 * Per stage, for each ablated run against the intact one on the items both finished: recovery with
 * a paired bootstrap interval (null, with a note, where intact is within noise of the floor), and
 * McNemar's p for "the ablation changed which items are right". Probe readouts are cross-validated
 * once per run; the bootstrap resamples their held-out outcomes, not the fitting.
 */
function pairedStatistics(stage: string, intact: ReadoutPerItem, ablated: (ReadoutPerItem | null)[], floor: number | 'blind') {
  const intactCorrect = intact.correct.get(stage);
  const rows = ablated.map((a) => {
    const ablatedCorrect = a?.correct.get(stage);
    if (!a || !intactCorrect || !ablatedCorrect) return null;
    const at = new Map(a.itemIds.map((id, i) => [id, i]));
    const shared = intact.itemIds.flatMap((id, i) => (at.has(id) ? [[i, at.get(id)!] as const] : []));
    if (shared.length < 2) return null;
    const x = Uint8Array.from(shared, ([i]) => intactCorrect[i]!);
    const y = Uint8Array.from(shared, ([, j]) => ablatedCorrect[j]!);
    const f = floor === 'blind' ? Uint8Array.from(shared, ([i]) => intact.correct.get('blind')![i]!) : floor;
    return { estimate: recoveryWithInterval(x, y, f, { seed: `recovery:${stage}` }), mcnemar: mcnemar(x, y) };
  });
  const first = rows.find((r) => r)?.estimate;
  return {
    recovery: rows.map((r) => r?.estimate.recovery ?? null),
    recoveryInterval: rows.map((r) => r?.estimate.interval ?? null),
    mcnemarP: rows.map((r) => r?.mcnemar.pValue ?? null),
    intactAboveFloor: first ? first.intactAboveFloor : null,
    note: first?.reason ?? null,
  };
}

/**
 * recovery = (ablated − floor) / (intact − floor) per stage and for the answer, over the runs done
 * (the `blind` floor applies to the answer only; feature readouts use chance: `featureFloor`)
 * so far: cells of unfinished runs are null, and so is everything that needs the intact run
 * (its accuracies, the floor, every recovery) until it is done. A finished run whose readout
 * cannot be summarised (e.g. too many failed items) keeps null cells and says why in its `error`.
 */
export function sweepSummary(store: Store, sweepId: string, floor: 'chance' | 'blind'): ResultOf<'sweeps/summary'> {
  const row = sweepRow(store, sweepId);
  const runs = store.runs.sweepRuns(sweepId);
  const labels = runLabels(row, runs.length);
  const done = runs.map((r) => {
    // A partial run (some items failed) is summarised over the items that succeeded, as before run states existed.
    if (r.status !== 'done' && r.status !== 'partial') return { summary: null, perItem: null, error: r.error };
    try {
      const a = finishedAnalysis(store, r);
      return { summary: a.summary, perItem: a.perItem, error: null };
    } catch (e) {
      if (e instanceof LoupeError) return { summary: null, perItem: null, error: e.message };
      throw e;
    }
  });
  const [intact, ...ablated] = done;
  const ablatedStages = ablated.map((a) => (a.summary ? withAnswer(a.summary) : []));
  let floorValue: number | null = null;
  let featureFloor: number | null = null;
  let stages: ResultOf<'sweeps/summary'>['stages'];
  if (intact!.summary) {
    floorValue = floor === 'chance' ? intact!.summary.chance : intact!.summary.blind.accuracy;
    featureFloor = intact!.summary.chance;
    const answerFloor = floorValue;
    const table = recoveryTable(withAnswer(intact!.summary), ablatedStages, (stage) => (stage === 'answer' ? answerFloor : featureFloor!));
    stages = table.map((row) => ({ ...row, ...pairedStatistics(row.stage, intact!.perItem!, ablated.map((a) => a.perItem), floor === 'blind' && row.stage === 'answer' ? 'blind' : featureFloor!) }));
  } else {
    // No intact run yet: the stages the finished ablated runs read out, in their order.
    const names = [...new Set(ablatedStages.flatMap((s) => s.map((x) => x.stage)))];
    stages = names.map((stage) => ({
      stage,
      intact: null,
      ablated: ablatedStages.map((s) => s.find((x) => x.stage === stage)?.accuracy ?? null),
      recovery: ablated.map(() => null),
      recoveryInterval: ablated.map(() => null),
      mcnemarP: ablated.map(() => null),
      intactAboveFloor: null,
      note: 'the intact run has not finished',
    }));
  }
  return {
    sweepId,
    name: row.name,
    runIds: runs.map((r) => r.id),
    runs: runs.map((r, i) => sweepRun(r, labels[i]!, done[i]!.error)),
    floor: floorValue,
    featureFloor,
    stages,
  };
}
