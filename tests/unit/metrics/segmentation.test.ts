import { describe, expect, it } from 'vitest';
import { iou, patchMask, segmentBySimilarity } from '../../../src-shared/metrics/segmentation.ts';
import { wholeImageMap } from '../../../src-shared/vision/pixel-map.ts';

describe('segmentation metrics', () => {
  it('IoU on hand-computed masks', () => {
    expect(iou([1, 1, 0, 0], [1, 0, 1, 0])).toBeCloseTo(1 / 3, 12);
    expect(iou([0, 0], [0, 0])).toBe(1);
    expect(iou([1, 0], [0, 1])).toBe(0);
  });

  it('patch ground truth takes the majority of each patch', () => {
    // 4×4 pixels, 2×2 patches; object id 3 covers the top-left patch fully and 3 of 4 pixels of the top-right.
    const ids = [3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 5];
    const map = wholeImageMap({ width: 4, height: 4 }, { rows: 2, cols: 2 });
    expect(patchMask(map, ids, new Set([3]))).toEqual([true, true, false, false]);
    expect(patchMask(map, ids, new Set([5]))).toEqual([false, false, false, false]);
  });

  it('segments tokens above the midpoint of mean and max similarity', () => {
    // mean 0.5, max 0.9 → threshold 0.7
    expect(segmentBySimilarity([0.9, 0.1, 0.8, 0.2])).toEqual([true, false, true, false]);
    expect(segmentBySimilarity([1, 0.6, 0.65, 0.1, 0.15])).toEqual([true, false, false, false, false]);
  });
});
