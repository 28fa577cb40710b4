import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16 } from '../../../src-shared/tensor/dtype.ts';
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../../../src-shared/tensor/safetensors.ts';

describe('safetensors codec', () => {
  it('round-trips several dtypes and keeps metadata', () => {
    const a = { dtype: 'float32' as const, shape: [2, 3], data: new Float32Array([1, -2, 3.5, 4, 5, 6e-8]) };
    const b = { dtype: 'int64' as const, shape: [3], data: new BigInt64Array([1n, -2n, 3n ** 30n]) };
    const bytes = encodeSafetensors({ b, a }, { run: 'r1' });
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))));
    expect(JSON.parse(header).a).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect((8 + header.length) % 8).toBe(0);
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ run: 'r1' });
    expect(Array.from(back.tensors.a!.data as Float32Array)).toEqual(Array.from(a.data));
    expect(back.tensors.b!.data).toEqual(b.data);
  });

  it('names the problem in a truncated file', () => {
    const bytes = encodeSafetensors({ x: { dtype: 'float32', shape: [4], data: new Float32Array(4) } });
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 3))).toThrow(/truncated/);
    expect(() => decodeSafetensors(bytes.subarray(0, 5))).toThrow(SafetensorsError);
  });

  it('refuses a shape that does not match the data', () => {
    expect(() => encodeSafetensors({ x: { dtype: 'float32', shape: [5], data: new Float32Array(4) } })).toThrow(/needs 20 bytes/);
  });
});

describe('float16 conversion', () => {
  it('matches IEEE half for exact, subnormal, overflow and rounding cases', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(1e6)).toBe(0x7c00);
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001);
    // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to even → 1.
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00);
    expect(float16ToFloat32(0x3555)).toBeCloseTo(0.33325195, 7);
    for (const v of [0.1, -3.75, 1234.5, 6.1e-5]) expect(Math.abs(float16ToFloat32(float32ToFloat16(v)) - v) / Math.abs(v)).toBeLessThan(2 ** -11);
  });
});
