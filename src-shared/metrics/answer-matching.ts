/**
 * Answers by generation + matching, as the benchmarks score free-form output: the generated
 * text is mapped to one of the choices, or to none. Rules, in order (BLINK's and CV-Bench's
 * evaluation scripts extract an option letter the same way before falling back to the text):
 *  1. an option letter written as an option — "(B)", "B)", "B.", "B:", "Answer: B", or the
 *     whole answer being the letter;
 *  2. exactly one choice's text appearing in the output (case-insensitive, whole words);
 *  3. otherwise unmatched (null): counted as wrong, and reported, never guessed.
 */
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function optionLetter(index: number): string {
  return LETTERS[index] ?? String(index + 1);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function matchAnswer(generated: string, choices: readonly string[]): number | null {
  const text = generated.trim();
  if (!text || choices.length === 0) return null;
  const letters = LETTERS.slice(0, choices.length);
  const lettered = [
    new RegExp(`^\\(?([${letters}])\\)?[.:)]?$`), // the whole answer is the letter
    new RegExp(`\\(([${letters}])\\)`), // "(B)"
    new RegExp(`(?:answer|option|choice)\\s*(?:is)?\\s*[:\\-]?\\s*\\(?([${letters}])\\b`, 'i'),
    new RegExp(`^([${letters}])[.:)]\\s`), // "B. the red one"
  ];
  for (const re of lettered) {
    const m = re.exec(text);
    if (m) return letters.indexOf(m[1]!.toUpperCase());
  }
  const found = choices.map((c, i) => (c.trim() && new RegExp(`(^|\\W)${escape(c.trim())}(\\W|$)`, 'i').test(text) ? i : -1)).filter((i) => i >= 0);
  // A choice that contains another ("red" in "dark red") would match both: keep the longest only.
  const longest = found.filter((i) => !found.some((j) => j !== i && choices[j]!.length > choices[i]!.length && choices[j]!.toLowerCase().includes(choices[i]!.toLowerCase())));
  return longest.length === 1 ? longest[0]! : null;
}
