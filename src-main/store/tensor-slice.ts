/**
 * Which contiguous element runs of a row-major tensor a slice covers, so a view can read a
 * layer, a head or a token of a stored tensor with one positioned read per run — never the
 * whole tensor. Pure arithmetic; the blob store does the reads.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';

/** Per axis: one index (the axis is kept, length 1), a [start, end) range, or undefined for all of it. */
export type AxisSelection = number | [number, number] | undefined;

export interface SliceRuns {
  /** Shape of the result (same rank as the tensor). */
  shape: number[];
  /** Element offsets and lengths to read, in result order; adjacent runs are merged. */
  runs: { start: number; length: number }[];
}

export function sliceRuns(shape: readonly number[], select: readonly AxisSelection[], name = 'tensor'): SliceRuns {
  if (select.length > shape.length) throw new LoupeError('bad-input', `slice of ${name} names ${select.length} axes, it has ${shape.length} ([${shape.join(', ')}])`);
  const ranges = shape.map((n, axis): [number, number] => {
    const s = select[axis];
    const [a, b] = s === undefined ? [0, n] : typeof s === 'number' ? [s, s + 1] : s;
    if (!Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b > n || a >= b) throw new LoupeError('bad-input', `slice [${a}, ${b}) of axis ${axis} of ${name} is outside 0..${n}`);
    return [a, b];
  });
  const out = ranges.map(([a, b]) => b - a);
  // The innermost axes taken whole form one contiguous block per index of the outer axes.
  let inner = shape.length;
  let block = 1;
  while (inner > 0 && ranges[inner - 1]![0] === 0 && ranges[inner - 1]![1] === shape[inner - 1]) block *= shape[--inner]!;
  if (inner > 0) {
    // The last partly taken axis contributes a contiguous range too.
    const [a, b] = ranges[inner - 1]!;
    inner--;
    const stride = block;
    block *= b - a;
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, q) => p * q, 1));
    const runs: SliceRuns['runs'] = [];
    const idx = ranges.slice(0, inner).map(([lo]) => lo);
    for (;;) {
      const start = idx.reduce((s, v, i) => s + v * strides[i]!, 0) + a * stride;
      const last = runs[runs.length - 1];
      if (last && last.start + last.length === start) last.length += block;
      else runs.push({ start, length: block });
      let k = inner - 1;
      while (k >= 0 && ++idx[k]! >= ranges[k]![1]) idx[k] = ranges[k--]![0];
      if (k < 0) break;
    }
    return { shape: out, runs };
  }
  return { shape: out, runs: [{ start: 0, length: block }] };
}
