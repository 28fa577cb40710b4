/**
 * "LLMs can compensate": how much of an ablation's damage each stage recovers.
 * recovery = (ablated − floor) / (intact − floor), per stage, where the floor is fixed by the
 * sweep: chance, or for the *answer* the blind answer's accuracy. Feature readouts always use
 * chance — a blank image has no features to probe, so the blind answer is no floor for them.
 * 1 = fully recovered, 0 = at the floor; undefined (null) when the intact run is itself at the floor.
 */
import { type BootstrapOptions, bootstrapDistribution, percentileInterval } from './bootstrap.ts';

export function recovery(ablated: number, intact: number, floor: number): number | null {
  const span = intact - floor;
  if (Math.abs(span) < 1e-12) return null;
  return (ablated - floor) / span;
}

export interface StageAccuracy {
  stage: string;
  accuracy: number;
}

/** Recovery per stage of each ablated run against the intact run (stages matched by name); `floor` per stage. */
export function recoveryTable(intact: StageAccuracy[], ablated: StageAccuracy[][], floor: (stage: string) => number): { stage: string; intact: number; ablated: (number | null)[]; recovery: (number | null)[] }[] {
  return intact.map((s) => {
    const acc = ablated.map((run) => run.find((x) => x.stage === s.stage)?.accuracy ?? null);
    return { stage: s.stage, intact: s.accuracy, ablated: acc, recovery: acc.map((a) => (a === null ? null : recovery(a, s.accuracy, floor(s.stage)))) };
  });
}

export interface RecoveryEstimate {
  /** Null when the intact run is not above the floor beyond noise (`reason` says so). */
  recovery: number | null;
  /** 95% percentile-bootstrap interval of the recovery (items resampled, paired across runs). */
  interval: [number, number] | null;
  /** Whether intact − floor is above 0 with 95% confidence (the lower bootstrap bound of the span > 0). */
  intactAboveFloor: boolean;
  reason: string | null;
}

/**
 * Recovery with its uncertainty, from per-item correctness (1/0) of the same items in the intact
 * and the ablated run. The floor is a fixed accuracy (chance) or a per-item blind outcome (the
 * answer row's blind floor), resampled with the items. A recovery is a ratio of differences: where
 * the intact run is within noise of the floor (its span's 95% interval reaches 0) it is not defined
 * — a numeric value there (3.50, −3.17 …) would be noise divided by noise.
 */
export function recoveryWithInterval(intact: ArrayLike<number>, ablated: ArrayLike<number>, floor: number | ArrayLike<number>, o: BootstrapOptions = {}): RecoveryEstimate {
  const n = intact.length;
  if (ablated.length !== n || (typeof floor !== 'number' && floor.length !== n)) throw new RangeError(`recoveryWithInterval: ${n} intact, ${ablated.length} ablated${typeof floor === 'number' ? '' : `, ${floor.length} floor`} outcomes — they must be the same items`);
  const mean = (x: ArrayLike<number>, idx: Int32Array | null) => {
    let s = 0;
    const m = idx ? idx.length : x.length;
    for (let i = 0; i < m; i++) s += x[idx ? idx[i]! : i]!;
    return s / m;
  };
  const floorOf = (idx: Int32Array | null) => (typeof floor === 'number' ? floor : mean(floor, idx));
  const span = (idx: Int32Array | null) => mean(intact, idx) - floorOf(idx);
  const confidence = o.confidence ?? 0.95;
  const spans = bootstrapDistribution(n, span, o);
  const spanCi = percentileInterval(span(null), spans, confidence);
  const intactAboveFloor = spanCi.low > 0;
  if (!intactAboveFloor) {
    return { recovery: null, interval: null, intactAboveFloor, reason: `intact − floor = ${spanCi.estimate.toFixed(3)} (95% CI ${spanCi.low.toFixed(3)} … ${spanCi.high.toFixed(3)}) is within noise of 0: recovery is not defined` };
  }
  const ratio = (idx: Int32Array | null) => {
    const s = span(idx);
    return Math.abs(s) < 1e-12 ? Number.NaN : (mean(ablated, idx) - floorOf(idx)) / s;
  };
  const dist = bootstrapDistribution(n, ratio, o).filter((v) => Number.isFinite(v));
  const ci = percentileInterval(ratio(null), dist, confidence);
  return { recovery: ci.estimate, interval: [ci.low, ci.high], intactAboveFloor, reason: null };
}
