/**
 * An item's question: the prompt put to the VLM, its multiple-choice answers and the correct
 * one. One validation for the Label view (live, before saving) and the engine (on receipt).
 */

export interface Question {
  prompt: string | null;
  choices: string[] | null;
  answer: string | null;
}

export type QuestionCheck = { ok: true; value: Question } | { ok: false; problem: string };

export const MAX_CHOICES = 64;

/**
 * Trims every field (blank → null, no choices → null) and checks: choices are distinct and
 * non-empty, at most {@link MAX_CHOICES}; with choices, the answer (when given) is one of them.
 * Without choices the answer is free text (open-ended tasks).
 */
export function checkQuestion(q: { prompt?: string | null; choices?: readonly string[] | null; answer?: string | null }): QuestionCheck {
  const prompt = q.prompt?.trim() || null;
  const answer = q.answer?.trim() || null;
  const raw = (q.choices ?? []).map((c) => c.trim());
  if (raw.some((c) => c === '')) return { ok: false, problem: 'a choice is empty' };
  if (raw.length > MAX_CHOICES) return { ok: false, problem: `at most ${MAX_CHOICES} choices (got ${raw.length})` };
  const seen = new Set<string>();
  for (const c of raw) {
    if (seen.has(c)) return { ok: false, problem: `choice "${c}" appears twice` };
    seen.add(c);
  }
  const choices = raw.length ? raw : null;
  if (choices && answer !== null && !seen.has(answer)) return { ok: false, problem: `the answer "${answer}" is not one of the choices (${choices.join(', ')})` };
  return { ok: true, value: { prompt, choices, answer } };
}
