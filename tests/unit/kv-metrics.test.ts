/** K/V-probe metrics on tiny hand-computed cases: PCK, mask propagation, few-shot segmentation, boxes from similarity maps, box IoU. */
import { describe, expect, it } from 'vitest';
import { boxFromSimilarity, boxIou, boxOfRegion, regionFromSimilarity } from '../../src-shared/metrics/boxes.ts';
import { matchPoint, nearestToken, pckCorrect, unitRows } from '../../src-shared/metrics/correspondence.ts';
import { propagateLabels, propagateMask, topK } from '../../src-shared/metrics/propagation.ts';
import { cellCentre, cellCoverage, wholeImageMap } from '../../src-shared/vision/pixel-map.ts';
import { fewShotSegmentation } from '../../src-shared/metrics/few-shot-segmentation.ts';
import { iou } from '../../src-shared/metrics/segmentation.ts';

describe('point correspondence (PCK@α)', () => {
  it('normalises rows once; a zero row stays zero', () => {
    expect(Array.from(unitRows([3, 4, 0, 0], 2, 2))).toEqual([Math.fround(0.6), Math.fround(0.8), 0, 0]);
  });

  // 2×2 target grid on a 20×20 image; patch centres (5,5) (15,5) (5,15) (15,15).
  const target = unitRows([1, 0, 0, 1, -1, 0, 0.6, 0.8], 4, 2);
  const source = unitRows([0.5, 0.7], 1, 2); // cosines 0.58, 0.81, −0.58, 0.86 → patch 3
  const grid = { rows: 2, cols: 2 };
  const size = { width: 20, height: 20 };

  it('matches the source token to its nearest target token and predicts that patch centre', () => {
    expect(nearestToken(source, 0, target, 2)).toBe(3);
    expect(cellCentre(wholeImageMap(size, grid), 3)).toEqual([15, 15]);
    expect(cellCentre(wholeImageMap({ width: 40, height: 10 }, { rows: 2, cols: 4 }), 1)).toEqual([15, 2.5]);
  });

  it('is correct within α·max(w, h), inclusive', () => {
    // α = 0.1 on 20×20: radius 2.
    expect(pckCorrect([15, 15], [15, 17], size, 0.1)).toBe(true);
    expect(pckCorrect([15, 15], [15, 17.01], size, 0.1)).toBe(false);
    expect(pckCorrect([15, 15], [16, 16.5], size, 0.1)).toBe(true); // distance 1.80
    expect(pckCorrect([0, 0], [3, 4], { width: 10, height: 50 }, 0.1)).toBe(true); // 5 ≤ 0.1·50
  });

  it('scores the shuffled control with the matched token moved to its permuted position', () => {
    const m = matchPoint(source, 0, target, 2, wholeImageMap(size, grid), [15, 16], 0.1, [
      [0, 1, 2, 3], // identity: still correct
      [3, 2, 1, 0], // patch 3 → position 0: (5, 5), wrong
      [1, 0, 3, 2], // patch 3 → position 2: (5, 15), wrong
      [0, 2, 1, 3], // patch 3 stays: correct
    ]);
    expect(m).toEqual({ patch: 3, predicted: [15, 15], correct: true, control: 0.5 });
    expect(matchPoint(source, 0, target, 2, wholeImageMap(size, grid), [5, 5], 0.1).correct).toBe(false);
  });
});

describe('mask propagation by k-NN voting', () => {
  const F = [1, 0]; // object feature
  const B = [0, 1]; // background feature
  const grid3 = (fg: number[]) => unitRows(Array.from({ length: 9 }, (_, p) => (fg.includes(p) ? F : B)).flat(), 9, 2);

  it('keeps the k largest, largest first, lower index on ties', () => {
    expect(topK([0.1, 0.9, 0.5, 0.9, 0.2], 3)).toEqual([1, 3, 2]);
    expect(topK([1, 2], 5)).toEqual([1, 0]);
  });

  it('carries a 2×2 object from the top-left to the bottom-right of a 3×3 grid (J = 1)', () => {
    // Source object on patches 0,1,3,4; target object on 4,5,7,8. A target object token's 5
    // nearest: the 4 source object tokens (cos 1) + 1 background (cos 0) → 4/5 (or ≈1 weighted).
    const sourceMask = [1, 1, 0, 1, 1, 0, 0, 0, 0];
    const truth = [false, false, false, false, true, true, false, true, true];
    for (const tau of [0.1, Infinity]) {
      const pred = propagateMask(grid3([0, 1, 3, 4]), sourceMask, grid3([4, 5, 7, 8]), 2, { k: 5, tau });
      expect(pred).toEqual(truth);
      expect(iou(pred, truth)).toBe(1);
    }
    const unweighted = propagateLabels(grid3([0, 1, 3, 4]), sourceMask, grid3([4, 5, 7, 8]), 2, { k: 5, tau: Infinity });
    expect(unweighted[8]).toBeCloseTo(4 / 5, 12);
    expect(unweighted[0]).toBe(0);
  });

  it('carries a one-patch object only with similarity-weighted votes', () => {
    // Source object on patch 4 alone, target on patch 8. Majority of 5 can never be the object;
    // weighted: 1 / (1 + 4·e^(−1/0.1)) ≈ 0.99982.
    const sourceMask = [0, 0, 0, 0, 1, 0, 0, 0, 0];
    const truth = [0, 0, 0, 0, 0, 0, 0, 0, 1];
    const weighted = propagateLabels(grid3([4]), sourceMask, grid3([8]), 2, { k: 5 });
    expect(weighted[8]).toBeCloseTo(1 / (1 + 4 * Math.exp(-10)), 12);
    expect(iou(propagateMask(grid3([4]), sourceMask, grid3([8]), 2, { k: 5 }), truth)).toBe(1);
    expect(iou(propagateMask(grid3([4]), sourceMask, grid3([8]), 2, { k: 5, tau: Infinity }), truth)).toBe(0);
  });

  it('averages soft labels (patch coverage)', () => {
    // 4×4 pixels on a 2×2 grid: object id 7 covers 3 pixels of patch 0 and 1 of patch 3.
    const ids = [7, 7, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
    expect(Array.from(cellCoverage(wholeImageMap({ width: 4, height: 4 }, { rows: 2, cols: 2 }), ids, new Set([7])))).toEqual([0.75, 0, 0, 0.25]);
    // Every target token's one nearest neighbour is source token 0 → label 0.75.
    const src = unitRows([1, 0, 0, 1, 0, 1, 0, 1], 4, 2);
    expect(Array.from(propagateLabels(src, [0.75, 0, 0, 0.25], unitRows([1, 0.1], 1, 2), 2, { k: 1 }))).toEqual([0.75]);
  });
});

describe('boxes from similarity maps', () => {
  it('IoU of boxes', () => {
    expect(boxIou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(1 / 3, 12);
    expect(boxIou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(boxIou([0, 0, 10, 10], [10, 0, 20, 10])).toBe(0);
    expect(boxIou([0, 0, 4, 4], [1, 1, 3, 3])).toBe(0.25);
    expect(boxIou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });

  it('thresholds at mean + std and keeps the peak component', () => {
    // mean 0.3222, std 0.4565 → threshold 0.7787: patches 0 (0.9), 7 (1), 8 (1) pass; 0 is not
    // 4-connected to the peak (7), so the region is {7, 8}.
    const sims = [0.9, 0, 0, 0, 0, 0, 0, 1, 1];
    const grid = { rows: 3, cols: 3 };
    const region = regionFromSimilarity(sims, grid);
    expect(region.flatMap((r, p) => (r ? [p] : []))).toEqual([7, 8]);
    expect(boxOfRegion(region, wholeImageMap({ width: 30, height: 60 }, grid))).toEqual([10, 40, 30, 60]);
    expect(boxFromSimilarity(sims, wholeImageMap({ width: 30, height: 30 }, grid))).toEqual([10, 20, 30, 30]);
    expect(boxOfRegion([0, 0, 0, 0], wholeImageMap({ width: 2, height: 2 }, { rows: 2, cols: 2 }))).toBeNull();
  });

  it('always keeps the peak, even when mean + std is above it; a flat map is the whole image', () => {
    // [1, 1, 1, 0]: mean 0.75, std 0.433 → 1.183 > max: threshold capped at 1 → patches 0, 1, 2.
    expect(regionFromSimilarity([1, 1, 1, 0], { rows: 2, cols: 2 })).toEqual([true, true, true, false]);
    expect(boxFromSimilarity([0.2, 0.2, 0.2, 0.2], wholeImageMap({ width: 8, height: 8 }, { rows: 2, cols: 2 }))).toEqual([0, 0, 8, 8]);
    expect(() => regionFromSimilarity([1, 2, 3], { rows: 2, cols: 2 })).toThrow(/3 values for a 2×2 grid/);
  });
});

describe('few-shot segmentation (linear token classifier, mIoU on held-out items)', () => {
  // 6 items × 4 patches × 3 features: feature 0 is the foreground indicator, features 1–2 are noise.
  const truths = [
    [1, 0, 0, 0],
    [0, 1, 1, 0],
    [0, 0, 0, 1],
    [1, 1, 0, 0],
    [0, 1, 0, 1],
    [1, 0, 1, 1],
  ];
  let r = 0.37;
  const noise = () => (r = (r * 9301 + 0.49297) % 1) - 0.5;
  const items = truths.map((t) => ({ x: Float32Array.from(t.flatMap((f) => [f, noise(), noise()])), truth: t.map(Boolean) }));

  it('segments held-out items exactly when a feature is the foreground indicator; shuffled training labels do worse', () => {
    const res = fewShotSegmentation(items, 3, 3, { seed: 1 })!;
    expect(res.items).toBe(3);
    expect(res.miou).toBe(1);
    expect(res.control).toBeGreaterThanOrEqual(0);
    expect(res.control).toBeLessThan(0.75);
  });

  it('trains only on the first `shots` items: labels of held-out items do not matter, and no held-out item means no score', () => {
    // Flip the held-out truths: the classifier (trained on items 0–2) still predicts feature 0, so IoU 0 there.
    const flipped = items.map((it, i) => (i < 3 ? it : { ...it, truth: it.truth.map((b) => !b) }));
    expect(fewShotSegmentation(flipped, 3, 3, { seed: 1 })!.miou).toBe(0);
    expect(fewShotSegmentation(items, 3, 6)).toBeNull();
    expect(() => fewShotSegmentation([{ x: new Float32Array(5), truth: [true, false] }, items[0]!], 3, 1)).toThrow(/5 features for 2 patches/);
  });
});
