/** Tensor element types Loupe stores and streams, and their typed-array constructors. */
import { f16ToF32, halfOf } from './half.ts';

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

/** Single → half with round-to-nearest-even; overflow saturates to ±Infinity (arrays: `f32ToF16` in half.ts). */
export function float32ToFloat16(value: number): number {
  return halfOf(value);
}

export function toFloat32(t: HostTensor): Float32Array {
  if (t.dtype === 'float32') return t.data as Float32Array;
  const out = new Float32Array(t.data.length);
  if (t.dtype === 'float16') {
    f16ToF32(t.data as Uint16Array, out);
  } else if (t.dtype === 'int64') {
    const src = t.data as BigInt64Array;
    for (let i = 0; i < src.length; i++) out[i] = Number(src[i]!);
  } else {
    const src = t.data as Int32Array | Uint8Array;
    for (let i = 0; i < src.length; i++) out[i] = src[i]!;
  }
  return out;
}
