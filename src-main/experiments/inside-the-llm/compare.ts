/**
 * Two vlm-forward runs of one dataset side by side: answer accuracy (over the items both ran,
 * Wilson 95% intervals) and every K/V probe metric per LLM layer × key/value with its delta.
 * Serves the key-token blocking effect (intact vs blocked) and the text-prefix control
 * (without vs with `textPrefix`): `kv/compare`.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { compareRuns } from '../../../src-shared/metrics/summary.ts';
import { VlmForwardSpec } from '../../../src-shared/jobs/specs.ts';
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
  /** Why `delta` is not a measurement, when the two runs' image K/V cannot differ by construction. */
  unchangedBy?: string;
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
  /** What the comparison can and cannot show (e.g. image K/V identical by construction). */
  notes: string[];
}

/**
 * Why the image tokens' K/V of two runs must be identical, if they must: same prompt settings,
 * no vision edits, and every LLM edit of either run only changes what text positions attend to
 * (queries `text` / `last`) — an image token's keys and values at layer l depend only on the
 * image tokens' own attention below l, which no such edit touches. Key-token blocking (text →
 * flagged image tokens) is this case: its effect shows in the answer, never in image K/V.
 */
export function imageKvUnchanged(base: VlmForwardSpec, other: VlmForwardSpec): string | undefined {
  if ((base.textPrefix ?? '') !== (other.textPrefix ?? '') || base.image !== other.image) return undefined;
  const edits = [...(base.ablation?.edits ?? []), ...(other.ablation?.edits ?? [])];
  const textOnly = edits.every((e) => e.part === 'llm' && (e.op === 'block' || e.op === 'scale') && (e.queries.kind === 'text' || e.queries.kind === 'last'));
  if (!textOnly) return undefined;
  return 'the runs differ only in what text positions attend to, so every image token\'s keys and values are identical in both: image-K/V probe deltas are 0 by construction, not a measurement (the effect shows in the answer)';
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
  const unchanged = imageKvUnchanged(VlmForwardSpec.parse(base.spec), VlmForwardSpec.parse(other.spec));
  const probes = [...byKey.values()].map(({ a: x, b: y }): KvCompareRow => {
    const r = (x ?? y)!;
    // Referring reads the question's K/V too, which text-position edits do change.
    const byConstruction = unchanged && r.probe !== 'referring' ? unchanged : undefined;
    return {
      probe: r.probe,
      metric: r.metric,
      layer: r.layer,
      kind: r.kind,
      items: Math.min(x?.items ?? 0, y?.items ?? 0),
      base: x?.value ?? null,
      other: y?.value ?? null,
      delta: x && y && !byConstruction ? y.value - x.value : null,
      baseControl: x?.control ?? null,
      otherControl: y?.control ?? null,
      ...(byConstruction && { unchangedBy: byConstruction }),
    };
  });
  return {
    baseRunId,
    runId,
    sharedItems,
    answer: { base: a, other: b, delta: a && b ? b.accuracy - a.accuracy : null },
    pAnswer: { base: pa, other: pb, delta: pa !== null && pb !== null ? pb - pa : null },
    probes,
    notes: unchanged ? [unchanged] : [],
  };
}
