/**
 * Gram-matrix readouts ("Hidden in plain sight": style lives in feature correlations, not in
 * any one feature). A region's Gram matrix G = FᵀF / n over its n patch vectors is compared
 * between items by the cosine of the flattened matrices (Frobenius inner product over norms),
 * and an item's class is the class whose mean Gram matrix (leave-one-out) is most similar —
 * a readout with nothing to train, like patch cosine for correspondence.
 */
import { shuffle } from './probe.ts';

/** Upper triangle (diagonal included) of FᵀF / n for `rows` vectors of length `dim`, as one vector. */
export function gramVector(rows: ArrayLike<number>, dim: number): Float32Array {
  const n = rows.length / dim;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`gramVector: ${rows.length} values are not a whole number of ${dim}-vectors`);
  const out = new Float32Array((dim * (dim + 1)) / 2);
  let k = 0;
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      let s = 0;
      for (let r = 0; r < n; r++) s += rows[r * dim + a]! * rows[r * dim + b]!;
      // Off-diagonal entries appear twice in the full matrix: weight them so the dot product of
      // two triangles equals the Frobenius inner product of the full matrices.
      out[k++] = (a === b ? 1 : Math.SQRT2) * (s / n);
    }
  }
  return out;
}

// Indexed loops, not `for…of` / `Float32Array.from(v, fn)`: this runs over every item's Gram
// vector (d(d+1)/2 values) per stage, and the iterator forms were most of a sweep's first open.
function unit(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
  return out;
}

/**
 * Leave-one-out nearest class mean under cosine similarity: each item is compared with the
 * mean of the other items of every class. Items whose class has no other member never win
 * that class. Returns the predicted class per item.
 */
export function nearestMeanLeaveOneOut(x: Float32Array[], y: number[], classes: number): number[] {
  return nearestMeanOfUnit(x.map(unit), y, classes);
}

/** nearestMeanLeaveOneOut on vectors already scaled to unit length (the shuffled control reuses them). */
function nearestMeanOfUnit(u: Float32Array[], y: number[], classes: number): number[] {
  const dim = u[0]?.length ?? 0;
  const sums = Array.from({ length: classes }, () => new Float64Array(dim));
  const counts = new Array<number>(classes).fill(0);
  u.forEach((v, i) => {
    counts[y[i]!]!++;
    const s = sums[y[i]!]!;
    for (let j = 0; j < dim; j++) s[j]! += v[j]!;
  });
  return u.map((v, i) => {
    let best = -1;
    let bestSim = -Infinity;
    for (let c = 0; c < classes; c++) {
      const n = counts[c]! - (y[i] === c ? 1 : 0);
      if (n === 0) continue;
      const s = sums[c]!;
      let dot = 0;
      let norm = 0;
      for (let j = 0; j < dim; j++) {
        const m = s[j]! - (y[i] === c ? v[j]! : 0);
        dot += m * v[j]!;
        norm += m * m;
      }
      const sim = norm > 0 ? dot / Math.sqrt(norm) : -Infinity;
      if (sim > bestSim) [best, bestSim] = [c, sim];
    }
    return best;
  });
}

/** The same readout with the labels shuffled (mean over seeds): what chance looks like for it. */
export function nearestMeanShuffledAccuracy(x: Float32Array[], y: number[], classes: number, seeds = 5): number {
  let acc = 0;
  const u = x.map(unit); // once, not once per seed
  for (let s = 0; s < seeds; s++) {
    const ys = shuffle(y, 101 + s);
    const p = nearestMeanOfUnit(u, ys, classes);
    acc += p.filter((v, i) => v === ys[i]).length / y.length;
  }
  return acc / seeds;
}

/**
 * Cosine similarity of two regions' Gram matrices, G = FᵀF / n, without forming them: the
 * Frobenius inner product ⟨G_a, G_b⟩ = ‖F_a F_bᵀ‖²_F / (n_a n_b), so the cost is n_a·n_b·d
 * instead of d²·n — the whole-image style comparison of "Hidden in plain sight" (a reference
 * image against each option) at 7B widths (d = 4096, n = 576) stays tractable.
 */
export function gramCosine(a: ArrayLike<number>, b: ArrayLike<number>, dim: number): number {
  const frob = (x: ArrayLike<number>, y: ArrayLike<number>) => {
    const nx = x.length / dim;
    const ny = y.length / dim;
    let s = 0;
    for (let i = 0; i < nx; i++) {
      for (let j = 0; j < ny; j++) {
        let d = 0;
        for (let k = 0; k < dim; k++) d += x[i * dim + k]! * y[j * dim + k]!;
        s += d * d;
      }
    }
    return s / (nx * ny);
  };
  if (a.length % dim || b.length % dim || a.length === 0 || b.length === 0) throw new RangeError(`gramCosine: ${a.length} and ${b.length} values are not whole numbers of ${dim}-vectors`);
  const ab = frob(a, b);
  const den = Math.sqrt(frob(a, a) * frob(b, b));
  return den > 0 ? ab / den : 0;
}
