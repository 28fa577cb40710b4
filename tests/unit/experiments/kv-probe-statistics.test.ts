/**
 * The K/V probes' building blocks on hand-computed cases: figures from summed per-item counts
 * (value, bootstrap interval, permutation null mean and p), bilinear upsampling of a token map
 * to pixels (PyTorch align_corners=False values), and DIFT label propagation on a 1×2 grid.
 */
import { describe, expect, it } from 'vitest';
import { argmaxChannels, propagateVariants } from '../../../src-main/experiments/inside-the-llm/label-propagation.ts';
import { IGNORED_PIXEL, iouStat } from '../../../src-main/experiments/inside-the-llm/probes.ts';
import { bilinearAtPixels, bilinearTable, cellsToPixels, pixelCells } from '../../../src-main/experiments/inside-the-llm/pixels.ts';
import { type ItemStat, classMeanIoU, davisJandF, figure, meanOf, pairedDifference } from '../../../src-main/experiments/inside-the-llm/statistics.ts';
import { clipViewMap, wholeImageMap } from '../../../src-shared/vision/pixel-map.ts';

const O = { permutations: 20, resamples: 500, seed: 0 };

describe('figures from summed counts', () => {
  // PCK per keypoint: item A 1 of 2 keypoints, item B 3 of 4 → 4/6 (not the mean of ratios 0.625).
  const items: ItemStat[] = [
    { stat: { x: 1, n: 2 }, nulls: Array.from({ length: 20 }, (_, s) => (s < 10 ? { x: 0, n: 2 } : { x: 2, n: 2 })) },
    { stat: { x: 3, n: 4 }, nulls: Array.from({ length: 20 }, (_, s) => (s < 10 ? { x: 0, n: 4 } : { x: 4, n: 4 })) },
  ];
  it('value = finish(Σ), control = mean of permutation figures, p = (1 + #null ≥ value)/(1 + S)', () => {
    const f = figure(items, meanOf(), O);
    expect(f.value).toBeCloseTo(4 / 6, 15);
    expect(f.control).toBeCloseTo(0.5, 15); // ten nulls at 0, ten at 1
    expect(f.p).toBeCloseTo(11 / 21, 15);
    expect(f.permutations).toBe(20);
    // Resamples of two items can only be {A,A} = 0.5, {A,B} = 4/6, {B,B} = 0.75.
    expect(f.low).toBeGreaterThanOrEqual(0.5);
    expect(f.high).toBeLessThanOrEqual(0.75);
    expect(f.low! <= f.value && f.value <= f.high!).toBe(true);
  });
  it('refuses fewer than 20 permutations', () => {
    expect(() => figure([{ stat: { x: 1, n: 1 }, nulls: [{ x: 0, n: 1 }] }], meanOf(), O)).toThrow(/20 permutations/);
  });
  it('class-wise mIoU and DAVIS J&F from sums', () => {
    expect(classMeanIoU({ 'I:cat': 1, 'U:cat': 2, 'I:dog': 3, 'U:dog': 3, 'U:none': 0 })).toBeCloseTo(0.75, 15);
    expect(davisJandF({ J: 1.2, F: 0.8, objects: 2 })).toBeCloseTo(0.5, 15);
  });
  it('paired difference of identical runs is exactly 0 with a [0, 0] interval', () => {
    const s = items.map((i) => i.stat);
    expect(pairedDifference(s, s, meanOf(), O)).toEqual({ delta: 0, low: 0, high: 0 });
    const d = pairedDifference(s, [{ x: 2, n: 2 }, { x: 4, n: 4 }], meanOf(), O);
    expect(d.delta).toBeCloseTo(1 - 4 / 6, 15);
  });
});

describe('IoU counts', () => {
  it('ignored truth pixels (a label\'s ignoreIds, e.g. ImageNet-S 1000) count in neither intersection nor union', () => {
    // pixel: 0 both, 1 predicted on an ignored pixel, 2 neither, 3 predicted only, 4 truth only
    expect(iouStat([1, 1, 0, 1, 0], [1, IGNORED_PIXEL, 0, 0, 1], 'dog')).toEqual({ 'I:dog': 1, 'U:dog': 3 });
    expect(iouStat([1, 1, 0, 1, 0], [1, 1, 0, 0, 1], 'dog')).toEqual({ 'I:dog': 2, 'U:dog': 4 });
  });
});

describe('token maps to pixels', () => {
  it('bilinear, align_corners=False: a 2×2 map on a 4×4 image is torch.nn.functional.interpolate', () => {
    const t = bilinearTable(wholeImageMap({ width: 4, height: 4 }, { rows: 2, cols: 2 }));
    // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode='bilinear', align_corners=False)
    const torch = [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3];
    Array.from(bilinearAtPixels([0, 1, 2, 3], t)).forEach((v, i) => expect(v).toBeCloseTo(torch[i]!, 12));
  });
  it('pixels the processor crops away are NaN (soft) and background (hard)', () => {
    // 8×4 image, shortest edge → 4, centre crop 4×4: columns 0-1 and 6-7 are cropped.
    const map = clipViewMap({ size: { shortest_edge: 4 }, do_center_crop: true, crop_size: { width: 4, height: 4 } }, { width: 8, height: 4 }, { rows: 2, cols: 2 });
    const soft = bilinearAtPixels([1, 1, 1, 1], bilinearTable(map));
    expect(Array.from(soft.slice(0, 8), (v) => (Number.isNaN(v) ? 'x' : v))).toEqual(['x', 'x', 1, 1, 1, 1, 'x', 'x']);
    expect(Array.from(pixelCells(map).slice(0, 8))).toEqual([-1, -1, 0, 0, 1, 1, -1, -1]);
    expect(Array.from(cellsToPixels([1, 1, 1, 1], pixelCells(map)).slice(0, 8))).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
  });
});

describe('DIFT label propagation', () => {
  // Grid 1×2. Frame 0: e1 at cell 0 (the object), e2 at cell 1. Frames 1 and 2: swapped.
  const e1 = [1, 0];
  const e2 = [0, 1];
  const frames = [[e1, e2], [e2, e1], [e2, e1]];
  const sims = (t: number, f: number) => Float64Array.from([0, 1].flatMap((q) => [0, 1].map((p) => frames[t]![q]![0]! * frames[f]![p]![0]! + frames[t]![q]![1]! * frames[f]![p]![1]!)));
  const first = Float64Array.from([0, 1, 1, 0]); // channel 0 (background) = [0, 1], channel 1 (object) = [1, 0]
  const id = Int32Array.from([0, 1]);

  it('top-1 follows the object to its new cell; ties at the k-th value are all kept', () => {
    const [observed] = propagateVariants(3, { rows: 1, cols: 2 }, sims, [[id, id, id]], first, 2, { topk: 1, temperature: 0.1, contextFrames: 1, neighbourhood: 0 });
    expect(Array.from(observed![0]!)).toEqual([1, 0, 0, 1]);
    // Frame 2 matches frame 0 and frame 1 equally (cos 1 both): each weighs ½, both say the same.
    expect(Array.from(observed![1]!)).toEqual([1, 0, 0, 1]);
  });
  it('top-2 weights are exp(cos/τ) normalised', () => {
    const [observed] = propagateVariants(2, { rows: 1, cols: 2 }, sims, [[id, id]], first, 2, { topk: 2, temperature: 1, contextFrames: 0, neighbourhood: 0 });
    // Frame 1 cell 0 (e2): frame-0 cell 0 (object) weighs e^0, cell 1 (background) e^1.
    expect(observed![0]![2]!).toBeCloseTo(1 / (1 + Math.E), 15);
    expect(observed![0]![0]!).toBeCloseTo(Math.E / (1 + Math.E), 15);
  });
  it('a permuted variant reads the tokens at their permuted positions', () => {
    const swap = Int32Array.from([1, 0]);
    const [, shuffled] = propagateVariants(2, { rows: 1, cols: 2 }, sims, [[id, id], [id, swap]], first, 2, { topk: 1, temperature: 0.1, contextFrames: 0, neighbourhood: 0 });
    // Frame 1 with its tokens swapped back is frame 0 itself: the object stays at cell 0.
    expect(Array.from(shuffled![0]!)).toEqual([0, 1, 1, 0]);
  });
  it('norm_mask then argmax; NaN pixels are background', () => {
    // Channel 0 rescales [0.2, 0.4, 0.3] → [0, 1, 0.5]; channel 1 [0.3, 0.35, 0.3] → [0, 1, 0].
    expect(Array.from(argmaxChannels([Float64Array.from([0.2, 0.4, 0.3, NaN]), Float64Array.from([0.3, 0.35, 0.3, NaN])]))).toEqual([0, 0, 0, 0]);
    expect(Array.from(argmaxChannels([Float64Array.from([0.4, 0.2, 0.3]), Float64Array.from([0.1, 0.3, 0.25])]))).toEqual([0, 1, 1]);
  });
});
