/** Mask outlines for the Label view's default overlay: only edge pixels are drawn, hand-checked. */
import { describe, expect, it } from 'vitest';
import { instanceColour, outlineOf, outlineRgba } from '../../src-renderer/src/components/overlay.ts';
import { nameField } from '../../src-renderer/src/views/label/mask-edit.ts';

const grid = (rows: string[]) => rows.flatMap((r) => [...r].map(Number));

describe('outlineOf', () => {
  it('keeps a filled square\'s ring and drops its interior', () => {
    const ids = grid(['000000', '011110', '011110', '011110', '011110', '000000']);
    expect(outlineOf(ids, 6, 6)).toEqual(Uint8Array.from(grid(['000000', '011110', '010010', '010010', '011110', '000000'])));
  });

  it('draws the image border where an instance touches it, and where two instances meet', () => {
    // Two instances side by side filling a 4×3 image: every pixel is on the border or next to the other id.
    const ids = grid(['1122', '1122', '1122']);
    expect(Array.from(outlineOf(ids, 4, 3))).toEqual(grid(['1111', '1111', '1111']));
    // A 5×5 instance filling the image: the ring of the image, centre 3×3 untouched.
    const full = new Array<number>(25).fill(3);
    expect(Array.from(outlineOf(full, 5, 5))).toEqual(grid(['11111', '10001', '10001', '10001', '11111']));
  });

  it('colours edge pixels by instance, opaque, and leaves the rest transparent', () => {
    const ids = grid(['000', '020', '000']);
    const rgba = outlineRgba(ids, 3, 3);
    expect(Array.from(rgba.slice(16, 20))).toEqual([...instanceColour(2), 255]);
    expect(Array.from(rgba).filter((_, i) => i % 4 === 3 && i !== 19).every((a) => a === 0)).toBe(true);
  });
});

describe('label name fields', () => {
  it('gives each tool its own field, the two mask tools one between them', () => {
    expect(['point', 'pair', 'box', 'class', 'brush', 'polygon'].map((t) => nameField(t as Parameters<typeof nameField>[0]))).toEqual(['point', 'pair', 'box', 'class', 'mask', 'mask']);
  });
});
