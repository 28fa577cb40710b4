import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { addToClassIoU, classIoUAccumulator, classIoUResult, classMeanIoU, cosegmentationScores, referringIoU } from '../../../src-shared/metrics/miou.ts';

// Reference: FCN fast_hist confusion matrix / LAVT mIoU & oIoU in numpy (tools/metric-references/segmentation_pck_reference.py).
const ref = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/metric-references/segmentation-pck.json'), 'utf8')) as {
  classIoU: { numClasses: number; ignoreIndex: number; images: { truth: number[]; predicted: number[] }[]; perClass: (number | null)[]; mIoU: number };
  referring: { images: { truth: number[]; predicted: number[] }[]; perImage: number[]; meanIoU: number; cumulativeIoU: number; precisionAt: { threshold: number; precision: number }[] };
};

describe('class-wise mIoU', () => {
  it('sums I and U over the dataset before dividing (hand-computed)', () => {
    // Image 1: truth [0 0 1 1], pred [0 1 1 1]; image 2: truth [1 1 2 255], pred [1 0 2 0] (last pixel ignored).
    // Class 0: I = 1, U = |{0,1 of img1}| + |{1 of img2}| = 2 + 1 = 3 → 1/3.
    // Class 1: I = 2 + 1 = 3, U = 3 + 2 = 5 → 3/5. Class 2: I = 1, U = 1 → 1. Class 3: absent → null.
    const r = classMeanIoU(
      [
        { truth: [0, 0, 1, 1], predicted: [0, 1, 1, 1] },
        { truth: [1, 1, 2, 255], predicted: [1, 0, 2, 0] },
      ],
      4,
      { ignoreIndex: 255 },
    );
    expect(r.perClass[0]).toBeCloseTo(1 / 3, 15);
    expect(r.perClass[1]).toBeCloseTo(3 / 5, 15);
    expect(r.perClass[2]).toBe(1);
    expect(r.perClass[3]).toBeNull();
    expect(r.mIoU).toBeCloseTo((1 / 3 + 3 / 5 + 1) / 3, 15);
  });

  it('names the pixel with a class outside the range', () => {
    expect(() => classMeanIoU([{ truth: [0, 7], predicted: [0, 0] }], 3)).toThrow(/truth pixel 1 has class 7/);
  });

  it('matches the FCN confusion-matrix computation (a class predicted but never true scores 0 and counts)', () => {
    const acc = classIoUAccumulator(ref.classIoU.numClasses, { ignoreIndex: ref.classIoU.ignoreIndex });
    ref.classIoU.images.forEach((im) => addToClassIoU(acc, im.truth, im.predicted));
    const r = classIoUResult(acc);
    r.perClass.forEach((v, c) => {
      const want = ref.classIoU.perClass[c];
      if (want === null) expect(v).toBeNull();
      else expect(Math.abs(v! - want!)).toBeLessThanOrEqual(1e-15);
    });
    expect(Math.abs(r.mIoU - ref.classIoU.mIoU)).toBeLessThanOrEqual(1e-15);
  });
});

describe('referring segmentation IoU', () => {
  it('mean of per-image IoU vs cumulative ΣI/ΣU (hand-computed)', () => {
    // Image 1: I = 1, U = 2; image 2: I = 3, U = 3 → mIoU = (0.5 + 1)/2, cIoU = 4/5.
    const r = referringIoU([
      { truth: [1, 1, 0], predicted: [1, 0, 0] },
      { truth: [1, 1, 1], predicted: [1, 1, 1] },
    ]);
    expect(r.meanIoU).toBe(0.75);
    expect(r.cumulativeIoU).toBeCloseTo(0.8, 15);
    expect(r.precisionAt.find((p) => p.threshold === 0.5)!.precision).toBe(0.5);
    expect(referringIoU([{ truth: [0], predicted: [0] }], { emptyEmpty: 0 }).meanIoU).toBe(0);
  });

  it('matches LAVT-style mIoU / oIoU computed in numpy', () => {
    const r = referringIoU(ref.referring.images);
    r.perImage.forEach((v, i) => expect(Math.abs(v - ref.referring.perImage[i]!)).toBeLessThanOrEqual(1e-15));
    expect(Math.abs(r.meanIoU - ref.referring.meanIoU)).toBeLessThanOrEqual(1e-15);
    expect(Math.abs(r.cumulativeIoU - ref.referring.cumulativeIoU)).toBeLessThanOrEqual(1e-15);
    expect(r.precisionAt).toEqual(ref.referring.precisionAt);
  });
});

describe('co-segmentation J and P', () => {
  it('averages per image within a class, then over classes (hand-computed)', () => {
    const r = cosegmentationScores([
      { className: 'cat', truth: [1, 1, 0, 0], predicted: [1, 0, 0, 0] }, // J = 1/2, P = 3/4
      { className: 'cat', truth: [1, 1, 0, 0], predicted: [1, 1, 0, 0] }, // J = 1, P = 1
      { className: 'car', truth: [0, 1, 1, 1], predicted: [1, 1, 0, 0] }, // J = 1/4, P = 1/4
    ]);
    expect(r.perClass).toEqual([
      { name: 'cat', jaccard: 0.75, precision: 0.875, images: 2 },
      { name: 'car', jaccard: 0.25, precision: 0.25, images: 1 },
    ]);
    expect(r.jaccard).toBe(0.5);
    expect(r.precision).toBe(0.5625);
  });
});
