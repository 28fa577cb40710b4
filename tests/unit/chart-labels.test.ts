/** Edge labels of the stage curve: apart by at least the gap, as close to their lines as that allows. */
import { describe, expect, it } from 'vitest';
import { spreadLabels } from '../../src-renderer/src/lib/chart-labels.ts';

describe('spreadLabels', () => {
  it('leaves labels that are far enough apart where they are', () => {
    expect(spreadLabels([50, 10, 100], 12, 0, 200)).toEqual([50, 10, 100]);
  });

  it('pushes the lower of two close labels down by the gap (blind and chance at the same accuracy)', () => {
    // answer at 40, blind and chance both at 120 (the overlapping case): chance goes 12 below blind.
    expect(spreadLabels([40, 120, 120], 12, 0, 200)).toEqual([40, 120, 132]);
    // Three within 5 px: a stack 12 apart from the first.
    expect(spreadLabels([100, 103, 105], 12, 0, 200)).toEqual([100, 112, 124]);
  });

  it('pushes the stack back up from the bottom edge, and down from the top', () => {
    expect(spreadLabels([195, 198, 199], 12, 0, 200)).toEqual([176, 188, 200]);
    expect(spreadLabels([-5, 2], 12, 0, 200)).toEqual([0, 12]);
  });

  it('every pair ends at least the gap apart when there is room', () => {
    const ys = [70, 71, 72, 90, 91, 30];
    const out = [...spreadLabels(ys, 11, 0, 260)].sort((a, b) => a - b);
    for (let k = 1; k < out.length; k++) expect(out[k]! - out[k - 1]!).toBeGreaterThanOrEqual(11);
  });
});
