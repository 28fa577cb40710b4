/** The pixel → token map through the processors' resize and centre crop (src-shared/vision/pixel-map.ts). */
import { describe, expect, it } from 'vitest';
import { cellAt, cellBounds, cellCentre, cellCoverage, clipViewMap, mapForRaster, pixelCell, wholeImageMap } from '../../src-shared/vision/pixel-map.ts';

// LLaVA-1.5's processor at toy scale: shortest edge 32, centre crop 32×32, 8×8 patches of 4 px.
const CLIP = { do_resize: true, size: { shortest_edge: 32 }, do_center_crop: true, crop_size: { height: 32, width: 32 } };
const GRID = { rows: 8, cols: 8 };

describe('clipViewMap (resize shortest edge → centre crop)', () => {
  it('a square image that is already the size: cells are proportional', () => {
    const m = clipViewMap(CLIP, { width: 32, height: 32 }, GRID);
    expect(cellAt(m, [0, 0])).toBe(0);
    expect(cellAt(m, [31.9, 31.9])).toBe(63);
    expect(cellAt(m, [32, 32])).toBe(63); // the far edge belongs to the last cell
    expect(cellCentre(m, 9)).toEqual([6, 6]);
  });

  it('a wide image: the crop removes the sides, and the map shifts by the crop offset', () => {
    // 64×32: no resize (shortest edge already 32), crop x ∈ [16, 48).
    const m = clipViewMap(CLIP, { width: 64, height: 32 }, GRID);
    expect([m.left, m.top, m.width, m.height]).toEqual([16, 0, 32, 32]);
    expect(cellAt(m, [8, 16])).toBeUndefined(); // cropped away
    expect(cellAt(m, [56, 16])).toBeUndefined();
    // x = 40 → 24 in the crop → column 6 (proportional mapping would say column 5).
    expect(cellAt(m, [40, 8])).toBe(2 * 8 + 6);
    expect(cellCentre(m, 2 * 8 + 6)).toEqual([42, 10]);
    expect(cellBounds(m, 0)).toEqual([16, 0, 20, 4]);
  });

  it('a large non-square image: scale, then crop (100×37 → 86×32 → x ∈ [27, 59))', () => {
    const m = clipViewMap(CLIP, { width: 100, height: 37 }, GRID);
    expect([m.width, m.height, m.left, m.top]).toEqual([32, 32, 27, 0]);
    expect(m.scaleX).toBeCloseTo(0.86, 12);
    expect(m.scaleY).toBeCloseTo(32 / 37, 12);
    // (50, 20) → (43 − 27, 17.3) = (16, 17.3) → row 4, col 4.
    expect(cellAt(m, [50, 20])).toBe(4 * 8 + 4);
    // The cell centre maps back inside that cell.
    expect(cellAt(m, cellCentre(m, 4 * 8 + 4))).toBe(4 * 8 + 4);
  });

  it('size {height, width} (SigLIP): the whole image, stretched', () => {
    const m = clipViewMap({ size: { height: 32, width: 32 } }, { width: 64, height: 16 }, GRID);
    expect(cellAt(m, [63, 15])).toBe(63);
    expect(cellAt(m, [8, 2])).toBe(1 * 8 + 1);
  });
});

describe('masks and rasters', () => {
  it('coverage counts only the pixels the processor keeps', () => {
    // 8×4 image, no resize, crop to the middle 4×4 on a 1×1 grid: only x ∈ [2, 6) counts.
    const m = clipViewMap({ do_resize: false, do_center_crop: true, crop_size: 4 }, { width: 8, height: 4 }, { rows: 1, cols: 1 });
    const ids = new Uint8Array(32);
    for (let y = 0; y < 4; y++) for (const x of [0, 1, 2]) ids[y * 8 + x] = 1; // columns 0–2: only column 2 is kept
    expect(Array.from(cellCoverage(m, ids, new Set([1])))).toEqual([0.25]);
    expect(pixelCell(m, 0, 0)).toBeUndefined();
  });

  it('a mask at another resolution maps through the same view', () => {
    const m = wholeImageMap({ width: 32, height: 32 }, GRID);
    const half = mapForRaster(m, { width: 16, height: 16 });
    expect(pixelCell(half, 15, 15)).toBe(63);
    expect(pixelCell(half, 2, 0)).toBe(1);
  });
});
