/**
 * Temporal correspondence by mask propagation (the DAVIS protocol of self-supervised video
 * features — DINO, CRW — on token grids): the first frame's object mask is carried to a later
 * frame by k-nearest-neighbour label voting in feature space; region similarity J is the IoU of
 * the propagated mask with the later frame's ground truth.
 *
 * Voting as in DINO's evaluation: each target token takes its k most similar source tokens
 * (cosine), weights them by exp(cosine / τ) (τ = 0.1), and averages their soft labels (the
 * fraction of each source patch the object covers); it is foreground when that average exceeds
 * ½. Plain majority voting (τ = ∞) cannot carry objects of one or two patches — the common case
 * on coarse grids — since they can never hold most of five neighbours.
 */
import { dotRows } from './correspondence.ts';

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topK(xs: ArrayLike<number>, k: number): number[] {
  const idx: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    // Insertion into a sorted list of at most k: k is small (≈5), token counts are ≤ thousands.
    let at = idx.length;
    while (at > 0 && xs[i]! > xs[idx[at - 1]!]!) at--;
    if (at < k) {
      idx.splice(at, 0, i);
      if (idx.length > k) idx.pop();
    }
  }
  return idx;
}

export interface PropagationOptions {
  /** Neighbours that vote (capped at the number of source tokens). */
  k: number;
  /** Softmax temperature of the votes' weights exp(cos/τ); Infinity = unweighted majority. */
  tau?: number;
}

/**
 * Per target token, the weighted mean soft label of its k nearest source tokens (cosine; both
 * matrices unit rows of width d). Labels are in [0, 1] (booleans count as 0/1).
 */
export function propagateLabels(source: Float32Array, sourceLabels: ArrayLike<number | boolean>, target: Float32Array, d: number, o: PropagationOptions): Float64Array {
  const nSource = source.length / d;
  const nTarget = target.length / d;
  const k = Math.max(1, Math.min(o.k, nSource));
  const tau = o.tau ?? 0.1;
  const out = new Float64Array(nTarget);
  for (let t = 0; t < nTarget; t++) {
    const sims = dotRows(target, source, nSource, d, t * d);
    const nn = topK(sims, k);
    // Weights relative to the best neighbour, so exp never overflows.
    const ws = nn.map((i) => (Number.isFinite(tau) ? Math.exp((sims[i]! - sims[nn[0]!]!) / tau) : 1));
    const total = ws.reduce((s, w) => s + w, 0);
    out[t] = nn.reduce((s, i, j) => s + ws[j]! * Number(sourceLabels[i]!), 0) / total;
  }
  return out;
}

/** The propagated mask: target tokens whose propagated label exceeds ½. */
export function propagateMask(source: Float32Array, sourceLabels: ArrayLike<number | boolean>, target: Float32Array, d: number, o: PropagationOptions): boolean[] {
  return Array.from(propagateLabels(source, sourceLabels, target, d, o), (v) => v > 0.5);
}
