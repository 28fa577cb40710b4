/**
 * Whole-array fp32 → fp16 / bf16 conversion (and fp16 → fp32), fast enough for 7B-scale
 * captures (≥ 100 M elements/s on one core): one pass over a Uint32 view of the floats, integer
 * arithmetic only, no per-element allocation (the scalar `float32ToFloat16` allocates a scratch
 * array per call and ran at 1.3–4.6 M el/s, ~165 s per LLaVA-7B item).
 *
 * Rounding is IEEE 754 round-to-nearest, ties-to-even, bit-exact with PyTorch's
 * `Tensor.to(torch.float16)` over all 2^32 float32 bit patterns (tests/unit/half.test.ts checks
 * the hash tools/bench/fp16_reference.py computed with torch):
 *  - overflow (≥ 65520 in magnitude) → ±Inf; values below half the smallest subnormal → ±0;
 *  - NaN → sign | 0x7e00 (torch's canonical quiet NaN);
 *  - bf16: the top 16 bits rounded to nearest even; NaN → (bits >> 16) | 0x0040 (quietened, sign
 *    and top payload kept, as x86's VCVTNEPS2BF16 does).
 */

/** fp32 → fp16 bits of one float, given its raw bits. Shared by the array loop and the scalar API. */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const a = x & 0x7fffffff;
  if (a >= 0x38800000) {
    // Normal half range (≥ 2^-14), overflow, Inf or NaN.
    if (a >= 0x47800000) return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
    // Rebias the exponent (127 → 15) and round the 13 dropped bits to nearest even; a carry
    // out of the mantissa bumps the exponent, and out of 65504 lands exactly on Inf (0x7c00).
    return sign | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
  }
  // Subnormal half: value = mant · 2^(e−150), in units of 2^-24 → shift right by 126 − e (14…24).
  const e = a >>> 23;
  if (e < 102) return sign; // below 2^-25: rounds to zero
  const mant = (a & 0x7fffff) | 0x800000;
  const shift = 126 - e;
  return sign | ((mant + (1 << (shift - 1)) - 1 + ((mant >>> shift) & 1)) >>> shift);
}

/** fp32 → bf16 bits of one float, given its raw bits. */
function bfloatBits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x0040;
  return (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/**
 * Raw bits of a Float32Array without copying (the view shares its buffer). Signed on purpose:
 * Int32 loads stay small integers in V8, Uint32 loads ≥ 2^31 become heap doubles (2× slower).
 */
function bitsOf(src: Float32Array): Int32Array {
  return new Int32Array(src.buffer, src.byteOffset, src.length);
}

/** fp32 → fp16 bits, into `out` (allocated when absent). `out` may not overlap `src`. */
export function f32ToF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length < src.length) throw new RangeError(`f32ToF16: output holds ${out.length} elements, input has ${src.length}`);
  const bits = bitsOf(src);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    const a = x & 0x7fffffff;
    // The common case inline (normal range, no overflow); the rest goes through halfBits.
    if (a >= 0x38800000 && a < 0x47800000) out[i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    else out[i] = halfBits(x);
  }
  return out;
}

/**
 * fp16 bits of `n` floats read from `bits` (a float array's raw bits, see `bitsOf`) at `from`,
 * written to `out` at `at` — the same rounding as f32ToF16, for callers that gather rows and
 * convert them in one pass (capture-ops.ts) instead of copying the rows first.
 */
export function f32BitsToF16Range(bits: Int32Array, from: number, n: number, out: Uint16Array, at: number): void {
  for (let i = 0; i < n; i++) {
    const x = bits[from + i]!;
    const a = x & 0x7fffffff;
    if (a >= 0x38800000 && a < 0x47800000) out[at + i] = ((x >>> 16) & 0x8000) | ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13);
    else out[at + i] = halfBits(x);
  }
}

/** Raw bits of a Float32Array without copying (for f32BitsToF16Range). */
export function floatBits(src: Float32Array): Int32Array {
  return new Int32Array(src.buffer, src.byteOffset, src.length);
}

/** fp32 → bf16 bits, into `out` (allocated when absent). */
export function f32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length < src.length) throw new RangeError(`f32ToBf16: output holds ${out.length} elements, input has ${src.length}`);
  const bits = bitsOf(src);
  const n = bits.length;
  for (let i = 0; i < n; i++) {
    const x = bits[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x0040 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

let HALF_TABLE: Float32Array | null = null;

/** All 65,536 halves as floats, built once (256 KiB): decoding is then one load per element. */
function halfTable(): Float32Array {
  if (HALF_TABLE) return HALF_TABLE;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    t[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return (HALF_TABLE = t);
}

/** fp16 bits → fp32 (exact), into `out` (allocated when absent). */
export function f16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = halfTable();
  const n = src.length;
  for (let i = 0; i < n; i++) out[i] = t[src[i]!]!;
  return out;
}

/** bf16 bits → fp32 (exact: the bits are the top half of the float). */
export function bf16ToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = bitsOf(out);
  const n = src.length;
  for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
  return out;
}

const SCRATCH = new Float32Array(1);
const SCRATCH_BITS = new Uint32Array(SCRATCH.buffer);

/** One float → fp16 bits (same rounding as `f32ToF16`). */
export function halfOf(value: number): number {
  SCRATCH[0] = value;
  return halfBits(SCRATCH_BITS[0]!);
}

/** One float → bf16 bits (same rounding as `f32ToBf16`). */
export function bfloatOf(value: number): number {
  SCRATCH[0] = value;
  return bfloatBits(SCRATCH_BITS[0]!);
}
