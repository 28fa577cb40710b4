import { describe, expect, it } from 'vitest';
import { TASKS } from '../../../src-shared/world/tasks/index.ts';
import { unknownWords, VOCABULARY, tokenize } from '../../../src-shared/world/vocabulary.ts';
import { itemsOf } from './fixtures.ts';

describe('world vocabulary and balance', () => {
  it('is small, sorted and duplicate-free', () => {
    expect(VOCABULARY.length).toBeLessThan(300);
    expect(new Set(VOCABULARY).size).toBe(VOCABULARY.length);
    expect([...VOCABULARY].sort()).toEqual(VOCABULARY);
    for (const w of VOCABULARY) expect(w).toMatch(/^([a-z]+|\?)$/);
  });

  for (const task of TASKS) {
    it(`${task.name}: prompts, choices and answers use only vocabulary words; answers balanced ±10 %`, () => {
      const items = itemsOf(task.name, 120);
      const counts = new Map<string, number>(task.choices.map((c) => [c, 0]));
      for (const g of items) {
        expect(unknownWords(g.item.prompt)).toEqual([]);
        expect(tokenize(g.item.prompt).length).toBeLessThan(24);
        expect(g.item.prompt).toBe(g.item.prompt.toLowerCase());
        expect(unknownWords(g.item.answer)).toEqual([]);
        counts.set(g.item.answer, counts.get(g.item.answer)! + 1);
      }
      for (const c of task.choices) expect(unknownWords(c)).toEqual([]);
      const expected = items.length / task.choices.length;
      for (const [, n] of counts) expect(Math.abs(n - expected)).toBeLessThanOrEqual(Math.max(1, 0.1 * expected));
    });
  }
});
