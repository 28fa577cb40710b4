/**
 * Where the question's text sits in a chat-templated, image-expanded prompt, token by token,
 * and which word of the question each token belongs to (taps.promptKV stores K/V there).
 * Works on token ids plus single-token decodes, so it holds for every tokenizer family:
 * word-level, SentencePiece (a leading `▁` may merge with the template), byte-level BPE.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export interface QuestionToken {
  /** Position in the model's input sequence. */
  position: number;
  tokenId: number;
  /** Index into `questionWords(question)`. */
  word: number;
}

/** The question's words: split on whitespace (the `word` index of a QuestionToken refers to these). */
export function questionWords(question: string): string[] {
  return question.trim().split(/\s+/).filter(Boolean);
}

function lastIndexOf(hay: readonly number[], needle: readonly number[]): number {
  if (needle.length === 0) return -1;
  for (let i = hay.length - needle.length; i >= 0; i--) {
    let j = 0;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/**
 * The question's tokens in `inputIds`: the last occurrence of the question tokenized alone
 * (`questionIds`), or, when its first token merges with the template before it (SentencePiece
 * `▁What` vs `What` after a newline), the last occurrence of the rest plus the token before.
 * `piece(id)` decodes one token; pieces are aligned to the question's characters (whitespace
 * ignored) to find each token's word; a token that does not align (`<unk>`, a partial UTF-8
 * byte) is given the current word and the alignment resumes at the next word.
 */
export function locateQuestion(inputIds: readonly number[], questionIds: readonly number[], piece: (id: number) => string, question: string): QuestionToken[] {
  let start = lastIndexOf(inputIds, questionIds);
  if (start < 0 && questionIds.length > 1) {
    const rest = lastIndexOf(inputIds, questionIds.slice(1));
    if (rest > 0) start = rest - 1;
  }
  if (start < 0) throw new LoupeError('bad-input', `cannot find the question "${question}" among the prompt's tokens (taps.promptKV needs the question tokenized as in the prompt)`);
  const words = questionWords(question);
  const text = words.join('');
  const wordOf = words.flatMap((w, i) => Array.from(w, () => i));
  let at = 0;
  return questionIds.map((_, k) => {
    const position = start + k;
    const tokenId = inputIds[position]!;
    const p = piece(tokenId).replace(/\s+/g, '').replace(/^##/, '').replaceAll('▁', '');
    const word = wordOf[Math.min(at, wordOf.length - 1)] ?? 0;
    if (p && text.startsWith(p, at)) at += p.length;
    else if (p) {
      // The longest tail of the piece that continues the question (a piece that began in the template).
      let overlap = 0;
      for (let l = Math.min(p.length - 1, text.length - at); l > 0 && !overlap; l--) if (text.startsWith(p.slice(p.length - l), at)) overlap = l;
      if (overlap) at += overlap;
      else while (at < text.length && wordOf[at] === word) at++;
    }
    return { position, tokenId, word };
  });
}
