/**
 * The closed word list of the synthetic world: every token any prompt, choice or answer may
 * contain. The micro-VLM builds its word-level tokenizer from this list (written to
 * `vocabulary.json` beside the corpus), so it must stay small and must grow, never shrink or
 * reorder silently, when templates change. Tokens are split on single spaces; "?" is a token.
 */
import { COLOURS, SHAPES, SHAPE_PLURAL, STYLES } from './attributes.ts';
import { LETTERS } from './markers.ts';

export const NUMBER_WORDS = ['one', 'two', 'three', 'four', 'five'] as const;
export const YES_NO = ['yes', 'no'] as const;

/** Words of the prompt templates (tasks/*.ts). */
const TEMPLATE_WORDS = [
  'what', 'colour', 'shape', 'pattern', 'is', 'the', 'object', 'at', 'marker', '?',
  'how', 'many', 'objects', 'are', 'there',
  'left', 'right', 'of', 'above', 'below',
  'which', 'point', 'closer', 'to', 'camera',
  'in', 'second', 'first', 'image', 'same', 'as', 'last', 'frame',
  'on', 'small', 'large', 'leftmost', 'rightmost',
] as const;

export const CHOICE_LETTERS = LETTERS;

/** Every token, sorted (the order the tokenizer should use after its special tokens). */
export const VOCABULARY: readonly string[] = [
  ...new Set<string>([
    ...TEMPLATE_WORDS,
    ...COLOURS,
    ...SHAPES,
    ...Object.values(SHAPE_PLURAL),
    ...STYLES,
    ...NUMBER_WORDS,
    ...YES_NO,
    ...LETTERS,
  ]),
].sort();

const VOCABULARY_SET = new Set(VOCABULARY);

export function tokenize(text: string): string[] {
  return text.split(' ').filter((t) => t.length > 0);
}

/** Tokens of `text` that are not in the vocabulary (empty when the text is expressible). */
export function unknownWords(text: string): string[] {
  return tokenize(text).filter((t) => !VOCABULARY_SET.has(t));
}
