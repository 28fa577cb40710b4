/**
 * Two vlm-forward runs of one dataset side by side: answer accuracy (over the items both ran,
 * Wilson 95% intervals) with the signed change, its paired bootstrap interval and McNemar's test
 * on per-item correctness, and every K/V probe figure per LLM layer × key/value with its signed
 * delta and a paired bootstrap interval over the items both runs scored (statistics.ts).
 * Serves the key-token blocking effect (intact vs blocked) and the text-prefix control
 * (without vs with `textPrefix`): `kv/compare`.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { bootstrapPairedDifferenceCI } from '../../../src-shared/metrics/bootstrap.ts';
import { type McNemarResult, mcnemar } from '../../../src-shared/metrics/mcnemar.ts';
import { compareRuns } from '../../../src-shared/metrics/summary.ts';
import { VlmForwardSpec } from '../../../src-shared/jobs/specs.ts';
import type { Store } from '../../store/store.ts';
import { type CollectedFigure, type KvEncoding, type KvProbeParams, type KvProbeRow, collectKvProbes, figureOrder } from './index.ts';
import { figure, pairedDifference } from './statistics.ts';

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
  /** other − base over the items both runs scored. */
  delta: number | null;
  /** 95% paired bootstrap interval of delta (items resampled together). */
  deltaLow: number | null;
  deltaHigh: number | null;
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
  answer: { base: AnswerSummary | null; other: AnswerSummary | null; delta: number | null; deltaLow: number | null; deltaHigh: number | null; mcnemar: McNemarResult | null };
  encoding: { base: KvEncoding; other: KvEncoding };
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

export function kvCompare(store: Store, baseRunId: string, runId: string, params: KvProbeParams = {}): KvCompareResult {
  const base = store.runs.get(baseRunId);
  const other = store.runs.get(runId);
  for (const r of [base, other]) if (r.kind !== 'vlm-forward') throw new LoupeError('bad-input', `run ${r.id} is a ${r.kind} run; kv/compare compares vlm-forward runs`);
  if (base.datasetId !== other.datasetId) throw new LoupeError('bad-input', `runs ${baseRunId} and ${runId} are over different datasets (${base.datasetId}, ${other.datasetId}); their probes are not comparable`);
  const resultsA = store.runs.results(baseRunId);
  const resultsB = store.runs.results(runId);
  const { metrics, sharedItems } = compareRuns([resultsA, resultsB]);
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
  // Per-item correctness of the items both runs answered, paired by id.
  const correctB = new Map(resultsB.filter((r) => 'correct' in r.metrics).map((r) => [r.itemId, r.metrics.correct!]));
  const paired = resultsA.filter((r) => 'correct' in r.metrics && correctB.has(r.itemId)).map((r) => [r.metrics.correct!, correctB.get(r.itemId)!] as const);

  const ca = collectKvProbes(store, baseRunId, params);
  const cb = collectKvProbes(store, runId, params);
  const o = ca.options;
  const key = (r: { probe: string; metric: string; layer: number; kind: string }) => `${r.probe}|${r.metric}|${r.layer}|${r.kind}`;
  const byKey = new Map<string, { a?: CollectedFigure; b?: CollectedFigure }>();
  for (const f of ca.figures) byKey.set(key(f), { a: f });
  for (const f of cb.figures) byKey.set(key(f), { ...byKey.get(key(f)), b: f });
  const unchanged = imageKvUnchanged(VlmForwardSpec.parse(base.spec), VlmForwardSpec.parse(other.spec));
  const valueOf = (f: CollectedFigure | undefined) => (f ? figure([...f.items.values()], f.finish, o) : null);
  const probes = [...byKey.values()]
    .map(({ a: x, b: y }): KvCompareRow | null => {
      const r = (x ?? y)!;
      const fx = valueOf(x);
      const fy = valueOf(y);
      if (!(fx && Number.isFinite(fx.value)) && !(fy && Number.isFinite(fy.value))) return null;
      // Referring reads the question's K/V too, which text-position edits do change.
      const byConstruction = unchanged && r.probe !== 'referring' ? unchanged : undefined;
      const shared = x && y ? [...x.items.keys()].filter((id) => y.items.has(id)) : [];
      const diff = x && y && shared.length && !byConstruction ? pairedDifference(shared.map((id) => x.items.get(id)!.stat), shared.map((id) => y.items.get(id)!.stat), r.finish, o) : null;
      return {
        probe: r.probe,
        metric: r.metric,
        layer: r.layer,
        kind: r.kind,
        items: shared.length,
        base: fx?.value ?? null,
        other: fy?.value ?? null,
        delta: diff && Number.isFinite(diff.delta) ? diff.delta : null,
        deltaLow: diff && Number.isFinite(diff.low) ? diff.low : null,
        deltaHigh: diff && Number.isFinite(diff.high) ? diff.high : null,
        baseControl: fx?.control ?? null,
        otherControl: fy?.control ?? null,
        ...(byConstruction && { unchangedBy: byConstruction }),
      };
    })
    .filter((r): r is KvCompareRow => r !== null)
    .sort(figureOrder);
  const accuracyDelta = paired.length ? bootstrapPairedDifferenceCI(paired.map((x) => x[1]), paired.map((x) => x[0]), { resamples: o.resamples, seed: o.seed }) : null;
  const notes = [...(unchanged ? [unchanged] : [])];
  if (ca.encoding !== cb.encoding) notes.push(`the runs encode multi-image items differently (${baseRunId}: ${ca.encoding}; ${runId}: ${cb.encoding}): correspondence and propagation deltas mix that change with the one compared`);
  return {
    baseRunId,
    runId,
    sharedItems,
    answer: {
      base: a,
      other: b,
      delta: a && b ? b.accuracy - a.accuracy : null,
      deltaLow: accuracyDelta?.low ?? null,
      deltaHigh: accuracyDelta?.high ?? null,
      mcnemar: paired.length ? mcnemar(paired.map((x) => x[0]), paired.map((x) => x[1])) : null,
    },
    encoding: { base: ca.encoding, other: cb.encoding },
    pAnswer: { base: pa, other: pb, delta: pa !== null && pb !== null ? pb - pa : null },
    probes,
    notes,
  };
}
