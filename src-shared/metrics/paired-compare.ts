/**
 * Runs compared against a chosen baseline on the items they share: per metric, the signed
 * difference Δ = run − baseline with a paired percentile-bootstrap 95% interval (items
 * resampled, the two runs' values of one item kept together: bootstrap.ts), and for 0/1
 * metrics McNemar's test on the discordant items (mcnemar.ts). Plus the per-item agreement
 * matrix of one binary metric (fraction of shared items on which two runs have the same outcome).
 *
 * Pairs are taken per run against the baseline (items both finished), so a run that finished
 * more items than another does not shrink every comparison to the smallest run.
 */
import { LoupeError } from '../contract/errors.ts';
import { bootstrapPairedDifferenceCI } from './bootstrap.ts';
import { type McNemarResult, mcnemar } from './mcnemar.ts';

export interface RunOutcomes {
  runId: string;
  results: readonly { itemId: string; metrics: Record<string, number> }[];
}

export interface PairedRunMetric {
  runId: string;
  /** Items this run and the baseline both have the metric for (the baseline's own count for itself). */
  n: number;
  /** This run's mean over those items. */
  mean: number;
  /** The baseline's mean over the same items. */
  baseMean: number;
  /** Δ = mean − baseMean with its 95% paired bootstrap interval; null for the baseline itself or no shared item. */
  delta: { estimate: number; low: number; high: number } | null;
  /** McNemar (baseline = A, this run = B) for 0/1 metrics; null otherwise. */
  mcnemar: McNemarResult | null;
}

export interface PairedMetric {
  name: string;
  /** Every value is 0 or 1 in every run. */
  binary: boolean;
  perRun: (PairedRunMetric | null)[];
}

export interface Agreement {
  metric: string;
  /** matrix[i][j]: fraction of items both runs have on which their outcomes are equal; null when they share none. */
  matrix: (number | null)[][];
  /** Items shared by two runs or more, with each run's outcome (null: the run lacks the item). */
  items: { itemId: string; outcomes: (number | null)[] }[];
}

export interface PairedComparison {
  baselineId: string;
  /** Items every run has. */
  sharedItems: number;
  metrics: PairedMetric[];
  agreement: Agreement | null;
}

export function pairedCompare(runs: readonly RunOutcomes[], baselineId: string, o: { resamples?: number } = {}): PairedComparison {
  const baseIndex = runs.findIndex((r) => r.runId === baselineId);
  if (baseIndex < 0) throw new LoupeError('bad-input', `baseline ${baselineId} is not one of the compared runs (${runs.map((r) => r.runId).join(', ')})`);
  const maps = runs.map((r) => new Map(r.results.map((x) => [x.itemId, x.metrics])));
  const base = maps[baseIndex]!;
  const shared = [...base.keys()].filter((id) => maps.every((m) => m.has(id)));
  const names = [...new Set(runs.flatMap((r) => r.results.flatMap((x) => Object.keys(x.metrics))))].sort();
  const isBinary = (name: string) => runs.every((r) => r.results.every((x) => !(name in x.metrics) || x.metrics[name] === 0 || x.metrics[name] === 1));

  const metrics = names.map((name): PairedMetric => {
    const binary = isBinary(name);
    const perRun = maps.map((m, i): PairedRunMetric | null => {
      const ids = [...m.keys()].filter((id) => name in m.get(id)! && (i === baseIndex || (base.get(id) && name in base.get(id)!)));
      if (!ids.length) return null;
      const a = Float64Array.from(ids, (id) => m.get(id)![name]!);
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      if (i === baseIndex) return { runId: runs[i]!.runId, n: ids.length, mean, baseMean: mean, delta: null, mcnemar: null };
      const b = Float64Array.from(ids, (id) => base.get(id)![name]!);
      const baseMean = b.reduce((s, v) => s + v, 0) / b.length;
      const ci = bootstrapPairedDifferenceCI(a, b, { seed: `compare:${baselineId}:${runs[i]!.runId}:${name}`, ...(o.resamples && { resamples: o.resamples }) });
      return { runId: runs[i]!.runId, n: ids.length, mean, baseMean, delta: { estimate: mean - baseMean, low: ci.low, high: ci.high }, mcnemar: binary ? mcnemar(b, a) : null };
    });
    return { name, binary, perRun };
  });

  return { baselineId, sharedItems: shared.length, metrics, agreement: agreementOf(runs, maps, metrics) };
}

/** The agreement matrix of `correct` when every run has it, else of the first binary metric every run has. */
function agreementOf(runs: readonly RunOutcomes[], maps: Map<string, Record<string, number>>[], metrics: PairedMetric[]): Agreement | null {
  const candidates = metrics.filter((m) => m.binary && m.perRun.every((p) => p !== null));
  const metric = (candidates.find((m) => m.name === 'correct') ?? candidates[0])?.name;
  if (!metric) return null;
  const outcome = (i: number, id: string): number | null => maps[i]!.get(id)?.[metric] ?? null;
  const matrix = runs.map((_, i) =>
    runs.map((__, j) => {
      let same = 0;
      let both = 0;
      for (const id of maps[i]!.keys()) {
        const x = outcome(i, id);
        const y = outcome(j, id);
        if (x === null || y === null) continue;
        both++;
        if (x === y) same++;
      }
      return both ? same / both : null;
    }),
  );
  const all = [...new Set(runs.flatMap((r) => r.results.map((x) => x.itemId)))];
  const items = all.map((itemId) => ({ itemId, outcomes: runs.map((_, i) => outcome(i, itemId)) })).filter((x) => x.outcomes.filter((v) => v !== null).length >= 2);
  return { metric, matrix, items };
}
