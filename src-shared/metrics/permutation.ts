/**
 * Permutation test / shuffled-label control: the statistic is recomputed with the labels
 * randomly permuted (breaking their link to the data, keeping their counts), giving a null
 * distribution. One-sided p = (1 + #{null ≥ observed}) / (1 + permutations) — the +1s count the
 * observed labelling as one of the permutations, so p is never 0 and is valid for a finite
 * number of random permutations (Phipson & Smyth, "Permutation p-values should never be zero",
 * Stat Appl Genet Mol Biol 2010). For a two-sided test pass a
 * statistic that is large in both directions (e.g. an absolute difference).
 */
import { LoupeError } from '../contract/errors.ts';
import { createRng } from '../world/rng.ts';

export interface PermutationOptions {
  /** Label permutations (default 100; at least 20). */
  permutations?: number;
  /** Seed of the shuffling stream (default 0). */
  seed?: string | number;
}

export interface PermutationResult {
  observed: number;
  /** Statistic under each permutation, in the order drawn. */
  nullDistribution: number[];
  nullMean: number;
  /** (1 + #{null ≥ observed}) / (1 + permutations). */
  pValue: number;
  permutations: number;
}

export function permutationTest<T>(labels: readonly T[], statistic: (labels: readonly T[]) => number, o: PermutationOptions = {}): PermutationResult {
  const permutations = o.permutations ?? 100;
  if (!(Number.isInteger(permutations) && permutations >= 20)) throw new LoupeError('bad-input', `a permutation test needs at least 20 permutations (option 'permutations'), got ${permutations}`);
  const observed = statistic(labels);
  if (Number.isNaN(observed)) throw new LoupeError('bad-input', 'permutation test: the statistic is NaN on the unpermuted labels');
  const rng = createRng('permutation', o.seed ?? 0);
  const nullDistribution: number[] = [];
  for (let i = 0; i < permutations; i++) nullDistribution.push(statistic(rng.shuffled(labels)));
  const atLeast = nullDistribution.filter((v) => v >= observed).length;
  return {
    observed,
    nullDistribution,
    nullMean: nullDistribution.reduce((a, b) => a + b, 0) / permutations,
    pValue: (1 + atLeast) / (1 + permutations),
    permutations,
  };
}
