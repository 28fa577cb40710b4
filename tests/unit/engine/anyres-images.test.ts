/**
 * LLaVA-NeXT / OneVision anyres arithmetic (vlm/anyres-images.ts) on hand-checked cases; the whole path against HF's
 * Python processors and model is tests/integration/hf-llava-next.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { anyresExpandPrompt, anyresLayout, anyresTokenMap, patchOutputSize, selectBestResolution } from '../../../src-main/engine/vlm/anyres-images.ts';

// llava-hf/llava-v1.6-*'s pinpoints (height, width); expectations from HF v4.46.1's select_best_resolution and
// _get_patch_output_size.
const NEXT_PINPOINTS: [number, number][] = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]];

describe('anyres (LLaVA-NeXT / LLaVA-OneVision)', () => {
  it('select_best_resolution and the resize before padding, as HF', () => {
    const cases: [[number, number], [number, number], [number, number]][] = [
      [[480, 640], [672, 672], [504, 672]],
      [[640, 480], [672, 672], [672, 504]],
      [[300, 1000], [336, 1008], [303, 1008]],
      [[1000, 300], [1008, 336], [1008, 303]],
      // a tie in effective resolution: the least waste wins, then the first pinpoint
      [[336, 336], [336, 672], [336, 336]],
      [[10, 10], [336, 672], [336, 336]],
      [[2000, 500], [1008, 336], [1008, 252]],
    ];
    for (const [[h, w], best, resized] of cases) {
      expect(selectBestResolution(h, w, NEXT_PINPOINTS), `${h}×${w}`).toEqual(best);
      expect(patchOutputSize(h, w, best), `${h}×${w}`).toEqual(resized);
    }
  });

  it('unpadding removes floor-halved rows (wide) or columns (tall); each grid row ends in a newline', () => {
    const cfg = { pinpoints: [[32, 32], [32, 64], [64, 32], [64, 64]] as [number, number][], crop: 32, side: 8 };
    // 48×20 → 1×2 crops, 8×16 cells; int(20·16/48) = 6 rows kept → rows 1..6
    expect(anyresLayout(20, 48, cfg)).toMatchObject({ rows: 1, cols: 2, top: 1, bottom: 7, left: 0, right: 16, outRows: 6, outCols: 16, tokens: 64 + 6 * 17 });
    // 18×44 → 2×1 crops, 16×8 cells; int(18·16/44) = 6 columns kept → columns 1..6
    expect(anyresLayout(44, 18, cfg)).toMatchObject({ rows: 2, cols: 1, top: 0, bottom: 16, left: 1, right: 7, tokens: 64 + 16 * 7 });
  });

  it('token map: the base view last as a tile, crop patches in crop coordinates, newlines without a patch', () => {
    const cfg = { pinpoints: [[32, 64]] as [number, number][], crop: 32, side: 8 };
    const layout = anyresLayout(20, 48, cfg);
    const ids = BigInt64Array.from([1, ...Array(layout.tokens).fill(9), 2].map(BigInt));
    const map = anyresTokenMap(ids, 9, [layout], 8);
    expect(map[0]).toEqual({ position: 1, image: 0, tile: 2, row: 0, col: 0 });
    expect(map[63]).toEqual({ position: 64, image: 0, tile: 2, row: 7, col: 7 });
    // first grid row: feature row 1 of crops 0 and 1, then its newline (tile of the row's last crop)
    expect(map[64]).toMatchObject({ tile: 0, row: 1, col: 0 });
    expect(map[64 + 8]).toMatchObject({ tile: 1, row: 1, col: 0 });
    expect(map[64 + 16]).toMatchObject({ tile: 1, row: -1, col: -1 });
    expect(map.filter((t) => t.row < 0)).toHaveLength(6);
    expect(() => anyresTokenMap(ids.slice(2), 9, [layout], 8)).toThrow(/anyres layouts imply/);
  });

  it("OneVision's anyres_max_9: a large unpadded grid is shrunk as the processor counts it, tokens mapped to the nearest patch", () => {
    // 384-px crops, 27×27 = 729 tokens; 2000×2000 → the 6×6 pinpoint (2304²), 162×162 cells > 9·1.1² · 27²
    const pins: [number, number][] = [];
    for (const h of [384, 768, 1152, 1536, 1920, 2304]) for (const w of [384, 768, 1152, 1536, 1920, 2304]) pins.push([h, w]);
    const l = anyresLayout(2000, 2000, { pinpoints: pins, crop: 384, side: 27, maxCrops: 9 });
    // ratio = sqrt(162² / (9·27²)) = 2 → int(162 // 2) = 81 (HF: 7371 tokens = 729 + 81·82)
    expect(l).toMatchObject({ rows: 6, cols: 6, outRows: 81, outCols: 81, tokens: 7371 });
    const map = anyresTokenMap(BigInt64Array.from(Array(l.tokens).fill(5n)), 5, [l], 27);
    const grid = map.slice(729).filter((t) => t.row >= 0);
    expect(grid).toHaveLength(81 * 81);
    // output cell (i, j) → source cell floor((i + ½)·2) = 2i + 1
    expect(grid[0]).toMatchObject({ tile: 0, row: 1, col: 1 });
    expect(grid[81 * 81 - 1]).toMatchObject({ tile: 35, row: 26, col: 26 });
    expect(grid.every((t) => t.tile >= 0 && t.tile < 36 && t.row < 27 && t.col < 27)).toBe(true);
  });

  it('prompt expansion: one run per <image>, the counts in order', () => {
    expect(anyresExpandPrompt('USER: <image>\n<image>\nSame? ASSISTANT:', [2, 3], '<image>')).toBe('USER: <image><image>\n<image><image><image>\nSame? ASSISTANT:');
    expect(() => anyresExpandPrompt('USER: <image>\nQ', [2, 3], '<image>')).toThrow(/1 <image> placeholders for 2 images/);
  });
});
