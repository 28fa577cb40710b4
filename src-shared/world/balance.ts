/**
 * Balanced answers: item i of a split takes choice `perm_b[i mod K]`, where perm_b is a seeded
 * permutation of the K choices for block b = floor(i / K). Every full block holds each answer
 * once, so any prefix of a split is balanced to within one item per choice, and the answer of item
 * i is still a pure function of (seed, task, split, i).
 */
import { createRng } from './rng.ts';

export function balancedIndex(seed: number, task: string, split: string, index: number, k: number): number {
  const block = Math.floor(index / k);
  const perm = createRng('loupe-world-balance', seed, task, split, block).shuffled([...Array(k).keys()]);
  return perm[index % k]!;
}
