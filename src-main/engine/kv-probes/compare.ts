/**
 * Two vlm-forward runs of one dataset side by side: answer accuracy (over the items both ran,
 * Wilson 95% intervals) and every K/V probe metric per LLM layer × key/value with its delta.
 * Serves the key-token blocking effect (intact vs blocked) and the text-prefix control
 * (without vs with `textPrefix`): `kv/compare`.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { compareRuns } from '../../../src-shared/metrics/summary.ts';
import type { Store } from '../../store/store.ts';
import { type KvProbeRow, kvProbes } from './index.ts';
import type { ProbeOptions } from './probes.ts';

export interface AnswerSummary {
  n: number;
  accuracy: number;
  low: number;
  high: number;
}

export interface KvCompareRow {
  probe: KvProbeRow['probe'];
  metric: string;
  layer: number;
  kind: KvProbeRow['kind'];
  items: number;
  base: number | null;
  other: number | null;
  /** other − base. */
  delta: number | null;
  baseControl: number | null;
  otherControl: number | null;
}

export interface KvCompareResult {
  baseRunId: string;
  runId: string;
  sharedItems: number;
  /** Answer accuracy (`correct`) over the shared items; null when the items have no answer. */
  answer: { base: AnswerSummary | null; other: AnswerSummary | null; delta: number | null };
  /** Mean probability of the right answer over the shared items. */
  pAnswer: { base: number | null; other: number | null; delta: number | null };
  probes: KvCompareRow[];
}

export function kvCompare(store: Store, baseRunId: string, runId: string, options: Partial<ProbeOptions> = {}): KvCompareResult {
  const base = store.runs.get(baseRunId);
  const other = store.runs.get(runId);
  for (const r of [base, other]) if (r.kind !== 'vlm-forward') throw new LoupeError('bad-input', `run ${r.id} is a ${r.kind} run; kv/compare compares vlm-forward runs`);
  if (base.datasetId !== other.datasetId) throw new LoupeError('bad-input', `runs ${baseRunId} and ${runId} are over different datasets (${base.datasetId}, ${other.datasetId}); their probes are not comparable`);
  const { metrics, sharedItems } = compareRuns([store.runs.results(baseRunId), store.runs.results(runId)]);
  const metric = (name: string) => metrics.find((m) => m.name === name);
  const correct = metric('correct');
  const answerOf = (i: number): AnswerSummary | null => {
    const s = correct?.perRun[i];
    return s ? { n: s.n, accuracy: s.mean, low: s.low, high: s.high } : null;
  };
  const a = answerOf(0);
  const b = answerOf(1);
  const p = metric('pAnswer');
  const pa = p?.perRun[0]?.mean ?? null;
  const pb = p?.perRun[1]?.mean ?? null;

  const rowsA = kvProbes(store, baseRunId, options);
  const rowsB = kvProbes(store, runId, options);
  const key = (r: KvProbeRow) => `${r.probe}|${r.metric}|${r.layer}|${r.kind}`;
  const byKey = new Map<string, { a?: KvProbeRow; b?: KvProbeRow }>();
  for (const r of rowsA) byKey.set(key(r), { a: r });
  for (const r of rowsB) byKey.set(key(r), { ...byKey.get(key(r)), b: r });
  const probes = [...byKey.values()].map(({ a: x, b: y }) => {
    const r = (x ?? y)!;
    return {
      probe: r.probe,
      metric: r.metric,
      layer: r.layer,
      kind: r.kind,
      items: Math.min(x?.items ?? 0, y?.items ?? 0),
      base: x?.value ?? null,
      other: y?.value ?? null,
      delta: x && y ? y.value - x.value : null,
      baseControl: x?.control ?? null,
      otherControl: y?.control ?? null,
    };
  });
  return {
    baseRunId,
    runId,
    sharedItems,
    answer: { base: a, other: b, delta: a && b ? b.accuracy - a.accuracy : null },
    pAnswer: { base: pa, other: pb, delta: pa !== null && pb !== null ? pb - pa : null },
    probes,
  };
}
