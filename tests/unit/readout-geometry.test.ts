/** Where a readout reads: the candidates of a correspondence item are found in whichever image holds them. */
import { describe, expect, it } from 'vitest';
import type { DatasetItem } from '../../src-shared/dataset/format.ts';
import { geometryOf } from '../../src-main/experiments/hidden-in-plain-sight/readout-geometry.ts';

const point = (image: number, at: [number, number], name: string) => ({ kind: 'point' as const, image, at, name });
const item = (images: number, labels: DatasetItem['labels']): DatasetItem =>
  ({ id: 'x', images: Array.from({ length: images }, (_, i) => `f${i}.png`), prompt: 'which ?', choices: ['a', 'b'], answer: 'b', labels }) as DatasetItem;

describe('geometryOf', () => {
  it('two-image correspondence: reference in image 0, candidates in image 1', () => {
    const g = geometryOf(item(2, [point(0, [1, 2], 'point'), point(1, [3, 4], 'a'), point(1, [5, 6], 'b')]));
    expect(g).toEqual({ kind: 'match', reference: { image: 0, at: [1, 2], name: 'point' }, candidates: [{ image: 1, at: [3, 4], name: 'a' }, { image: 1, at: [5, 6], name: 'b' }] });
  });

  it('temporal correspondence: the candidates in the last frame (was read as a single point, at chance)', () => {
    const g = geometryOf(item(4, [point(0, [1, 2], 'point'), point(3, [3, 4], 'a'), point(3, [5, 6], 'b')]));
    expect(g.kind).toBe('match');
    expect(g.kind === 'match' && g.candidates.map((c) => c.image)).toEqual([3, 3]);
  });

  it('candidates split over several images are not a correspondence', () => {
    expect(geometryOf(item(3, [point(0, [1, 2], 'point'), point(1, [3, 4], 'a'), point(2, [5, 6], 'b')])).kind).toBe('points');
  });
});

describe('geometryOf on CV-Bench 3D items (objects marked by boxes in meta.bbox)', () => {
  const cv = (bbox: unknown, choices = ['lamp', 'sofa']): DatasetItem => ({ id: 'c', images: ['i.jpg'], prompt: 'which is closer?', choices, answer: 'lamp', labels: [], meta: { task: 'Depth', bbox } }) as DatasetItem;

  it('Depth: one spot per choice at its box centre', () => {
    expect(geometryOf(cv([[2.5, 3, 10.25, 12], [12, 4.5, 26, 18.75]]))).toEqual({
      kind: 'points',
      spots: [{ image: 0, at: [6.375, 7.5], name: 'lamp' }, { image: 0, at: [19, 11.625], name: 'sofa' }],
    });
  });

  it('Distance: the third box is the reference object', () => {
    const g = geometryOf(cv([[1, 1, 8, 9], [9.5, 2, 20, 16], [21, 3, 27, 10]], ['table', 'bed']));
    expect(g.kind === 'points' && g.spots.map((s) => [s.name, ...s.at])).toEqual([['table', 4.5, 5], ['bed', 14.75, 9], ['reference', 24, 6.5]]);
  });

  it('no usable boxes (2D items: bbox null; degenerate boxes): the whole image', () => {
    expect(geometryOf(cv(null)).kind).toBe('pooled');
    expect(geometryOf(cv([[5, 5, 5, 9], [1, 1, 2, 2]])).kind).toBe('pooled');
    expect(geometryOf(cv([[1, 1, 2, 2]])).kind).toBe('pooled');
  });
});
