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
import { type StageAccuracy, recoveryTable } from '../../../src-shared/metrics/recovery.ts';
import { json } from '../../store/database.ts';
import type { Store } from '../../store/store.ts';
import type { EngineContext } from '../../engine/engine-context.ts';
import { createRun } from '../../engine/create-run.ts';
import { type ReadoutSummary, readoutSummary } from '../hidden-in-plain-sight/readout-summary.ts';

/** A readout needs this many finished items (readout-summary.ts). */
const MIN_ITEMS = 5;

type SweepRun = ResultOf<'sweeps/list'>[number]['runs'][number];

interface StoredSweep {
  base: Record<string, unknown>;
  ablations: unknown[];
  /** Absent in sweeps started before labels existed. */
  labels?: string[];
}

/** Checks everything that would only fail later in a run, then creates the sweep and its runs in one transaction and queues them. */
export function startSweep(engine: EngineContext, p: ParsedParamsOf<'sweeps/start'>): ResultOf<'sweeps/start'> {
  const { store, queue } = engine;
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
  for (const r of runs) queue.enqueue(r.id);
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

const cache = new WeakMap<Store, Map<string, ReadoutSummary>>();
const CACHE_SIZE = 256;

/** A finished run's readout summary (cached: a done run's results never change). */
function finishedSummary(store: Store, run: RunInfo): ReadoutSummary {
  const key = `${run.id}@${run.updatedAt}`;
  const byStore = cache.get(store) ?? new Map<string, ReadoutSummary>();
  cache.set(store, byStore);
  const hit = byStore.get(key);
  if (hit) return hit;
  const summary = readoutSummary(store, run.id);
  if (byStore.size >= CACHE_SIZE) byStore.delete(byStore.keys().next().value!);
  byStore.set(key, summary);
  return summary;
}

const withAnswer = (s: ReadoutSummary): StageAccuracy[] => [...s.stages, { stage: 'answer', accuracy: s.answer.accuracy }];

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
    if (r.status !== 'done' && r.status !== 'partial') return { summary: null, error: r.error };
    try {
      return { summary: finishedSummary(store, r), error: null };
    } catch (e) {
      if (e instanceof LoupeError) return { summary: null, error: e.message };
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
    stages = recoveryTable(withAnswer(intact!.summary), ablatedStages, (stage) => (stage === 'answer' ? answerFloor : featureFloor!));
  } else {
    // No intact run yet: the stages the finished ablated runs read out, in their order.
    const names = [...new Set(ablatedStages.flatMap((s) => s.map((x) => x.stage)))];
    stages = names.map((stage) => ({ stage, intact: null, ablated: ablatedStages.map((s) => s.find((x) => x.stage === stage)?.accuracy ?? null), recovery: ablated.map(() => null) }));
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
