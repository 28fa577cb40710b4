/** label-range.ts on hand-computed cases: pixel coordinates, x1/y1 exclusive, nothing clamped. */
import { describe, expect, it } from 'vitest';
import type { Label } from '../../src-shared/dataset/format.ts';
import { labelRangeProblem } from '../../src-shared/dataset/label-range.ts';

const dims = (i: number) => (i === 0 ? { width: 10, height: 5 } : i === 1 ? { width: 3, height: 3 } : undefined);
const check = (label: Label) => labelRangeProblem(label, dims, 2);

describe('labelRangeProblem', () => {
  it('accepts points on pixels and boxes up to the far edge', () => {
    expect(check({ kind: 'point', image: 0, at: [0, 0] })).toBeNull();
    expect(check({ kind: 'point', image: 0, at: [9.99, 4.99] })).toBeNull();
    expect(check({ kind: 'box', image: 0, box: [0, 0, 10, 5] })).toBeNull();
    expect(check({ kind: 'pointPair', a: { image: 0, at: [9, 4] }, b: { image: 1, at: [2, 2] } })).toBeNull();
    expect(check({ kind: 'mask', image: 1, file: 'm.png', polygons: [[[0, 0], [3, 0], [3, 3]]] })).toBeNull();
    expect(check({ kind: 'class', value: 'x' })).toBeNull();
  });

  it('refuses the first pixel past each edge', () => {
    expect(check({ kind: 'point', image: 0, at: [10, 0] })).toMatch(/\(10, 0\) lies outside the 10×5 image/);
    expect(check({ kind: 'point', image: 0, at: [0, 5] })).toMatch(/outside/);
    expect(check({ kind: 'point', image: 0, at: [-0.01, 0] })).toMatch(/outside/);
    expect(check({ kind: 'box', image: 0, box: [0, 0, 10.5, 5] })).toMatch(/leaves the 10×5 image/);
    expect(check({ kind: 'box', image: 0, box: [0, -1, 4, 5] })).toMatch(/leaves/);
    expect(check({ kind: 'box', image: 0, box: [3, 0, 3, 5] })).toMatch(/empty or inverted/);
    expect(check({ kind: 'pointPair', a: { image: 0, at: [9, 4] }, b: { image: 1, at: [3, 2] } })).toMatch(/point b on image #1 \(3, 2\) lies outside the 3×3 image/);
    expect(check({ kind: 'mask', image: 1, file: 'm.png', polygons: [[[0, 0], [3.5, 0], [3, 3]]] })).toMatch(/polygon vertex \(3.50, 0\)/);
  });

  it('refuses images the item does not have', () => {
    expect(check({ kind: 'point', image: 2, at: [0, 0] })).toMatch(/image #2 does not exist \(the item has 2 images\)/);
    expect(labelRangeProblem({ kind: 'box', image: 1, box: [0, 0, 1, 1] }, dims, 1)).toMatch(/the item has 1 image\)/);
  });
});
