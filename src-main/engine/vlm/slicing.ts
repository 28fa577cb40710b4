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

/** [heads, n_i, dim] tensors (same heads and dim) → [heads, Σ n_i, dim], in order. */
export function concatTokens(parts: HostTensor[]): HostTensor {
  const [heads = 0, , dim = 0] = parts[0]?.shape ?? [];
  const n = parts.reduce((s, t) => s + t.shape[1]!, 0);
  const out = new Float32Array(heads * n * dim);
  let offset = 0;
  for (const t of parts) {
    if (t.shape[0] !== heads || t.shape[2] !== dim) throw new Error(`cannot concatenate [${t.shape.join(', ')}] to [${heads}, ·, ${dim}]`);
    const k = t.shape[1]!;
    const src = toFloat32(t);
    for (let h = 0; h < heads; h++) out.set(src.subarray(h * k * dim, (h + 1) * k * dim), (h * n + offset) * dim);
    offset += k;
  }
  return { dtype: 'float32', shape: [heads, n, dim], data: out };
}

/**
 * Attention probabilities as [batch, heads, q, k] whatever the exporter's layout: PyTorch's
 * fused multi-head attention exports [batch·heads, q, k]; GQA written as a broadcast MatMul
 * exports [batch, kv, group, q, k]. Both are the same bytes in the same order — only the
 * shape changes (query head = kv · group + g).
 */
export function attentionAsBHQK(t: HostTensor, heads: number): HostTensor {
  const s = t.shape;
  if (s.length === 4) return t;
  if (s.length === 3) return { ...t, shape: [s[0]! / heads, heads, s[1]!, s[2]!] };
  if (s.length === 5) return { ...t, shape: [s[0]!, s[1]! * s[2]!, s[3]!, s[4]!] };
  throw new Error(`attention tensor of shape [${s.join(', ')}] has no [batch, heads, q, k] reading`);
}
