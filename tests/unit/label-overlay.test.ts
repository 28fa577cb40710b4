/** Overlay pixels: instance colours for masks, the colour map for heatmaps, transparency where nothing is drawn. */
import { describe, expect, it } from 'vitest';
import { heatmapRgba, instanceColour, maskRgba } from '../../src-renderer/src/components/overlay.ts';
import { viridis } from '../../src-renderer/src/scene/colormap.ts';

const px = (rgba: Uint8ClampedArray, i: number) => Array.from(rgba.subarray(i * 4, i * 4 + 4));

describe('maskRgba', () => {
  it('colours each instance id, leaves background (0) transparent', () => {
    const rgba = maskRgba(Uint8Array.from([0, 1, 2, 1, 13]));
    expect(px(rgba, 0)).toEqual([0, 0, 0, 0]);
    expect(px(rgba, 1)).toEqual([...instanceColour(1), 255]);
    expect(px(rgba, 3)).toEqual(px(rgba, 1));
    expect(px(rgba, 2)).toEqual([...instanceColour(2), 255]);
    expect(instanceColour(1)).not.toEqual(instanceColour(2));
    expect(instanceColour(13)).toEqual(instanceColour(1)); // twelve colours, cycled
  });

  it('draws only the ids a colour function accepts, in its colour', () => {
    const rgba = maskRgba(Int32Array.from([300, 7, 0]), (id) => (id === 300 ? [9, 8, 7] : null));
    expect([px(rgba, 0), px(rgba, 1), px(rgba, 2)]).toEqual([[9, 8, 7, 255], [0, 0, 0, 0], [0, 0, 0, 0]]);
  });
});

describe('heatmapRgba', () => {
  it('maps min → bottom and max → top of viridis, linearly between', () => {
    const rgba = heatmapRgba(Float32Array.from([2, 4, 3]));
    expect(px(rgba, 0)).toEqual([68, 1, 84, 255]);
    expect(px(rgba, 1)).toEqual([253, 231, 37, 255]);
    expect(px(rgba, 2)).toEqual([...viridis(0.5), 255]);
  });

  it('honours a fixed range (clamped), a constant map and clearBelow', () => {
    expect(px(heatmapRgba([0.5, 2], { lo: 0, hi: 1 }), 1)).toEqual([253, 231, 37, 255]);
    expect(px(heatmapRgba([0.5], { lo: 0, hi: 1 }), 0)).toEqual([...viridis(0.5), 255]);
    expect(px(heatmapRgba([5, 5]), 1)).toEqual([68, 1, 84, 255]);
    const cleared = heatmapRgba([0, 1, 10], { clearBelow: 0.5 });
    expect([px(cleared, 0)[3], px(cleared, 1)[3], px(cleared, 2)[3]]).toEqual([0, 0, 255]);
  });
});
