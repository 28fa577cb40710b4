/** Brush and polygon rasterisation of binary masks, against masks computed by hand. */
import { describe, expect, it } from 'vitest';
import { binaryOf, fillPolygon, maskArea, maskBbox, paintSegment } from '../../src-shared/dataset/mask-raster.ts';

/** Rows of '0'/'1' → mask, and back. */
const grid = (rows: string[]) => Uint8Array.from(rows.join('').split(''), Number);
const rows = (m: Uint8Array, w: number) => Array.from({ length: m.length / w }, (_, y) => Array.from(m.subarray(y * w, (y + 1) * w)).join(''));

describe('brush (paintSegment)', () => {
  it('a dab of radius 1 at a pixel centre covers the pixel and its four neighbours', () => {
    const m = new Uint8Array(25);
    expect(paintSegment(m, 5, 5, [2.5, 2.5], [2.5, 2.5], 1, 1)).toBe(5);
    expect(rows(m, 5)).toEqual(['00000', '00100', '01110', '00100', '00000']);
  });

  it('radius 1.5 reaches the diagonals (√2) but not two pixels away', () => {
    const m = new Uint8Array(25);
    paintSegment(m, 5, 5, [2.5, 2.5], [2.5, 2.5], 1.5, 1);
    expect(rows(m, 5)).toEqual(['00000', '01110', '01110', '01110', '00000']);
  });

  it('a horizontal stroke of radius ½ paints one row', () => {
    const m = new Uint8Array(15);
    expect(paintSegment(m, 5, 3, [0.5, 1.5], [4.5, 1.5], 0.5, 1)).toBe(5);
    expect(rows(m, 5)).toEqual(['00000', '11111', '00000']);
  });

  it('a diagonal stroke covers the pixels within the radius of the segment, not of its endpoints only', () => {
    const thin = new Uint8Array(16);
    paintSegment(thin, 4, 4, [0.5, 0.5], [3.5, 3.5], 0.5, 1);
    expect(rows(thin, 4)).toEqual(['1000', '0100', '0010', '0001']);
    // Off-diagonal centres lie 1/√2 ≈ 0.707 from the line.
    const wide = new Uint8Array(16);
    paintSegment(wide, 4, 4, [0.5, 0.5], [3.5, 3.5], 0.75, 1);
    expect(rows(wide, 4)).toEqual(['1100', '1110', '0111', '0011']);
  });

  it('clips at the image border, erases with 0 and counts only changed pixels', () => {
    const m = new Uint8Array(9);
    expect(paintSegment(m, 3, 3, [0, 0], [0, 0], 1, 1)).toBe(1); // only (0,0)'s centre is within 1 of the corner
    expect(rows(m, 3)).toEqual(['100', '000', '000']);
    expect(paintSegment(m, 3, 3, [0, 0], [0, 0], 1, 1)).toBe(0);
    const full = new Uint8Array(9).fill(1);
    expect(paintSegment(full, 3, 3, [1.5, 1.5], [1.5, 1.5], 1, 0)).toBe(5);
    expect(rows(full, 3)).toEqual(['101', '000', '101']);
    expect(() => paintSegment(new Uint8Array(8), 3, 3, [0, 0], [0, 0], 1, 1)).toThrow(/not 3×3/);
  });
});

describe('polygon fill (scanline, pixel centres)', () => {
  it('fills an axis-aligned rectangle exactly', () => {
    const m = new Uint8Array(30);
    expect(fillPolygon(m, 6, 5, [[1, 1], [4, 1], [4, 3], [1, 3]], 1)).toBe(6);
    expect(rows(m, 6)).toEqual(['000000', '011100', '011100', '000000', '000000']);
  });

  it('fills a triangle: centres on the hypotenuse (x + y = 3) are outside', () => {
    const m = new Uint8Array(16);
    fillPolygon(m, 4, 4, [[0, 0], [4, 0], [0, 4]], 1);
    expect(rows(m, 4)).toEqual(['1110', '1100', '1000', '0000']);
  });

  it('fills a concave L and a self-intersecting bow-tie (even–odd)', () => {
    const l = new Uint8Array(16);
    fillPolygon(l, 4, 4, [[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]], 1);
    expect(rows(l, 4)).toEqual(['1110', '1000', '1000', '0000']);
    // Two triangles meeting at (2, 2); on row 0 the left one spans x ∈ [0, 0.5) (centre 0.5 on its
    // right edge: out) and the right one x ∈ [3.5, 4) (centre 3.5 on its left edge: in).
    const bow = new Uint8Array(16);
    fillPolygon(bow, 4, 4, [[0, 0], [4, 4], [4, 0], [0, 4]], 1);
    expect(rows(bow, 4)).toEqual(['0001', '1011', '1011', '0001']);
  });

  it('erases, clips polygons that leave the image, ignores fewer than 3 vertices', () => {
    const m = grid(['1111', '1111', '1111']);
    expect(fillPolygon(m, 4, 3, [[1, -5], [10, -5], [10, 2], [1, 2]], 0)).toBe(6);
    expect(rows(m, 4)).toEqual(['1000', '1000', '1111']);
    expect(fillPolygon(m, 4, 3, [[0, 0], [4, 4]], 0)).toBe(0);
  });

  it('two polygons sharing an edge never cover the same pixel', () => {
    const a = new Uint8Array(36), b = new Uint8Array(36);
    fillPolygon(a, 6, 6, [[0.2, 0.3], [3.7, 0.3], [2.2, 5.9]], 1);
    fillPolygon(b, 6, 6, [[3.7, 0.3], [5.8, 5.1], [2.2, 5.9]], 1);
    for (let i = 0; i < 36; i++) expect(a[i]! + b[i]!).toBeLessThanOrEqual(1);
  });
});

describe('mask measures', () => {
  it('area, tight COCO bbox and the binary mask of chosen instance ids', () => {
    const m = grid(['0000', '0110', '0100']);
    expect(maskArea(m)).toBe(3);
    expect(maskBbox(m, 4, 3)).toEqual([1, 1, 2, 2]);
    expect(maskBbox(new Uint8Array(4), 2, 2)).toBeNull();
    const ids = Uint8Array.from([0, 2, 3, 2, 0, 7]);
    expect(Array.from(binaryOf(ids, [2]))).toEqual([0, 1, 0, 1, 0, 0]);
    expect(Array.from(binaryOf(ids))).toEqual([0, 1, 1, 1, 0, 1]);
  });
});
