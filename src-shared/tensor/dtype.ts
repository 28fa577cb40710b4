/** Tensor element types Loupe stores and streams, and their typed-array constructors. */
export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';

export type TypedArray = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  float32: 4,
  float16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  bool: 1,
};

/** A tensor as plain data: no ORT or DOM types, so it can live in any layer and cross any boundary. */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  /** float16 is kept as raw Uint16 bits; convert with `float16ToFloat32` when reading values. */
  data: TypedArray;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function typedArrayFor(dtype: DType, buffer: ArrayBuffer, byteOffset: number, length: number): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, length);
    case 'float16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'int32':
      return new Int32Array(buffer, byteOffset, length);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, length);
  }
}

/** IEEE 754 half → single, exact. */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Single → half with round-to-nearest-even; overflow saturates to ±Infinity. */
export function float32ToFloat16(value: number): number {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  if ((half & 0x7c00) === 0x7c00 && e >= 0x1f) return sign | 0x7c00;
  e = 0;
  return sign | half;
}

export function toFloat32(t: HostTensor): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  const out = new Float32Array(t.data.length);
  if (t.dtype === 'float16') {
    const src = t.data as Uint16Array;
    for (let i = 0; i < src.length; i++) out[i] = float16ToFloat32(src[i]!);
  } else if (t.dtype === 'int64') {
    const src = t.data as BigInt64Array;
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]!);
  } else {
    const src = t.data as Int32Array | Uint8Array;
    for (let i = 0; i < src.length; i++) out[i] = src[i]!;
  }
  return out;
}
