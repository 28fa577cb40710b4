/** Mask encodings: COCO RLE (counts and pycocotools' compressed string), PNG bytes, base64 — hand-computed values and round trips. */
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { base64ToBytes, bytesToBase64, encodeMaskPng, rleCounts, rleDecode, rleFromString, rleToString } from '../../src-shared/dataset/mask-codec.ts';

const grid = (rows: string[]) => Uint8Array.from(rows.join('').split(''), Number);

describe('COCO RLE', () => {
  // Column-major: col 0 = 0 0 0, col 1 = 1 1 0, col 2 = 0 1 0 → runs 3 zeros, 2 ones, 2 zeros, 1 one, 1 zero.
  const m = grid(['010', '011', '000']);

  it('counts runs column-major, zeros first', () => {
    expect(rleCounts(m, 3, 3)).toEqual([3, 2, 2, 1, 1]);
    expect(rleCounts(grid(['10', '00']), 2, 2)).toEqual([0, 1, 3]);
    expect(rleCounts(new Uint8Array(6), 3, 2)).toEqual([6]);
    expect(rleCounts(new Uint8Array(6).fill(1), 3, 2)).toEqual([0, 6]);
    // 2 × 3 (w × h) non-square: col 0 = 1 0 1, col 1 = 1 1 0.
    expect(rleCounts(grid(['11', '01', '10']), 2, 3)).toEqual([0, 1, 1, 3, 1]);
  });

  it('compresses like pycocotools: 5-bit groups + 48, deltas against the count two back from the fourth on', () => {
    // 3 → '3', 2 → '2', 2 → '2', then 1 − 2 = −1 → (31 + 48) = 'O', and again 1 − 2 = −1 → 'O'.
    expect(rleToString([3, 2, 2, 1, 1])).toBe('322OO');
    // 100 = 3·32 + 4: low group 4 with the continuation bit (4 | 32) + 48 = 'T', then 3 → '3'.
    expect(rleToString([100])).toBe('T3');
    // 20 has bit 4 set, so it needs a second (zero) group: (20 | 32) + 48 = 'd', then '0'.
    expect(rleToString([20])).toBe('d0');
    expect(rleToString([0, 1, 3])).toBe('013');
  });

  it('decompresses and decodes back to the same mask', () => {
    expect(rleFromString('322OO')).toEqual([3, 2, 2, 1, 1]);
    expect(rleFromString('T3')).toEqual([100]);
    expect(rleFromString('d0')).toEqual([20]);
    expect(Array.from(rleDecode([3, 2, 2, 1, 1], 3, 3))).toEqual(Array.from(m));
    const big = Uint8Array.from({ length: 37 * 23 }, (_, i) => ((i * 7919) % 13 < 5 ? 1 : 0));
    const counts = rleCounts(big, 37, 23);
    expect(rleFromString(rleToString(counts))).toEqual(counts);
    expect(rleDecode(counts, 37, 23)).toEqual(big);
  });

  it('refuses counts that do not cover the image and malformed strings', () => {
    expect(() => rleDecode([3, 2], 3, 3)).toThrow(/cover 5 pixels/);
    expect(() => rleDecode([3, 20], 3, 3)).toThrow(/more than 3×3/);
    expect(() => rleFromString('T')).toThrow(/ends inside a count/);
    expect(() => rleFromString('3~')).toThrow(/bad character/);
  });
});

describe('mask PNG bytes', () => {
  it('round-trips through an independent decoder (pngjs), odd sizes and values kept', async () => {
    const w = 7, h = 5;
    const values = Uint8Array.from({ length: w * h }, (_, i) => (i % 3 === 0 ? 1 : i === 4 ? 255 : 0));
    const png = await encodeMaskPng(values, w, h);
    expect(Array.from(png.subarray(0, 8))).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const decoded = PNG.sync.read(Buffer.from(png)); // checks every chunk's CRC
    expect([decoded.width, decoded.height]).toEqual([w, h]);
    expect(Array.from({ length: w * h }, (_, i) => decoded.data[i * 4])).toEqual(Array.from(values));
  });

  it('deflates: a 256 × 256 mask with one disc is far smaller than its pixels', async () => {
    const w = 256;
    const m = Uint8Array.from({ length: w * w }, (_, i) => ((i % w) - 100) ** 2 + (Math.floor(i / w) - 90) ** 2 < 900 ? 1 : 0);
    expect((await encodeMaskPng(m, w, w)).length).toBeLessThan(2000);
    await expect(encodeMaskPng(m, w, w - 1)).rejects.toThrow(/not 256×255/);
  });
});

describe('base64', () => {
  it('matches RFC 4648 vectors and Node for random bytes', () => {
    const enc = (s: string) => bytesToBase64(new TextEncoder().encode(s));
    expect(['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar'].map(enc)).toEqual(['', 'Zg==', 'Zm8=', 'Zm9v', 'Zm9vYg==', 'Zm9vYmE=', 'Zm9vYmFy']);
    const bytes = Uint8Array.from({ length: 1001 }, (_, i) => (i * 151 + 7) & 255);
    expect(bytesToBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
    expect(base64ToBytes(Buffer.from(bytes).toString('base64'))).toEqual(bytes);
    expect(new TextDecoder().decode(base64ToBytes('Zm9vYg=='))).toBe('foob');
    expect(() => base64ToBytes('Zm9')).toThrow(/multiple of 4/);
    expect(() => base64ToBytes('Zm!v')).toThrow(/bad character/);
  });
});
