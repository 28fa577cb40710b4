/**
 * Welford's running mean and sum of squared deviations per dimension, in float64: the key-token
 * statistic (variance of a place's key over items) from stored K/V (experiments/inside-the-llm/
 * key-tokens.ts) and streamed in the compute worker (compute/capture/stream-stats.ts) — one
 * accumulator, so both paths compute the same numbers. No sum-of-squares cancellation on a large mean.
 */
export class RunningVariance {
  readonly width: number;
  n = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  normSum = 0;

  constructor(width: number) {
    this.width = width;
    this.mean = new Float64Array(width);
    this.m2 = new Float64Array(width);
  }

  /** One vector of exactly `width` values (e.g. an item's key, all KV heads concatenated). */
  add(v: ArrayLike<number>): void {
    if (v.length !== this.width) throw new Error(`key vector of ${v.length} values, expected ${this.width}`);
    this.addAt(v, 0);
  }

  /** The vector `src[from .. from + width)` of a larger array (a row of a [seq, width] tensor). */
  addAt(src: ArrayLike<number>, from: number): void {
    if (from < 0 || from + this.width > src.length) throw new Error(`vector at ${from} of ${this.width} values runs past the ${src.length} given`);
    this.n++;
    let sq = 0;
    for (let x = 0; x < this.width; x++) {
      const v = src[from + x]!;
      const d = v - this.mean[x]!;
      this.mean[x]! += d / this.n;
      this.m2[x]! += d * (v - this.mean[x]!);
      sq += v * v;
    }
    this.normSum += Math.sqrt(sq);
  }

  /** (1/N) Σ ‖v − v̄‖²: population variance summed over dimensions; NaN before the first vector. */
  variance(): number {
    if (this.n === 0) return NaN;
    let s = 0;
    for (let x = 0; x < this.width; x++) s += this.m2[x]!;
    return s / this.n;
  }

  /** Mean Euclidean norm of the vectors added; NaN before the first. */
  meanNorm(): number {
    return this.n ? this.normSum / this.n : NaN;
  }

  /** Memory held by the accumulator. */
  get bytes(): number {
    return this.mean.byteLength + this.m2.byteLength;
  }
}
