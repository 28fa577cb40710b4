/**
 * The 3D attention flow scene core: plain TS around three.js (no Svelte), owned by
 * `views/flow/FlowView.svelte`. LLM layers are stacked in depth, each plane holding every
 * token (image tokens on their patch grid, text tokens in rows below); attention edges above
 * a threshold join plane l to plane l + 1. Clicking a token traces its flow backward/forward.
 *
 * Renders on demand: nothing runs per frame unless the camera moved or something changed
 * (`invalidate()` schedules one frame). `dispose()` frees geometries, materials, controls and
 * the WebGL context.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { type AttentionSource, type EdgeFilter, type EdgeSet, type FlowLayout, type Trace, type TraceDirection, selectEdges, traceFlow } from './flow-data.ts';
import { FlowGraph } from './flow-graph.ts';

export interface FlowStats {
  edges: number;
  candidates: number;
  truncated: boolean;
  /** Edges on the traced flow (0 without a selection). */
  traced: number;
  tracedNodes: number;
  selected: { plane: number; token: number } | null;
  /** Frames rendered so far (render-on-demand keeps this still while idle). */
  renders: number;
  /** Milliseconds the last edge selection took. */
  selectMs: number;
}

export interface BenchResult {
  frames: number;
  seconds: number;
  fps: number;
  /** Mean ms of render + a 1-pixel readback (forces the GL work to finish). */
  syncRenderMs: number;
  edges: number;
  points: number;
}

export class AttentionFlowScene {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(45, 1, 0.1, 5000);
  private readonly controls: OrbitControls;
  private readonly graph = new FlowGraph();
  private readonly resize: ResizeObserver;
  private readonly container: HTMLElement;
  private frame = 0;
  private layout: FlowLayout | null = null;
  private source: AttentionSource | null = null;
  private filter: EdgeFilter | null = null;
  private edges: EdgeSet | null = null;
  private trace: Trace | null = null;
  private direction: TraceDirection = 'both';
  private down: { x: number; y: number } | null = null;
  private disposed = false;
  stats: FlowStats = { edges: 0, candidates: 0, truncated: false, traced: 0, tracedNodes: 0, selected: null, renders: 0, selectMs: 0 };
  /** Called after anything in `stats` changed (not per frame). */
  onStats: (s: FlowStats) => void = () => {};

  constructor(container: HTMLElement) {
    this.container = container;
    this.renderer = new THREE.WebGLRenderer({ antialias: false, powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    this.renderer.setClearColor(0x111318);
    container.appendChild(this.renderer.domElement);
    this.scene.add(this.graph.group);
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener('change', this.invalidate);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(container);
    const canvas = this.renderer.domElement;
    canvas.addEventListener('pointerdown', this.onDown);
    canvas.addEventListener('pointerup', this.onUp);
    this.fit();
  }

  get canvas(): HTMLCanvasElement {
    return this.renderer.domElement;
  }

  /** New data: a layout for one plane and the attention it shows. Frames the camera. */
  setData(layout: FlowLayout, source: AttentionSource, filter: EdgeFilter): void {
    this.layout = layout;
    this.source = source;
    this.filter = null;
    this.trace = null;
    this.stats.selected = null;
    this.setFilter(filter);
    this.frameCamera();
  }

  /** Re-selects the edges (layer range, head, threshold, cap) and re-traces the selection. */
  setFilter(filter: EdgeFilter): void {
    if (!this.layout || !this.source) return;
    const f = this.filter;
    if (f && f.layerFrom === filter.layerFrom && f.layerTo === filter.layerTo && f.head === filter.head && f.threshold === filter.threshold && f.maxEdges === filter.maxEdges) return;
    this.filter = filter;
    const t0 = performance.now();
    this.edges = selectEdges(this.source, filter);
    this.stats.selectMs = performance.now() - t0;
    const planes: [number, number] = [Math.max(0, filter.layerFrom), Math.min(this.source.layers, filter.layerTo + 1)];
    this.graph.build(this.layout, planes, this.edges, filter.threshold);
    const sel = this.stats.selected;
    if (sel && (sel.plane < planes[0] || sel.plane > planes[1])) this.stats.selected = null;
    this.retrace();
  }

  setDirection(direction: TraceDirection): void {
    this.direction = direction;
    this.retrace();
  }

  /** Selects a token (or clears with null) and highlights its traced flow. */
  select(node: { plane: number; token: number } | null): void {
    this.stats.selected = node;
    this.retrace();
  }

  /** The token drawn nearest to a client point (within `radius` px), front-most on ties. */
  pick(clientX: number, clientY: number, radius = 10): { plane: number; token: number } | null {
    if (!this.layout) return null;
    const rect = this.canvas.getBoundingClientRect();
    const v = new THREE.Vector3();
    let best: { plane: number; token: number } | null = null;
    let bestD = radius * radius;
    let bestZ = Infinity;
    const [p0, p1] = this.graph.planes;
    for (let p = p0; p <= p1; p++)
      for (let t = 0; t < this.layout.seq; t++) {
        this.graph.position(p, t, v).project(this.camera);
        if (v.z < -1 || v.z > 1) continue;
        const dx = ((v.x + 1) / 2) * rect.width + rect.left - clientX;
        const dy = ((1 - v.y) / 2) * rect.height + rect.top - clientY;
        const d = dx * dx + dy * dy;
        if (d < bestD - 0.25 || (Math.abs(d - bestD) <= 0.25 && v.z < bestZ)) {
          bestD = d;
          bestZ = v.z;
          best = { plane: p, token: t };
        }
      }
    return best;
  }

  /** Client coordinates of a token, e.g. to place a label (or to click it in a test). */
  screenPosition(plane: number, token: number): { x: number; y: number } {
    const rect = this.canvas.getBoundingClientRect();
    const v = this.graph.position(plane, token).project(this.camera);
    return { x: ((v.x + 1) / 2) * rect.width + rect.left, y: ((1 - v.y) / 2) * rect.height + rect.top };
  }

  /** Schedules one render on the next animation frame (coalesced). */
  readonly invalidate = (): void => {
    if (this.frame || this.disposed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  };

  render(): void {
    if (this.disposed) return;
    this.renderer.render(this.scene, this.camera);
    this.stats.renders++;
  }

  /**
   * Orbits the camera for `seconds` in a requestAnimationFrame loop, rendering every frame, and
   * reports the frame rate; then times `syncFrames` renders each forced to finish by a readback.
   */
  async benchOrbit(seconds: number, syncFrames = 20): Promise<BenchResult> {
    const step = (2 * Math.PI) / 240;
    const offset = this.camera.position.clone().sub(this.controls.target);
    const spin = (a: number) => {
      offset.applyAxisAngle(new THREE.Vector3(0, 1, 0), a);
      this.camera.position.copy(this.controls.target).add(offset);
      this.camera.lookAt(this.controls.target);
    };
    const frames = await new Promise<{ n: number; ms: number }>((resolve) => {
      let n = 0;
      const t0 = performance.now();
      const tick = () => {
        spin(step);
        this.render();
        n++;
        const ms = performance.now() - t0;
        if (ms >= seconds * 1000) resolve({ n, ms });
        else requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const gl = this.renderer.getContext();
    const px = new Uint8Array(4);
    const s0 = performance.now();
    for (let i = 0; i < syncFrames; i++) {
      spin(step);
      this.render();
      gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    }
    const syncRenderMs = (performance.now() - s0) / syncFrames;
    return { frames: frames.n, seconds: frames.ms / 1000, fps: (frames.n * 1000) / frames.ms, syncRenderMs, edges: this.graph.edgeCount, points: (this.graph.planes[1] - this.graph.planes[0] + 1) * this.graph.seq };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    cancelAnimationFrame(this.frame);
    this.resize.disconnect();
    this.controls.removeEventListener('change', this.invalidate);
    this.controls.dispose();
    this.canvas.removeEventListener('pointerdown', this.onDown);
    this.canvas.removeEventListener('pointerup', this.onUp);
    this.graph.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    this.canvas.remove();
  }

  private retrace(): void {
    const sel = this.stats.selected;
    this.trace = sel && this.edges && this.layout ? traceFlow(this.edges, this.layout.seq, sel.plane, sel.token, this.direction) : null;
    this.graph.setTrace(this.trace);
    Object.assign(this.stats, {
      edges: this.edges?.count ?? 0,
      candidates: this.edges?.candidates ?? 0,
      truncated: this.edges?.truncated ?? false,
      traced: this.trace?.edges.length ?? 0,
      tracedNodes: this.trace?.nodes.size ?? 0,
    });
    this.onStats(this.stats);
    this.invalidate();
  }

  private fit(): void {
    const w = Math.max(1, this.container.clientWidth), h = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(w, h);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.invalidate();
  }

  /** Looks at the stack from the front-left and above, the whole of it in view. */
  private frameCamera(): void {
    const s = this.graph.bounds();
    const r = Math.max(1, s.radius);
    const dist = r / Math.sin(THREE.MathUtils.degToRad(this.camera.fov / 2));
    this.controls.target.copy(s.center);
    this.camera.position.copy(s.center).add(new THREE.Vector3(-0.55, 0.4, 0.75).normalize().multiplyScalar(dist * 0.9));
    this.camera.near = Math.max(0.01, dist / 100);
    this.camera.far = dist * 10;
    this.camera.updateProjectionMatrix();
    this.controls.update();
    this.invalidate();
  }

  private readonly onDown = (e: PointerEvent): void => {
    this.down = { x: e.clientX, y: e.clientY };
  };

  /** A click (not a drag) selects the nearest token, or clears on empty space. */
  private readonly onUp = (e: PointerEvent): void => {
    if (!this.down || Math.hypot(e.clientX - this.down.x, e.clientY - this.down.y) > 4) return;
    this.down = null;
    this.select(this.pick(e.clientX, e.clientY));
  };
}
