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
    // An edge of layer l joins plane l (z = -l·gap) to plane l + 1; vertices 2i, 2i+1 are edge edgeOrder[i].
    const p = (lines as Drawn).geometry.getAttribute('position')!;
    const gap = g.spacing.planeGap;
    for (let i = 0; i < edges.count; i++) {
      const e = g.edgeOrder[i]!;
      expect(p.getZ(2 * i)).toBeCloseTo(-edges.layer[e]! * gap);
      expect(p.getZ(2 * i + 1)).toBeCloseTo(-(edges.layer[e]! + 1) * gap);
      expect(p.getX(2 * i)).toBeCloseTo(g.position(edges.layer[e]!, edges.from[e]!).x);
      expect(p.getX(2 * i + 1)).toBeCloseTo(g.position(edges.layer[e]! + 1, edges.to[e]!).x);
    }
  });

  it('stores edges strongest first, so the first N drawn are the N strongest (a draw range, no rebuild)', () => {
    const { g, edges } = build();
    const order = Array.from(g.edgeOrder);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: edges.count }, (_, i) => i));
    for (let i = 1; i < order.length; i++) expect(edges.weight[order[i]!]!).toBeLessThanOrEqual(edges.weight[order[i - 1]!]!);
    const lines = g.group.children[1] as Drawn;
    const buffer = lines.geometry.getAttribute('position');
    g.setDetail(5, 0);
    expect(g.drawnEdges).toBe(5);
    expect(lines.geometry.drawRange.count).toBe(10);
    expect(lines.geometry.getAttribute('position')).toBe(buffer);
    // The 5 drawn are the 5 heaviest weights of the set.
    const top = Array.from(edges.weight).sort((a, b) => b - a).slice(0, 5);
    expect(order.slice(0, 5).map((e) => edges.weight[e])).toEqual(top);
    g.setDetail(Infinity, Infinity);
    expect(g.drawnEdges).toBe(edges.count);
    expect(g.drawnTokens).toBe(g.tokenCount);
  });

  it('stores tokens coarse lattice first on every plane, so a level is a prefix covering all planes', () => {
    const { g, seq } = build();
    const points = g.group.children[2] as Drawn;
    const pos = points.geometry.getAttribute('position')!;
    const { order, levelEnd } = g.tokenOrder;
    // Point k·planes + j is token order[k] on plane j (planes 0..3 shown).
    for (let k = 0; k < seq; k++)
      for (let j = 0; j < 4; j++) {
        const want = g.position(j, order[k]!);
        expect([pos.getX(k * 4 + j), pos.getY(k * 4 + j), pos.getZ(k * 4 + j)]).toEqual([want.x, want.y, want.z]);
      }
    g.setDetail(0, 0);
    expect(g.drawnTokens).toBe(levelEnd[0]! * 4);
    expect(g.drawnEdges).toBe(0);
    // Here the first text token sits at the layout's corner (minimum x and y): the coarsest lattice is not empty.
    expect(levelEnd[0]).toBeGreaterThan(0);
    expect(levelEnd[levelEnd.length - 1]).toBe(seq);
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
