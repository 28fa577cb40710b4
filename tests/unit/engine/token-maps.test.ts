import { describe, expect, it } from 'vitest';
import { mropePositionIds } from '../../../src-main/engine/vlm/mrope.ts';
import { attentionAsBHQK } from '../../../src-main/engine/vlm/slicing.ts';
import { idefics3TokenMap, imageTokenMap, llavaGrid, qwenTokenMap } from '../../../src-main/engine/vlm/token-map.ts';

const I = 9; // image token id in these hand-made prompts

describe('token ↔ patch maps', () => {
  it('LLaVA: grid from the config, CLS kept only under the "full" strategy', () => {
    const cfg = { vision_config: { image_size: 12, patch_size: 4 }, vision_feature_select_strategy: 'default' };
    expect(llavaGrid(cfg)).toEqual({ rows: 3, cols: 3, prefix: 0 });
    const ids = BigInt64Array.from([1, 2, ...Array(9).fill(I), 3].map(BigInt));
    const map = imageTokenMap(ids, I, llavaGrid(cfg));
    expect(map[0]).toEqual({ position: 2, image: 0, tile: 0, row: 0, col: 0 });
    expect(map[5]).toEqual({ position: 7, image: 0, tile: 0, row: 1, col: 2 });
    expect(() => imageTokenMap(BigInt64Array.from([I, I].map(BigInt)), I, llavaGrid(cfg))).toThrow(/not a multiple of the 9/);
    const full = imageTokenMap(BigInt64Array.from(Array(10).fill(BigInt(I))), I, llavaGrid({ ...cfg, vision_feature_select_strategy: 'full' }));
    expect(full[0]).toMatchObject({ row: -1, col: -1 });
    expect(full[1]).toMatchObject({ row: 0, col: 0 });
    // SigLIP has no CLS: "full" keeps every token and they are all patches (729 at 384 px, not 730).
    const siglip = { ...cfg, vision_feature_select_strategy: 'full', vision_config: { ...(cfg.vision_config as object), model_type: 'siglip_vision_model' } };
    expect(llavaGrid(siglip).prefix).toBe(0);
    expect(imageTokenMap(BigInt64Array.from(Array(9).fill(BigInt(I))), I, llavaGrid(siglip))[0]).toMatchObject({ row: 0, col: 0 });
  });

  it('Qwen2-VL: merged grid per image, frames as tiles', () => {
    // Image of grid t=1, h=4, w=6 with merge 2 → 2×3 = 6 tokens.
    const ids = BigInt64Array.from([5, ...Array(6).fill(I), 7].map(BigInt));
    const map = qwenTokenMap(ids, I, [{ t: 1, h: 4, w: 6 }], 2);
    expect(map.map((m) => [m.position, m.row, m.col])).toEqual([
      [1, 0, 0], [2, 0, 1], [3, 0, 2], [4, 1, 0], [5, 1, 1], [6, 1, 2],
    ]);
    expect(() => qwenTokenMap(ids, I, [{ t: 1, h: 4, w: 8 }], 2)).toThrow(/fewer than the image grids imply/);
  });

  it('Idefics3: tiles then the global view, each a square block', () => {
    const ids = BigInt64Array.from([1, ...Array(4).fill(I), 2, ...Array(4).fill(I), 3, ...Array(4).fill(I)].map(BigInt));
    const map = idefics3TokenMap(ids, I, [3], 4);
    expect(map.map((m) => [m.position, m.tile, m.row, m.col])).toEqual([
      [1, 0, 0, 0], [2, 0, 0, 1], [3, 0, 1, 0], [4, 0, 1, 1],
      [6, 1, 0, 0], [7, 1, 0, 1], [8, 1, 1, 0], [9, 1, 1, 1],
      [11, 2, 0, 0], [12, 2, 0, 1], [13, 2, 1, 0], [14, 2, 1, 1],
    ]);
    expect(() => idefics3TokenMap(ids, I, [2], 4)).toThrow(/imply 8/);
  });
});

describe('Qwen2-VL M-RoPE position ids', () => {
  it('matches get_rope_index on a hand-worked prompt', () => {
    // text(3) · image t=1 h=4 w=4 merge 2 (2×2 = 4 tokens) · text(2)
    const ids = [10, 11, 12, I, I, I, I, 13, 14];
    const { ids: pos, ropeDelta } = mropePositionIds(ids, I, [{ t: 1, h: 4, w: 4 }], 2);
    expect(pos[0]).toEqual([0, 1, 2, 3, 3, 3, 3, 5, 6]); // temporal: one frame
    expect(pos[1]).toEqual([0, 1, 2, 3, 3, 4, 4, 5, 6]); // rows
    expect(pos[2]).toEqual([0, 1, 2, 3, 4, 3, 4, 5, 6]); // cols
    // Next decoded token sits at 7 = seq (9) + delta (−2).
    expect(ropeDelta).toBe(-2);
  });

  it('names a prompt/grid mismatch', () => {
    expect(() => mropePositionIds([I, I, 1], I, [{ t: 1, h: 4, w: 4 }], 2)).toThrow(/expects 4 image tokens/);
    expect(() => mropePositionIds([1, 2], I, [{ t: 1, h: 2, w: 2 }], 2)).toThrow(/1 images but 0 image-token runs/);
  });
});


describe('attention layouts', () => {
  it('reads [b·h, q, k] and [b, kv, group, q, k] as [b, h, q, k] without moving data', () => {
    const data = new Float32Array(2 * 4 * 3 * 3).map((_, i) => i);
    const fused = attentionAsBHQK({ dtype: 'float32', shape: [8, 3, 3], data }, 4);
    expect(fused.shape).toEqual([2, 4, 3, 3]);
    expect(fused.data).toBe(data);
    expect(attentionAsBHQK({ dtype: 'float32', shape: [2, 2, 2, 3, 3], data }, 4).shape).toEqual([2, 4, 3, 3]);
    expect(() => attentionAsBHQK({ dtype: 'float32', shape: [72], data }, 4)).toThrow(/no \[batch, heads, q, k\] reading/);
  });
});
