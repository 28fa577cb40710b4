/**
 * fp32 → fp16 / bf16 conversion, bit for bit:
 *  - against PyTorch (tests/fixtures/fp16/sample.bin, built by tools/bench/fp16_reference.py:
 *    edge cases — subnormal boundaries, ties at every rounding position, 65504/65520, Inf, NaN —
 *    and seeded random patterns);
 *  - against the rounding rule written from its definition in float64 arithmetic (nearest
 *    representable half, ties to the even significand) over a dense sweep: every one of the
 *    65,536 top-16-bit patterns (sign, exponent, top 7 mantissa bits) × 40 low-bit patterns;
 *  - over all 2^32 patterns against the hash PyTorch's conversion gave, when
 *    LOUPE_FP16_EXHAUSTIVE=1 (≈ 2 min on one core; `npm run bench:7b` reports it too).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bf16ToF32, bfloatOf, f16ToF32, f32ToBf16, f32ToF16, halfOf } from '../../../src-shared/tensor/half.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'fp16');
const hex = (n: number) => '0x' + n.toString(16);

function sample() {
  const buf = readFileSync(join(FIXTURES, 'sample.bin'));
  const n = buf.byteLength / 8;
  const x = new Uint32Array(n);
  const h = new Uint16Array(n);
  const b = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = buf.readUInt32LE(i * 8);
    h[i] = buf.readUInt16LE(i * 8 + 4);
    b[i] = buf.readUInt16LE(i * 8 + 6);
  }
  return { x, h, b };
}

const SCRATCH_BITS = new Uint32Array(1);
const SCRATCH = new Float32Array(SCRATCH_BITS.buffer);
const floatOf = (x: number) => ((SCRATCH_BITS[0] = x), SCRATCH[0]!);

/** fp16 bits of the float with bits `x`, from the definition: nearest half, ties to even, in float64 (exact here). */
function referenceHalf(x: number): number {
  const f = floatOf(x);
  const sign = x >>> 31 ? 0x8000 : 0;
  if (Number.isNaN(f)) return sign | 0x7e00;
  const v = Math.abs(f);
  if (v >= 65520) return sign | 0x7c00; // halfway between 65504 and 2^16 rounds to even = Inf
  const e = v >= 2 ** -14 ? Math.floor(Math.log2(v)) : -14;
  // Math.log2 may misround right at a power of two: correct it so 2^e ≤ v < 2^(e+1).
  const exp = v >= 2 ** -14 ? (2 ** (e + 1) <= v ? e + 1 : 2 ** e > v ? e - 1 : e) : -14;
  const ulp = 2 ** (exp - 10);
  const q = v / ulp; // exact: a float32 divided by a power of two
  const fl = Math.floor(q);
  const r = q - fl > 0.5 || (q - fl === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  if (v < 2 ** -14) return sign | r; // subnormal (r = 1024 is the smallest normal's bits)
  return sign | (((exp + 15) << 10) + (r - 1024)); // r = 2048 carries into the exponent
}

function referenceBfloat(x: number): number {
  const f = floatOf(x);
  if (Number.isNaN(f)) return (x >>> 16) | 0x40;
  const top = x >>> 16;
  const low = x & 0xffff;
  return (low > 0x8000 || (low === 0x8000 && top & 1) ? top + 1 : top) & 0xffff;
}

describe('fp32 → fp16 / bf16', () => {
  it('equals PyTorch on 20,000 edge and random patterns (arrays and scalars)', () => {
    const { x, h, b } = sample();
    const f = new Float32Array(x.buffer);
    const half = f32ToF16(f);
    const bf = f32ToBf16(f);
    const badHalf = [...half.keys()].filter((i) => half[i] !== h[i]).map((i) => `${hex(x[i]!)}: ${hex(half[i]!)} != torch ${hex(h[i]!)}`);
    const badBf = [...bf.keys()].filter((i) => bf[i] !== b[i]).map((i) => `${hex(x[i]!)}: ${hex(bf[i]!)} != torch ${hex(b[i]!)}`);
    expect(badHalf.slice(0, 5)).toEqual([]);
    expect(badBf.slice(0, 5)).toEqual([]);
    for (let i = 0; i < x.length; i += 97) {
      expect(halfOf(f[i]!)).toBe(h[i]);
      expect(bfloatOf(f[i]!)).toBe(b[i]);
    }
  });

  it('equals the definition on a dense sweep: every top-16-bit pattern × 40 low-bit patterns (2.6 M values)', () => {
    const lows = [0, 1, 2, 0x7ff, 0x800, 0x801, 0xfff, 0x1000, 0x1001, 0x17ff, 0x1800, 0x1801, 0x1fff, 0x2000, 0x3000, 0x7fff, 0x8000, 0x8001, 0x9000, 0xffff];
    for (let k = 0; k < 20; k++) lows.push((k * 0x9e3779b1) >>> 16); // spread-out fillers
    const x = new Uint32Array(65536 * lows.length);
    for (let hi = 0; hi < 65536; hi++) for (let j = 0; j < lows.length; j++) x[hi * lows.length + j] = ((hi << 16) | lows[j]!) >>> 0;
    const half = f32ToF16(new Float32Array(x.buffer));
    const bf = f32ToBf16(new Float32Array(x.buffer));
    const bad: string[] = [];
    for (let i = 0; i < x.length && bad.length < 5; i++) {
      const rh = referenceHalf(x[i]!);
      const rb = referenceBfloat(x[i]!);
      if (half[i] !== rh) bad.push(`f16 ${hex(x[i]!)}: ${hex(half[i]!)} != ${hex(rh)}`);
      if (bf[i] !== rb) bad.push(`bf16 ${hex(x[i]!)}: ${hex(bf[i]!)} != ${hex(rb)}`);
    }
    expect(bad).toEqual([]);
  }, 120_000);

  it('decodes every half and bf16 exactly (and fp16 → fp32 → fp16 is the identity on non-NaN)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const f = f16ToF32(all);
    // Hand-checked values: 1, the largest half, the smallest subnormal, −0, +Inf.
    expect([f[0x3c00], f[0x7bff], f[0x0001], Object.is(f[0x8000], -0), f[0x7c00]]).toEqual([1, 65504, 2 ** -24, true, Infinity]);
    const back = f32ToF16(f);
    for (let i = 0; i < 65536; i++) if (!Number.isNaN(f[i]!)) expect(back[i]).toBe(i);
    const b = bf16ToF32(all);
    expect([b[0x3f80], b[0xc000], b[0x7f80]]).toEqual([1, -2, Infinity]);
  });

  it.runIf(process.env.LOUPE_FP16_EXHAUSTIVE === '1')('equals PyTorch on all 2^32 float32 bit patterns (hash of every output)', () => {
    const ref = JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as { all32: { float16Sha256: string; bfloat16Sha256: string } };
    const chunk = 1 << 24;
    const x = new Uint32Array(chunk);
    const f = new Float32Array(x.buffer);
    const h = new Uint16Array(chunk);
    const b = new Uint16Array(chunk);
    const hh = createHash('sha256');
    const hb = createHash('sha256');
    for (let start = 0; start < 2 ** 32; start += chunk) {
      for (let i = 0; i < chunk; i++) x[i] = start + i;
      hh.update(f32ToF16(f, h));
      hb.update(f32ToBf16(f, b));
    }
    expect(hh.digest('hex')).toBe(ref.all32.float16Sha256);
    expect(hb.digest('hex')).toBe(ref.all32.bfloat16Sha256);
  }, 900_000);
});
