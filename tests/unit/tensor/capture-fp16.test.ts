/**
 * The fused gather + fp16 path of applyCapture (K/V and hidden rows converted in one pass) gives
 * exactly the bits of f32ToF16 over the rows gathered by hand — with and without head/row
 * selections, and for values on the slow path (subnormal halves, overflow, NaN).
 */
import { describe, expect, it } from 'vitest';
import { applyCapture } from '../../../src-shared/tensor/capture-ops.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { f32ToF16 } from '../../../src-shared/tensor/half.ts';

function values(n: number): Float32Array {
  const v = new Float32Array(n);
  let seed = 3;
  const special = [0, -0, 1e-6, -3e-7, 70000, -1e9, Number.NaN, Number.POSITIVE_INFINITY, 6.1e-5, 65504, 65520];
  for (let i = 0; i < n; i++) v[i] = i % 13 === 0 ? special[(i / 13) % special.length]! : (((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5) * 2 ** ((i % 40) - 20);
  return v;
}

describe('fused gather → fp16', () => {
  const [H, S, D] = [3, 7, 5];
  const kv: HostTensor = { dtype: 'float32', shape: [1, H, S, D], data: values(H * S * D) };
  const hidden: HostTensor = { dtype: 'float32', shape: [1, S, 6], data: values(S * 6) };

  it.each([
    ['all heads and rows', undefined, undefined],
    ['heads [2, 0], rows [1, 4, 6]', [2, 0], [1, 4, 6]],
    ['rows only', undefined, [0, 3]],
  ])('K/V, %s', (_l, heads, rows) => {
    const out = applyCapture({ name: 'k', source: 'present.0.key', layout: 'kv', ...(heads && { heads }), ...(rows && { rows }) }, kv, 'float16').k!;
    const hs = heads ?? [0, 1, 2];
    const rs = rows ?? [0, 1, 2, 3, 4, 5, 6];
    const f = kv.data as Float32Array;
    const gathered = Float32Array.from(hs.flatMap((h) => rs.flatMap((r) => Array.from(f.subarray((h * S + r) * D, (h * S + r + 1) * D)))));
    expect(out.shape).toEqual([hs.length, rs.length, D]);
    expect(Array.from(out.data as Uint16Array)).toEqual(Array.from(f32ToF16(gathered)));
  });

  it('hidden rows', () => {
    const out = applyCapture({ name: 'h', source: 'h', layout: 'hidden', rows: [5, 1] }, hidden, 'float16').h!;
    const f = hidden.data as Float32Array;
    const gathered = Float32Array.from([...f.subarray(30, 36), ...f.subarray(6, 12)]);
    expect(out.shape).toEqual([1, 2, 6]);
    expect(Array.from(out.data as Uint16Array)).toEqual(Array.from(f32ToF16(gathered)));
  });
});
