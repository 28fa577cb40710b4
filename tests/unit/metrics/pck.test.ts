import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type BoundingBox, type Point, bboxThreshold, pckBbox, pckImage } from '../../../src-shared/metrics/pck.ts';

// Reference: DHPF / GeoAware-SC formulas in numpy (tools/metric-references/segmentation_pck_reference.py).
interface RefPair { predicted: Point[]; truth: Point[]; visible: boolean[]; targetBox: BoundingBox }
const ref = (JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/metric-references/segmentation-pck.json'), 'utf8')) as {
  pck: { pairs: RefPair[]; results: { alpha: number; perImage: number; perKeypoint: number; correct: number; visible: number }[] };
}).pck;

const kp = (predicted: Point, truth: Point, visible = true) => ({ predicted, truth, visible });

describe('PCK@α (hand-computed)', () => {
  // Pair 1: target box 100×50 → unit 100; α = 0.1 → 10 px. Distances 5 (ok), 10 (tie), 20 (miss).
  // Pair 2: box 40×80 → unit 80 → 8 px. Distances 3 (ok); a 4th keypoint is invisible.
  const pairs = [
    { targetBox: [0, 0, 100, 50] as BoundingBox, keypoints: [kp([3, 4], [0, 0]), kp([16, 8], [10, 0]), kp([50, 20], [50, 0])] },
    { targetBox: [10, 10, 50, 90] as BoundingBox, keypoints: [kp([20, 23], [20, 20]), kp([0, 0], [90, 90], false)] },
  ];

  it('threshold unit is max(x2 − x1, y2 − y1) of the target box', () => {
    expect(bboxThreshold([10, 10, 50, 90])).toBe(80);
    expect(() => bboxThreshold([5, 0, 1, 1])).toThrow(/x2 < x1/);
  });

  it('per keypoint pools all visible keypoints; per image averages each pair’s fraction', () => {
    const k = pckBbox(pairs, 0.1);
    expect([k.correct, k.visible, k.pck]).toEqual([3, 4, 0.75]);
    const i = pckBbox(pairs, 0.1, { aggregation: 'per-image' });
    expect(i.pck).toBeCloseTo((2 / 3 + 1) / 2, 15);
    expect(i.perPair).toEqual([2 / 3, 1]);
  });

  it('a distance equal to the threshold is correct (≤, SPair/DHPF) unless inclusive is off (<, GeoAware-SC)', () => {
    expect(pckBbox(pairs, 0.1, { inclusive: false }).correct).toBe(2);
  });

  it('pckImage normalises by the target image size instead', () => {
    // Image 200×100 → unit 200, α = 0.1 → 20 px: the 20 px miss is now a tie → correct.
    const r = pckImage(pairs.map((p) => ({ ...p, targetSize: { width: 200, height: 100 } })), 0.1);
    expect([r.correct, r.visible]).toEqual([4, 4]);
  });

  it('pairs with nothing visible count in neither aggregation', () => {
    const r = pckBbox([...pairs, { targetBox: [0, 0, 10, 10], keypoints: [kp([0, 0], [0, 0], false)] }], 0.1, { aggregation: 'per-image' });
    expect([r.pairsScored, r.pairsSkipped]).toEqual([2, 1]);
    expect(r.pck).toBeCloseTo((2 / 3 + 1) / 2, 15);
  });
});

describe('PCK against the DHPF / GeoAware-SC formulas', () => {
  const pairs = ref.pairs.map((p) => ({ targetBox: p.targetBox, keypoints: p.predicted.map((pr, i) => kp(pr, p.truth[i]!, p.visible[i]!)) }));
  it.each(ref.results.map((r) => [r.alpha, r] as const))('α = %s', (alpha, r) => {
    const k = pckBbox(pairs, alpha);
    expect([k.correct, k.visible]).toEqual([r.correct, r.visible]);
    expect(Math.abs(k.pck - r.perKeypoint)).toBeLessThanOrEqual(1e-15);
    expect(Math.abs(pckBbox(pairs, alpha, { aggregation: 'per-image' }).pck - r.perImage)).toBeLessThanOrEqual(1e-15);
  });
});
