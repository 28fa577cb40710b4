/** Attention-flow labels and legend colours: placement and overlap on hand-made layouts. */
import { describe, expect, it } from 'vitest';
import { layoutTokens } from '../../../src-renderer/src/scene/flow-data.ts';
import { outerCorner, planeLabel, tokenKindAnchors, visibleLabels } from '../../../src-renderer/src/scene/flow-labels.ts';
import { cssRgb, edgeColourAt, edgeScaleGradient } from '../../../src-renderer/src/scene/flow-colours.ts';
import { FlowGraph } from '../../../src-renderer/src/scene/flow-graph.ts';
import { selectEdges, syntheticFlow } from '../../../src-renderer/src/scene/flow-data.ts';

describe('flow labels', () => {
  it('names plane p as the input of layer p and the last plane as the last layer\'s output', () => {
    expect([0, 1, 2, 3, 4].map((p) => planeLabel(p, 4))).toEqual(['L0', 'L1', 'L2', 'L3', 'L3 out']);
  });

  it('anchors "image tokens" above the grid\'s top-left cell and "text tokens" above the first text row', () => {
    // 2 text, a 2×2 image at positions 2..5, 3 text: layoutTokens puts the image at x 0..1, rows y 0, −1
    // and the 5 text tokens in one row (16 per row) at y = −(2−1) − 2 = −3, x 0..4; then centres everything.
    const image = [0, 1, 2, 3].map((i) => ({ position: 2 + i, image: 0, tile: 0, row: Math.floor(i / 2), col: i % 2 }));
    const layout = layoutTokens(9, image);
    const anchors = tokenKindAnchors(layout);
    // Centring: x span 0..4 → shift −2; y span −3..0 → shift +1.5.
    expect(anchors).toEqual([
      { kind: 'image', x: -2, y: 0 + 1.5 + 1, count: 4 },
      { kind: 'text', x: -2, y: -3 + 1.5 + 1, count: 5 },
    ]);
    expect(tokenKindAnchors(layoutTokens(3, []))).toEqual([{ kind: 'text', x: expect.any(Number) as number, y: expect.any(Number) as number, count: 3 }]);
  });

  it('hides labels that would overlap one already shown, front first, and off-screen ones', () => {
    // Boxes 40 × 14: the second is 10 px below the first (overlaps), the third 20 px below (clear),
    // the fourth 30 px right of the third (overlaps), the fifth off-screen.
    const shown = visibleLabels([{ x: 0, y: 0 }, { x: 0, y: 10 }, { x: 0, y: 20 }, { x: 30, y: 20 }, null, { x: 50, y: 20 }], 40, 14);
    expect(shown).toEqual([true, false, true, false, false, true]);
  });
});

describe('flow colours', () => {
  it('scales viridis by strength: the threshold dark purple-blue at 30 %, the strongest edge full yellow', () => {
    // viridis(0.2) = stop 1.6 of 8 = (71,44,122) + 0.6·((59,81,139) − (71,44,122)) = (63.8, 66.2, 132.2) → rounded (64, 66, 132).
    expect(edgeColourAt(0).map((x) => Math.round(x * 255 * 1000) / 1000)).toEqual([64 * 0.3, 66 * 0.3, 132 * 0.3].map((x) => Math.round(x * 1000) / 1000));
    expect(cssRgb(edgeColourAt(1))).toBe('rgb(253 231 37)');
    const g = edgeScaleGradient(3);
    expect(g).toBe(`linear-gradient(90deg, ${cssRgb(edgeColourAt(0))} 0.0%, ${cssRgb(edgeColourAt(0.5))} 50.0%, rgb(253 231 37) 100.0%)`);
  });

  it('the graph reports the weight range its colours span and empties on clear', () => {
    const { source, tokens } = syntheticFlow({ layers: 2, heads: 2, grid: 3, textBefore: 2, textAfter: 2 });
    const layout = layoutTokens(source.seq, tokens);
    const edges = selectEdges(source, { layerFrom: 0, layerTo: 1, head: 'mean', threshold: 0.05, maxEdges: 1000 });
    const g = new FlowGraph();
    g.build(layout, [0, 2], edges, 0.05);
    expect(g.weightRange.lo).toBe(0.05);
    expect(g.weightRange.hi).toBe(Math.max(...edges.weight));
    expect(g.planeCorner(2).toArray()).toEqual([-(layout.width / 2 + 1), layout.height / 2 + 1, -2 * g.spacing.planeGap]);
    g.clear();
    expect(g.hasData).toBe(false);
    expect([g.edgeCount, g.tokenCount, g.drawnEdges]).toEqual([0, 0, 0]);
    for (const o of g.group.children as unknown as { geometry: { getAttribute(n: string): { count: number } } }[]) expect(o.geometry.getAttribute('position').count).toBe(0);
  });
});

describe('outerCorner', () => {
  it('picks the corner whose projections lie farthest from the centre, on average over planes', () => {
    const c = { x: 100, y: 100 };
    // Two planes: top-left corners 50 and 60 px away, top-right 80 and 90, bottom-right 10 and 10, bottom-left off-screen.
    const corners = [
      [{ x: 50, y: 100 }, { x: 40, y: 100 }],
      [{ x: 180, y: 100 }, { x: 190, y: 100 }],
      [{ x: 110, y: 100 }, { x: 100, y: 110 }],
      [null, null],
    ];
    expect(outerCorner(corners, c)).toBe(1);
    // Top-left wins once its planes are farther out.
    expect(outerCorner([[{ x: 0, y: 0 }, { x: 0, y: 0 }], ...corners.slice(1)], c)).toBe(0);
  });
});
