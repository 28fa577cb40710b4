/**
 * Per-run metric summaries and run-to-run differences, for the comparison table.
 * Binary metrics (every value 0 or 1, e.g. `correct`) get a Wilson 95% interval — the
 * normal approximation misbehaves near 0 and 1, which is where probe accuracies live.
 */
export interface MetricSummary {
  name: string;
  n: number;
  mean: number;
  /** 95% interval: Wilson for binary metrics, mean ± 1.96·s/√n otherwise. */
  low: number;
  high: number;
  binary: boolean;
}

export function wilson(successes: number, n: number, z = 1.959964): [number, number] {
  if (n === 0) return [0, 1];
  const p = successes / n;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

export function summarize(name: string, values: number[]): MetricSummary {
  const n = values.length;
  const mean = n ? values.reduce((a, b) => a + b, 0) / n : NaN;
  const binary = n > 0 && values.every((v) => v === 0 || v === 1);
  if (binary) {
    const [low, high] = wilson(values.reduce<number>((a, b) => a + b, 0), n);
    return { name, n, mean, low, high, binary };
  }
  const sd = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? (1.959964 * sd) / Math.sqrt(n) : 0;
  return { name, n, mean, low: mean - half, high: mean + half, binary };
}

export interface ComparedMetric {
  name: string;
  /** One summary per run, in the order given (null where the run lacks the metric). */
  perRun: (MetricSummary | null)[];
  /** mean(run i) − mean(run 0); null when either lacks it. */
  diffs: (number | null)[];
}

/** Metrics of several runs side by side; items are matched by id so partial runs compare fairly. */
export function compareRuns(runs: { itemId: string; metrics: Record<string, number> }[][], sharedItemsOnly = true): { metrics: ComparedMetric[]; sharedItems: number } {
  const shared = runs.length ? runs.map((r) => new Set(r.map((x) => x.itemId))).reduce((a, b) => new Set([...a].filter((x) => b.has(x)))) : new Set<string>();
  const names = [...new Set(runs.flatMap((r) => r.flatMap((x) => Object.keys(x.metrics))))].sort();
  const metrics = names.map((name) => {
    const perRun = runs.map((r) => {
      const vals = r.filter((x) => (!sharedItemsOnly || shared.has(x.itemId)) && name in x.metrics).map((x) => x.metrics[name]!);
      return vals.length ? summarize(name, vals) : null;
    });
    const base = perRun[0];
    return { name, perRun, diffs: perRun.map((s) => (s && base ? s.mean - base.mean : null)) };
  });
  return { metrics, sharedItems: shared.size };
}
