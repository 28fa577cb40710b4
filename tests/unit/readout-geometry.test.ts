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
