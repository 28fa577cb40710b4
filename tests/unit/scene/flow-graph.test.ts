import type { BufferGeometry, Material, Object3D } from 'three';
import { describe, expect, it } from 'vitest';
import { layoutTokens, selectEdges, syntheticFlow, traceFlow } from '../../../src-renderer/src/scene/flow-data.ts';
import { FlowGraph } from '../../../src-renderer/src/scene/flow-graph.ts';

type Drawn = Object3D & { geometry: BufferGeometry; material: Material };

function build() {
  const { source, tokens } = syntheticFlow({ layers: 3, heads: 2, grid: 4, textBefore: 2, textAfter: 3 });
  const layout = layoutTokens(source.seq, tokens);
  const edges = selectEdges(source, { layerFrom: 0, layerTo: 2, head: 'mean', threshold: 0.1, maxEdges: 1000 });
  const g = new FlowGraph();
  g.build(layout, [0, 3], edges, 0.1);
  return { g, edges, seq: source.seq };
}

const vertices = (o: Object3D) => (o as Drawn).geometry.getAttribute('position')?.count ?? 0;

describe('flow graph (three objects, no renderer)', () => {
  it('holds one point per token per plane and two vertices per edge, all in single geometries', () => {
    const { g, edges, seq } = build();
    const [frames, lines, points] = g.group.children;
    expect(vertices(points!)).toBe(4 * seq);
    expect(vertices(lines!)).toBe(2 * edges.count);
    expect(vertices(frames!)).toBe(4 * 2 * 4);
    // An edge of layer l joins plane l (z = -l·gap) to plane l + 1.
    const p = (lines as Drawn).geometry.getAttribute('position')!;
    const gap = g.spacing.planeGap;
    expect(p.getZ(0)).toBeCloseTo(-edges.layer[0]! * gap);
    expect(p.getZ(1)).toBeCloseTo(-(edges.layer[0]! + 1) * gap);
  });

  it('draws a trace as its own edges and nodes, and clears it', () => {
    const { g, edges, seq } = build();
    const trace = traceFlow(edges, seq, 3, seq - 1, 'backward');
    expect(trace.edges.length).toBeGreaterThan(0);
    g.setTrace(trace);
    const [, , , traceEdges, traceNodes] = g.group.children;
    expect(vertices(traceEdges!)).toBe(2 * trace.edges.length);
    expect(vertices(traceNodes!)).toBe(trace.nodes.size);
    g.setTrace(null);
    expect(vertices(g.group.children[3]!)).toBe(0);
  });

  it('frees every geometry and material on dispose, and replaced geometries on rebuild', () => {
    const { g } = build();
    const disposed: string[] = [];
    const drawn = g.group.children as Drawn[];
    const old = drawn[1]!.geometry;
    old.addEventListener('dispose', () => disposed.push('replaced'));
    g.setTrace(null); // rebuilds only the trace objects
    const { source, tokens } = syntheticFlow({ layers: 3, heads: 2, grid: 4, textBefore: 2, textAfter: 3 });
    g.build(layoutTokens(source.seq, tokens), [0, 1], selectEdges(source, { layerFrom: 0, layerTo: 0, head: 0, threshold: 0.2, maxEdges: 10 }), 0.2);
    expect(disposed).toEqual(['replaced']);
    for (const o of drawn) {
      o.geometry.addEventListener('dispose', () => disposed.push('geometry'));
      o.material.addEventListener('dispose', () => disposed.push('material'));
    }
    g.dispose();
    expect(disposed.filter((d) => d === 'geometry')).toHaveLength(5);
    expect(disposed.filter((d) => d === 'material')).toHaveLength(5);
    expect(g.group.children).toHaveLength(0);
  });
});
