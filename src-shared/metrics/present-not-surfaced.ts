/**
 * "Present but not surfaced": items whose answer is wrong while the task *can* be read out of the
 * model's internals. Counting an item when any of ~140 stage readouts happens to be right flags
 * most wrong answers even when no readout carries information (on a 2-way task, 81–99%), so:
 *
 *  1. Held-out stage choice: items are split into two folds (alternating); on each fold the stage
 *     is the one most accurate on the *other* fold, so the choice never sees the items it judges.
 *  2. Significance gate: that stage flags items of the fold only if its accuracy there is above
 *     chance with 95% confidence (Wilson lower bound > chance); an uninformative readout flags
 *     nothing in ~97.5% of folds.
 *  3. Null control: the same procedure on every stage's predictions permuted across items
 *     (`permutations` times): the rate of wrong answers it flags when readouts carry no
 *     information about the item.
 */
import { shuffle } from './probe.ts';
import { wilson } from './summary.ts';

export interface PresentNotSurfaced {
  /** Indices of flagged items (answer wrong, the held-out-chosen stage right, that stage significant). */
  items: number[];
  /** Per fold: the stage chosen on the other fold, its accuracy on this fold, and whether it passed the gate. */
  folds: { stage: string; accuracy: number; significant: boolean }[];
  /** Flagged / wrong answers. */
  rate: number;
  /** Mean rate over the permuted (no-information) controls. */
  controlRate: number;
}

function once(stages: ReadonlyMap<string, readonly number[]>, truth: readonly number[], answerCorrect: readonly boolean[], chance: number): Omit<PresentNotSurfaced, 'controlRate'> {
  const n = truth.length;
  const fold = (i: number) => i % 2;
  /** Right / total of predictions `p` over the items `pick` selects. */
  const score = (p: readonly number[], pick: (i: number) => boolean) => {
    let right = 0;
    let total = 0;
    for (let i = 0; i < n; i++) {
      if (!pick(i)) continue;
      total++;
      if (p[i] === truth[i]) right++;
    }
    return { right, total };
  };
  const items: number[] = [];
  const folds: PresentNotSurfaced['folds'] = [];
  for (const f of [0, 1]) {
    const inFold = (i: number) => fold(i) === f;
    let best: { stage: string; acc: number } | undefined;
    for (const [stage, p] of stages) {
      const { right, total } = score(p, (i) => !inFold(i));
      const acc = total ? right / total : 0;
      if (!best || acc > best.acc) best = { stage, acc };
    }
    if (!best) continue;
    const p = stages.get(best.stage)!;
    const { right, total } = score(p, inFold);
    const significant = total > 0 && wilson(right, total)[0] > chance;
    folds.push({ stage: best.stage, accuracy: total ? right / total : 0, significant });
    if (significant) for (let i = 0; i < n; i++) if (inFold(i) && !answerCorrect[i] && p[i] === truth[i]) items.push(i);
  }
  items.sort((a, b) => a - b);
  const wrong = answerCorrect.filter((c) => !c).length;
  return { items, folds, rate: wrong ? items.length / wrong : 0 };
}

export function presentNotSurfaced(
  stages: ReadonlyMap<string, readonly number[]>,
  truth: readonly number[],
  answerCorrect: readonly boolean[],
  chance: number,
  permutations = 20,
): PresentNotSurfaced {
  const result = once(stages, truth, answerCorrect, chance);
  let control = 0;
  const order = truth.map((_, i) => i);
  for (let k = 0; k < permutations; k++) {
    const permuted = new Map([...stages].map(([s, p], j) => [s, shuffle(order, 1000 * k + j + 1).map((i) => p[i]!)]));
    control += once(permuted, truth, answerCorrect, chance).rate;
  }
  return { ...result, controlRate: permutations ? control / permutations : 0 };
}
