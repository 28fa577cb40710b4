/**
 * "LLMs can compensate": how much of an ablation's damage each stage recovers.
 * recovery = (ablated − floor) / (intact − floor), per stage, where the floor is fixed by the
 * sweep: chance, or for the *answer* the blind answer's accuracy. Feature readouts always use
 * chance — a blank image has no features to probe, so the blind answer is no floor for them.
 * 1 = fully recovered, 0 = at the floor; undefined (null) when the intact run is itself at the floor.
 */
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
