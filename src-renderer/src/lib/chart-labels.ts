/**
 * Labels at a chart's edge that must not overlap (the stage curve's "VLM answer", "blind",
 * "chance" at the right end of their lines): each wants to sit at its line's y; when two are
 * closer than `gap` they are pushed apart, the lower one down, and the stack is pushed back up
 * if it runs past `bottom`. Pure, so placement is unit-tested.
 */
export function spreadLabels(wanted: readonly number[], gap: number, top: number, bottom: number): number[] {
  const order = wanted.map((y, i) => ({ y, i })).sort((a, b) => a.y - b.y || a.i - b.i);
  const pos = order.map((o) => o.y);
  for (let k = 0; k < pos.length; k++) pos[k] = Math.max(pos[k]!, k ? pos[k - 1]! + gap : top);
  if (pos.length && pos[pos.length - 1]! > bottom) {
    pos[pos.length - 1] = bottom;
    for (let k = pos.length - 2; k >= 0; k--) pos[k] = Math.min(pos[k]!, pos[k + 1]! - gap);
  }
  const out = new Array<number>(wanted.length);
  order.forEach((o, k) => (out[o.i] = pos[k]!));
  return out;
}
