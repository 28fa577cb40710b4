/** An item's question: trimming, distinct choices, the answer among them. */
import { describe, expect, it } from 'vitest';
import { MAX_CHOICES, checkQuestion } from '../../src-shared/dataset/question.ts';

describe('checkQuestion', () => {
  it('trims, turns blanks into null and accepts an answer among the choices', () => {
    expect(checkQuestion({ prompt: '  what colour is the dot? ', choices: [' red', 'blue '], answer: 'blue' })).toEqual({ ok: true, value: { prompt: 'what colour is the dot?', choices: ['red', 'blue'], answer: 'blue' } });
    expect(checkQuestion({ prompt: ' ', choices: [], answer: '' })).toEqual({ ok: true, value: { prompt: null, choices: null, answer: null } });
    expect(checkQuestion({ prompt: 'count', choices: ['1', '2'], answer: null })).toEqual({ ok: true, value: { prompt: 'count', choices: ['1', '2'], answer: null } });
    // Without choices the answer is free text.
    expect(checkQuestion({ prompt: 'describe', choices: null, answer: 'a cat' })).toMatchObject({ ok: true, value: { answer: 'a cat' } });
  });

  it('refuses an answer outside the choices, empty and repeated choices, too many choices', () => {
    expect(checkQuestion({ prompt: 'p', choices: ['red', 'blue'], answer: 'green' })).toEqual({ ok: false, problem: 'the answer "green" is not one of the choices (red, blue)' });
    expect(checkQuestion({ choices: ['red', ' '], answer: 'red' })).toEqual({ ok: false, problem: 'a choice is empty' });
    expect(checkQuestion({ choices: ['red', 'red '], answer: 'red' })).toEqual({ ok: false, problem: 'choice "red" appears twice' });
    expect(checkQuestion({ choices: Array.from({ length: MAX_CHOICES + 1 }, (_, i) => `c${i}`) })).toMatchObject({ ok: false, problem: /at most 64 choices/ });
  });
});
