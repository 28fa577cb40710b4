/**
 * "Did you mean …?" for unknown commands and flags: the candidates nearest by edit distance
 * (optimal string alignment, so a swapped pair like `rnu` → `run` costs one edit, as a typist
 * would count it), or those the typed word starts, when nothing is near.
 */

/** Edit distance counting insertions, deletions, substitutions and adjacent transpositions as one edit each. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidates worth suggesting for `word`, best first (at most three): within about one edit
 * per three letters (at least one, at most three), else the candidates that start with `word`.
 */
export function suggest(word: string, candidates: Iterable<string>): string[] {
  const w = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(w.length / 3)));
  const all = [...new Set(candidates)];
  const near = all
    .map((c) => ({ c, d: editDistance(w, c.toLowerCase()) }))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .map((x) => x.c);
  if (near.length > 0) return near.slice(0, 3);
  return w.length >= 2 ? all.filter((c) => c.toLowerCase().startsWith(w)).slice(0, 3) : [];
}

/** ` (did you mean run?)` / ` (did you mean kv-probes or kv-compare?)`, or '' when nothing is near. */
export function didYouMean(word: string, candidates: Iterable<string>, show: (c: string) => string = (c) => c): string {
  const s = suggest(word, candidates).map(show);
  if (s.length === 0) return '';
  return `; did you mean ${s.length === 1 ? s[0] : `${s.slice(0, -1).join(', ')} or ${s.at(-1)}`}?`;
}
