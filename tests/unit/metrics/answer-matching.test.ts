import { describe, expect, it } from 'vitest';
import { matchAnswer, optionLetter } from '../../../src-shared/metrics/answer-matching.ts';

const choices = ['red', 'dark red', 'blue'];

describe('answers by generation + matching', () => {
  it.each([
    ['(B)', 1],
    ['B', 1],
    ['b.', null], // lower-case lone letters are words, not options
    ['The answer is (C).', 2],
    ['Answer: A', 0],
    ['C. blue, clearly', 2],
    ['It is dark red.', 1], // "red" is inside "dark red": the longer choice wins
    ['blue', 2],
    ['Red', 0],
    ['red or blue', null], // two choices named: not guessed
    ['green', null],
    ['', null],
    ['(D)', null], // no fourth option
  ])('%j → %j', (text, want) => {
    expect(matchAnswer(text, choices)).toBe(want);
  });

  it('letters follow choice positions', () => {
    expect([0, 1, 25].map(optionLetter)).toEqual(['A', 'B', 'Z']);
  });
});
