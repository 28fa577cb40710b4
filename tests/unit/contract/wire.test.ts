import { describe, expect, it } from 'vitest';
import { decodeTensorFrame, encodeTensorFrame } from '../../../src-shared/contract/wire.ts';

describe('tensor frames', () => {
  it('round-trip header and bytes with an 8-byte aligned payload', () => {
    const data = new Float32Array([0.5, -1, 2, 3, 4, 5]);
    const bytes = encodeTensorFrame({ t: 'tensor', header: { id: 7, name: 'image_features', dtype: 'float32', shape: [1, 2, 3] }, data });
    const frame = decodeTensorFrame(bytes.buffer as ArrayBuffer);
    expect(frame.header).toEqual({ id: 7, name: 'image_features', dtype: 'float32', shape: [1, 2, 3] });
    expect(Array.from(frame.data as Float32Array)).toEqual(Array.from(data));
    expect((frame.data as Float32Array).byteOffset % 8).toBe(0);
  });

  it('rejects frames that are not ours or whose payload does not fit the shape', () => {
    expect(() => decodeTensorFrame(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer)).toThrow(/bad magic/);
    const ok = encodeTensorFrame({ t: 'tensor', header: { id: 1, name: 'x', dtype: 'float32', shape: [4] }, data: new Float32Array(4) });
    expect(() => decodeTensorFrame(ok.slice(0, ok.length - 4).buffer)).toThrow(/does not match shape/);
  });
});
