/** Tensor slicing for captures: keep only what the user asked for (e.g. image positions). */
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { toFloat32 } from '../../../src-shared/tensor/dtype.ts';

/** [1, heads, seq, dim] → [heads, positions.length, dim], float32. */
export function gatherSequence(t: HostTensor, positions: number[]): HostTensor {
  const [, heads = 0, seq = 0, dim = 0] = t.shape;
  const src = toFloat32(t);
  const out = new Float32Array(heads * positions.length * dim);
  for (let h = 0; h < heads; h++) {
    positions.forEach((p, j) => {
      if (p >= seq) throw new Error(`position ${p} is outside a sequence of ${seq}`);
      out.set(src.subarray((h * seq + p) * dim, (h * seq + p + 1) * dim), (h * positions.length + j) * dim);
    });
  }
  return { dtype: 'float32', shape: [heads, positions.length, dim], data: out };
}
