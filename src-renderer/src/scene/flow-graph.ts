/**
 * The three.js objects of the attention flow, without a renderer or DOM (so it is testable in
 * Node): one `Points` for every token on every shown plane, one `LineSegments` for every edge
 * (a single BufferGeometry, vertex-coloured by weight), plane frames, and a second pair of
 * objects for the traced flow. Rebuilt when the data or filters change, never per frame.
 *
 * Built for interaction-time level of detail: edges are stored strongest first and tokens coarse
 * lattice first (`flow-lod.ts`), so drawing fewer of either is a draw-range change (`setDetail`),
 * not a rebuild. Every object is static: matrices are computed once, never per frame.
 */
import * as THREE from 'three';
import { IMAGE_COLOUR, TEXT_COLOUR, TRACE_RGB, edgeColourAt } from './flow-colours.ts';
import type { EdgeSet, FlowLayout, Trace } from './flow-data.ts';
import { type TokenOrder, tokenOrder } from './flow-lod.ts';

const TRACE_COLOUR = new THREE.Color(...TRACE_RGB);

export interface GraphSpacing {
  /** World units per layout cell. */
  cell: number;
  /** World units between planes. */
  planeGap: number;
}

export class FlowGraph {
  readonly group = new THREE.Group();
  private readonly tokens: THREE.Points<THREE.BufferGeometry, THREE.PointsMaterial>;
  private readonly edges: THREE.LineSegments<THREE.BufferGeometry, THREE.LineBasicMaterial>;
  private readonly frames: THREE.LineSegments<THREE.BufferGeometry, THREE.LineBasicMaterial>;
  private readonly traceEdges: THREE.LineSegments<THREE.BufferGeometry, THREE.LineBasicMaterial>;
  private readonly traceNodes: THREE.Points<THREE.BufferGeometry, THREE.PointsMaterial>;
  private layout: FlowLayout | null = null;
  private edgeSet: EdgeSet | null = null;
  /** Edge indices (into the EdgeSet) in drawing order, strongest first: vertex 2i, 2i+1 is edge edgeOrder[i]. */
  edgeOrder = new Uint32Array(0);
  /** Tokens of one plane in drawing order (coarse lattice first); point k·nPlanes + j is token order[k] on plane p0 + j. */
  tokenOrder: TokenOrder = { order: new Uint32Array(0), levelEnd: [0] };
  spacing: GraphSpacing = { cell: 1, planeGap: 6 };
  /** Planes drawn: [first, last] inclusive. */
  planes: [number, number] = [0, 0];
  /** Weights the edge colours span: the threshold → the strongest edge drawn. */
  weightRange: { lo: number; hi: number } = { lo: 0, hi: 0 };

  constructor() {
    this.tokens = new THREE.Points(new THREE.BufferGeometry(), new THREE.PointsMaterial({ size: 4, sizeAttenuation: false, vertexColors: true }));
    const edgeMaterial = new THREE.LineBasicMaterial({ vertexColors: true, transparent: true, opacity: 0.85, blending: THREE.AdditiveBlending, depthWrite: false });
    this.edges = new THREE.LineSegments(new THREE.BufferGeometry(), edgeMaterial);
    this.frames = new THREE.LineSegments(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0x3a4050 }));
    this.traceEdges = new THREE.LineSegments(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: TRACE_COLOUR, depthTest: false, transparent: true }));
    this.traceNodes = new THREE.Points(new THREE.BufferGeometry(), new THREE.PointsMaterial({ size: 7, sizeAttenuation: false, color: TRACE_COLOUR, depthTest: false, transparent: true }));
    this.traceEdges.renderOrder = 2;
    this.traceNodes.renderOrder = 3;
    this.group.matrixAutoUpdate = false;
    for (const o of [this.frames, this.edges, this.tokens, this.traceEdges, this.traceNodes]) {
      o.frustumCulled = false; // the stack is always in view; skips a bounding-sphere test per object
      o.matrixAutoUpdate = false; // static: identity matrices, never recomputed per frame
      this.group.add(o);
    }
    this.group.updateMatrixWorld(true);
  }

  /** World position of `token` on `plane`. */
  position(plane: number, token: number, out = new THREE.Vector3()): THREE.Vector3 {
    const xy = this.layout!.xy;
    return out.set(xy[token * 2]! * this.spacing.cell, xy[token * 2 + 1]! * this.spacing.cell, -plane * this.spacing.planeGap);
  }

  /** World position of a corner of a plane's frame (0 top-left, 1 top-right, 2 bottom-right, 3 bottom-left), where its layer label may go. */
  planeCorner(plane: number, corner = 0, out = new THREE.Vector3()): THREE.Vector3 {
    const l = this.layout;
    const hw = l ? l.width / 2 + 1 : 0, hh = l ? l.height / 2 + 1 : 0;
    return out.set(corner === 1 || corner === 2 ? hw : -hw, corner < 2 ? hh : -hh, -plane * this.spacing.planeGap);
  }

  get hasData(): boolean {
    return this.layout !== null;
  }

  get seq(): number {
    return this.layout?.seq ?? 0;
  }

  get edgeCount(): number {
    return this.edgeSet?.count ?? 0;
  }

  /** Token points on all shown planes. */
  get tokenCount(): number {
    return (this.planes[1] - this.planes[0] + 1) * this.seq;
  }

  /** Edges the next frame draws (the strongest ones). */
  get drawnEdges(): number {
    return Math.min(this.edgeCount, Math.floor(this.edges.geometry.drawRange.count / 2));
  }

  /** Token points the next frame draws. */
  get drawnTokens(): number {
    return Math.min(this.tokenCount, this.tokens.geometry.drawRange.count);
  }

  /** Tokens drawn per plane up to a lattice level (LEVEL_STRIDES index). */
  tokensAtLevel(level: number): number {
    const ends = this.tokenOrder.levelEnd;
    return ends[Math.max(0, Math.min(ends.length - 1, level))]! * (this.planes[1] - this.planes[0] + 1);
  }

  /**
   * Draws only the strongest `edges` edges and the tokens up to lattice `tokenLevel` (everything
   * with `Infinity`): two draw ranges, no buffer is touched.
   */
  setDetail(edges: number, tokenLevel: number): void {
    this.edges.geometry.setDrawRange(0, edges >= this.edgeCount ? Infinity : 2 * Math.max(0, Math.floor(edges)));
    this.tokens.geometry.setDrawRange(0, tokenLevel >= this.tokenOrder.levelEnd.length - 1 ? Infinity : this.tokensAtLevel(tokenLevel));
  }

  /** Rebuilds tokens, frames and edges for a layout, the planes shown, and the selected edges. */
  build(layout: FlowLayout, planes: [number, number], edges: EdgeSet, threshold: number): void {
    this.layout = layout;
    this.edgeSet = edges;
    this.planes = planes;
    this.spacing = { cell: 1, planeGap: Math.max(3, Math.max(layout.width, layout.height) * 0.3) };
    const [p0, p1] = planes;
    const nPlanes = p1 - p0 + 1;
    const S = layout.seq;
    const v = new THREE.Vector3();

    // Tokens coarse lattice first, each token on every plane in turn, so a level's prefix covers every plane.
    this.tokenOrder = tokenOrder(layout);
    const pos = new Float32Array(nPlanes * S * 3);
    const col = new Float32Array(nPlanes * S * 3);
    let n = 0;
    for (const t of this.tokenOrder.order)
      for (let p = p0; p <= p1; p++, n++) {
        this.position(p, t, v).toArray(pos, n * 3);
        col.set(layout.isImage[t] ? IMAGE_COLOUR : TEXT_COLOUR, n * 3);
      }
    setAttributes(this.tokens, pos, col);

    const hw = layout.width / 2 + 1, hh = layout.height / 2 + 1;
    const corners = [[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]] as const;
    const frame = new Float32Array(nPlanes * 8 * 3);
    for (let p = p0, i = 0; p <= p1; p++)
      for (let c = 0; c < 4; c++) {
        const a = corners[c]!, b = corners[(c + 1) % 4]!;
        const z = -p * this.spacing.planeGap;
        frame.set([a[0], a[1], z, b[0], b[1], z], i);
        i += 6;
      }
    setAttributes(this.frames, frame);

    let maxW = threshold;
    for (let e = 0; e < edges.count; e++) maxW = Math.max(maxW, edges.weight[e]!);
    // Strongest first (ties in selection order), so the N strongest are the first 2N vertices.
    const w = edges.weight;
    this.edgeOrder = new Uint32Array(edges.count);
    for (let e = 0; e < edges.count; e++) this.edgeOrder[e] = e;
    this.edgeOrder.sort((a, b) => w[b]! - w[a]! || a - b);
    const ep = new Float32Array(edges.count * 6);
    const ec = new Float32Array(edges.count * 6);
    const span = maxW - threshold;
    this.weightRange = { lo: threshold, hi: maxW };
    for (let i = 0; i < edges.count; i++) {
      const e = this.edgeOrder[i]!;
      const l = edges.layer[e]!;
      this.position(l, edges.from[e]!, v).toArray(ep, i * 6);
      this.position(l + 1, edges.to[e]!, v).toArray(ep, i * 6 + 3);
      const t = span > 0 ? (w[e]! - threshold) / span : 1;
      const [r, g, b] = edgeColourAt(t); // additive blending: strength as brightness too
      ec[i * 6] = ec[i * 6 + 3] = r;
      ec[i * 6 + 1] = ec[i * 6 + 4] = g;
      ec[i * 6 + 2] = ec[i * 6 + 5] = b;
    }
    setAttributes(this.edges, ep, ec);
    this.setTrace(null);
  }

  /** Highlights a traced flow (or clears it): its edges and nodes drawn on top, the rest dimmed. */
  setTrace(trace: Trace | null): void {
    const edges = this.edgeSet;
    if (!trace || !edges || !this.layout) {
      setAttributes(this.traceEdges, new Float32Array(0));
      setAttributes(this.traceNodes, new Float32Array(0));
      this.edges.material.opacity = 0.85;
      return;
    }
    const v = new THREE.Vector3();
    const ep = new Float32Array(trace.edges.length * 6);
    trace.edges.forEach((e, i) => {
      const l = edges.layer[e]!;
      this.position(l, edges.from[e]!, v).toArray(ep, i * 6);
      this.position(l + 1, edges.to[e]!, v).toArray(ep, i * 6 + 3);
    });
    setAttributes(this.traceEdges, ep);
    const np = new Float32Array(trace.nodes.size * 3);
    let i = 0;
    for (const n of trace.nodes) this.position(Math.floor(n / this.seq), n % this.seq, v).toArray(np, 3 * i++);
    setAttributes(this.traceNodes, np);
    this.edges.material.opacity = 0.25;
  }

  /** Empties every object (no run shown): nothing is drawn until the next build. */
  clear(): void {
    this.layout = null;
    this.edgeSet = null;
    this.edgeOrder = new Uint32Array(0);
    this.tokenOrder = { order: new Uint32Array(0), levelEnd: [0] };
    this.planes = [0, -1];
    this.weightRange = { lo: 0, hi: 0 };
    for (const o of [this.tokens, this.edges, this.frames, this.traceEdges, this.traceNodes]) setAttributes(o, new Float32Array(0));
    this.edges.material.opacity = 0.85;
  }

  /** Radius of a sphere around every drawn token (for framing the camera). */
  bounds(): THREE.Sphere {
    this.tokens.geometry.computeBoundingSphere();
    return this.tokens.geometry.boundingSphere?.clone() ?? new THREE.Sphere();
  }

  /** Frees every geometry and material (the GPU buffers go with the renderer's next dispose). */
  dispose(): void {
    for (const o of [this.tokens, this.edges, this.frames, this.traceEdges, this.traceNodes]) {
      o.geometry.dispose();
      o.material.dispose();
    }
    this.group.clear();
  }
}

/** A fresh geometry per rebuild (sizes change with the filters); the old one's GPU buffers are freed. */
function setAttributes(o: THREE.Points | THREE.LineSegments, position: Float32Array, color?: Float32Array): void {
  o.geometry.dispose();
  const g = new THREE.BufferGeometry();
  g.setAttribute('position', new THREE.BufferAttribute(position, 3));
  if (color) g.setAttribute('color', new THREE.BufferAttribute(color, 3));
  o.geometry = g;
}
