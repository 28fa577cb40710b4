/**
 * The 3D attention flow scene core: plain TS around three.js (no Svelte), owned by
 * `views/flow/FlowView.svelte`. LLM layers are stacked in depth, each plane holding every
 * token (image tokens on their patch grid, text tokens in rows below); attention edges above
 * a threshold join plane l to plane l + 1. Clicking a token traces its flow backward/forward.
 *
 * Renders on demand: nothing is drawn unless the camera moved or something changed
 * (`invalidate()` schedules one frame); camera moves only re-render (no buffer is rebuilt or
 * allocated per frame, the scene's matrices are static). `dispose()` frees geometries,
 * materials, controls, the label layer and the WebGL context; `clear()` empties the scene when
 * the view moves to a run with nothing to show.
 *
 * Labels (layer per plane, "image tokens" / "text tokens") are HTML over the canvas, moved to
 * their projected anchors after each drawn frame; overlapping plane labels are hidden
 * (`flow-labels.ts`), so a 32-layer stack seen edge-on stays legible.
 *
 * Level of detail while the camera moves (`flow-lod.ts`, mode off / auto / fixed): moving frames
 * draw only the strongest N edges and a coarse lattice of the tokens (draw ranges over buffers
 * sorted once per build) into a drawing buffer at `movingScale` × the pixel ratio; in auto mode
 * the resolution and N follow the measured frame interval so the frame budget holds (full detail
 * while it does). While moving, a frame loop
 * ticks every animation frame (drawing only when the camera changed) to time frames and to notice
 * the stop; once the camera has been still for `idleMs` with no drag held, one full-detail frame
 * is drawn and the loop stops.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { type AttentionSource, type EdgeFilter, type EdgeSet, type FlowLayout, type Trace, type TraceDirection, selectEdges, traceFlow } from './flow-data.ts';
import { FlowGraph } from './flow-graph.ts';
import { outerCorner, planeLabel, tokenKindAnchors, visibleLabels } from './flow-labels.ts';
import { IMAGE_COLOUR, TEXT_COLOUR, cssRgb } from './flow-colours.ts';
import type { BenchResult } from './flow-bench.ts';
import { DEFAULT_LOD, type Detail, LEVEL_STRIDES, LodController, type LodMode, type LodSettings, TOKEN_COST, splitBudget } from './flow-lod.ts';

export interface LodStats {
  mode: LodMode;
  /** The last frame drawn was a reduced (moving) one. */
  moving: boolean;
  /** Edges and token points the last frame drew (all of them in a full-detail frame). */
  drawnEdges: number;
  drawnTokens: number;
  /** Token points on the shown planes. */
  tokens: number;
  /** Drawing-buffer pixels per CSS pixel in the last frame, and that as a share of full detail's. */
  pixelRatio: number;
  scale: number;
  /** What the last moving frame drew (0 before the first move). */
  movingEdges: number;
  movingTokens: number;
}

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
  /** Edge weights the colour scale spans (threshold → strongest drawn edge); 0, 0 when empty. */
  weightLo: number;
  weightHi: number;
  /** Plane labels shown after the last frame (the rest would overlap). */
  labelsShown: number;
  lod: LodStats;
}

export interface BenchOptions {
  /** Seconds of orbiting before the measured ones (lets auto LOD settle). */
  warmup?: number;
  /** Frames timed with a readback each, moving and still. */
  syncFrames?: number;
  /** Hide the whole graph: the frame rate of an empty canvas, the machine's ceiling. */
  empty?: boolean;
}


/** How often the moving frames may report stats (the UI note), in ms. */
const MOVING_STATS_MS = 250;
/** Box a plane label takes on screen, for hiding overlapping ones (px; labels are ≤ 6 characters of 11 px text). */
const LABEL_BOX = { width: 46, height: 15 } as const;

const emptyStats = (mode: LodMode): FlowStats => ({
  edges: 0, candidates: 0, truncated: false, traced: 0, tracedNodes: 0, selected: null, renders: 0, selectMs: 0, weightLo: 0, weightHi: 0, labelsShown: 0,
  lod: { mode, moving: false, drawnEdges: 0, drawnTokens: 0, tokens: 0, pixelRatio: 1, scale: 1, movingEdges: 0, movingTokens: 0 },
});

export class AttentionFlowScene {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(45, 1, 0.1, 5000);
  private readonly controls: OrbitControls;
  private readonly graph = new FlowGraph();
  private readonly resize: ResizeObserver;
  private readonly container: HTMLElement;
  /** Pixel ratio of full-detail frames (device pixels, capped at 2). */
  private readonly pixelRatio: number;
  private raf = 0;
  private dirty = false;
  private layout: FlowLayout | null = null;
  private source: AttentionSource | null = null;
  private filter: EdgeFilter | null = null;
  private edges: EdgeSet | null = null;
  private trace: Trace | null = null;
  private direction: TraceDirection = 'both';
  private down: { x: number; y: number } | null = null;
  private disposed = false;
  private lod: LodSettings = { ...DEFAULT_LOD };
  private controller = new LodController(DEFAULT_LOD.targetMs);
  /** The camera is moving (or stopped less than idleMs ago): frames are reduced. */
  private moving = false;
  /** A drag is held (OrbitControls start … end). */
  private held = false;
  private lastChange = 0;
  /** rAF time of the previous tick when it drew a moving frame (0 if it did not). */
  private lastMovingFrame = 0;
  private lastStatsAt = 0;
  private animation: { step: () => boolean; done: () => void } | null = null;
  private frameHook: ((moving: boolean, renderMs: number) => void) | null = null;
  stats: FlowStats = emptyStats(DEFAULT_LOD.mode);
  /** HTML labels over the canvas: one per shown plane, one per token kind (on the front plane). */
  private readonly labelLayer: HTMLDivElement;
  private planeLabels: HTMLDivElement[] = [];
  private kindLabels: { el: HTMLDivElement; x: number; y: number }[] = [];
  /** Called after anything in `stats` changed (not per frame: moving frames report at most every 250 ms). */
  onStats: (s: FlowStats) => void = () => {};

  constructor(container: HTMLElement) {
    this.container = container;
    // No MSAA (costly in software GL, and moving frames are reduced anyway); ask for the fast GPU.
    this.renderer = new THREE.WebGLRenderer({ antialias: false, powerPreference: 'high-performance' });
    this.pixelRatio = Math.min(2, window.devicePixelRatio || 1);
    this.renderer.setPixelRatio(this.pixelRatio);
    this.renderer.setClearColor(0x111318);
    container.appendChild(this.renderer.domElement);
    this.labelLayer = document.createElement('div');
    this.labelLayer.className = 'flow-labels';
    this.labelLayer.dataset.testid = 'flow-labels';
    // Over the canvas, never in the way of clicks and drags.
    Object.assign(this.labelLayer.style, { position: 'absolute', inset: '0', zIndex: '1', pointerEvents: 'none', overflow: 'hidden', font: '11px ui-monospace, monospace' });
    container.appendChild(this.labelLayer);
    this.scene.add(this.graph.group);
    this.scene.matrixAutoUpdate = false;
    this.scene.matrixWorldAutoUpdate = false; // the graph is static; only the camera moves
    this.controls = new OrbitControls(this.camera, this.renderer.domElement);
    this.controls.addEventListener('change', this.cameraMoved);
    this.controls.addEventListener('start', this.dragStart);
    this.controls.addEventListener('end', this.dragEnd);
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

  /** Shows nothing: the run or item changed and its data is not (or never will be) there. */
  clear(): void {
    this.layout = null;
    this.source = null;
    this.filter = null;
    this.edges = null;
    this.trace = null;
    this.graph.clear();
    this.buildLabels();
    this.stats = { ...emptyStats(this.lod.mode), renders: this.stats.renders };
    this.onStats(this.stats);
    this.invalidate();
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
    this.stats.weightLo = this.graph.weightRange.lo;
    this.stats.weightHi = this.graph.weightRange.hi;
    this.buildLabels();
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

  /** Level-of-detail settings for camera moves; the frame after takes them. */
  setLod(settings: Partial<LodSettings>): void {
    const next = { ...this.lod, ...settings };
    if (next.targetMs !== this.lod.targetMs) this.controller = new LodController(next.targetMs);
    this.lod = next;
    this.stats.lod.mode = next.mode;
    this.onStats(this.stats);
    this.invalidate();
  }

  get lodSettings(): Readonly<LodSettings> {
    return this.lod;
  }

  /** The GL renderer behind the canvas (WEBGL_debug_renderer_info), e.g. to tell SwiftShader from a GPU. */
  glRenderer(): string {
    const gl = this.renderer.getContext();
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  }

  /** Schedules one full-detail render on the next animation frame (coalesced). */
  readonly invalidate = (): void => {
    this.dirty = true;
    this.schedule();
  };

  /** Draws a frame now: reduced while the camera moves, full detail otherwise. */
  render(): void {
    if (!this.disposed) this.draw(this.moving);
  }

  /**
   * Orbits the camera for `seconds` through the same path as a drag (each animation frame moves
   * the camera and reports the change), counting the frames drawn; then waits for the full-detail
   * frame after the stop, and times `syncFrames` moving and still frames each forced to finish by
   * a readback. Run it once per LOD mode (`setLod`) to compare.
   */
  async benchOrbit(seconds: number, opts: BenchOptions = {}): Promise<BenchResult> {
    const { warmup = 0, syncFrames = 10, empty = false } = opts;
    this.graph.group.visible = !empty;
    const axis = new THREE.Vector3(0, 1, 0);
    const offset = this.camera.position.clone().sub(this.controls.target);
    const turn = () => {
      offset.applyAxisAngle(axis, (2 * Math.PI) / 240);
      this.camera.position.copy(this.controls.target).add(offset);
      this.camera.lookAt(this.controls.target);
    };
    const orbit = (ms: number) =>
      new Promise<void>((done) => {
        const t0 = performance.now();
        this.animation = {
          step: () => {
            if (performance.now() - t0 >= ms) return false;
            turn();
            this.cameraMoved();
            return true;
          },
          done,
        };
        this.schedule();
      });
    if (warmup > 0) await orbit(warmup * 1000);
    let frames = 0, edgeSum = 0, tokenSum = 0, ratio = this.pixelRatio, jsMs = 0;
    this.frameHook = (moving, renderMs) => {
      frames++;
      jsMs += renderMs;
      edgeSum += this.graph.drawnEdges;
      tokenSum += this.graph.drawnTokens;
      if (moving) ratio = this.renderer.getPixelRatio();
    };
    const t0 = performance.now();
    await orbit(seconds * 1000);
    const ms = performance.now() - t0;
    this.frameHook = null;
    const moved = frames;
    // The frame after the stop: full detail again (with LOD on, once idle).
    const stopped = performance.now();
    await new Promise<void>((resolve) => {
      const wait = () => (this.moving || this.dirty ? requestAnimationFrame(wait) : resolve());
      requestAnimationFrame(wait);
    });
    const stillAfterMs = performance.now() - stopped;
    const stillEdges = this.graph.drawnEdges, stillTokens = this.graph.drawnTokens;
    const gl = this.renderer.getContext();
    const px = new Uint8Array(4);
    const sync = (moving: boolean) => {
      const s0 = performance.now();
      for (let i = 0; i < syncFrames; i++) {
        turn();
        this.draw(moving);
        gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
      }
      return (performance.now() - s0) / syncFrames;
    };
    const syncMovingMs = sync(true);
    const syncStillMs = sync(false);
    this.graph.group.visible = true;
    this.invalidate();
    return {
      mode: this.lod.mode,
      frames: moved,
      seconds: ms / 1000,
      fps: (moved * 1000) / ms,
      syncMovingMs,
      syncStillMs,
      jsMs: moved ? jsMs / moved : 0,
      edges: this.graph.edgeCount,
      tokens: this.graph.tokenCount,
      drawnEdges: moved ? edgeSum / moved : 0,
      drawnTokens: moved ? tokenSum / moved : 0,
      pixelRatio: ratio,
      stillAfterMs,
      stillEdges,
      stillTokens,
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    cancelAnimationFrame(this.raf);
    this.animation?.done();
    this.animation = null;
    this.resize.disconnect();
    this.controls.removeEventListener('change', this.cameraMoved);
    this.controls.removeEventListener('start', this.dragStart);
    this.controls.removeEventListener('end', this.dragEnd);
    this.controls.dispose();
    this.canvas.removeEventListener('pointerdown', this.onDown);
    this.canvas.removeEventListener('pointerup', this.onUp);
    this.graph.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    this.canvas.remove();
    this.labelLayer.remove();
    this.planeLabels = [];
    this.kindLabels = [];
  }

  /** One label element per shown plane and per token kind; positions are set per drawn frame. */
  private buildLabels(): void {
    this.labelLayer.replaceChildren();
    this.planeLabels = [];
    this.kindLabels = [];
    if (!this.layout || !this.source) return;
    const [p0, p1] = this.graph.planes;
    for (let p = p0; p <= p1; p++) {
      const el = this.label(planeLabel(p, this.source.layers), 'plane');
      el.dataset.plane = String(p);
      this.planeLabels.push(el);
    }
    for (const a of tokenKindAnchors(this.layout)) {
      const el = this.label(`${a.kind} tokens (${a.count})`, a.kind);
      this.kindLabels.push({ el, x: a.x, y: a.y });
    }
  }

  private label(text: string, kind: 'plane' | 'image' | 'text'): HTMLDivElement {
    const el = document.createElement('div');
    el.textContent = text;
    el.dataset.testid = kind === 'plane' ? 'flow-plane-label' : 'flow-kind-label';
    el.dataset.kind = kind;
    const colour = kind === 'plane' ? '#8d95a5' : cssRgb(kind === 'image' ? IMAGE_COLOUR : TEXT_COLOUR);
    // Anchored at the projected point: plane labels end at the frame's corner, kind labels start at their region.
    // A dark pill behind the text: readable over the brightest edges.
    Object.assign(el.style, { position: 'absolute', left: '0', top: '0', whiteSpace: 'nowrap', color: colour, background: 'rgb(17 19 24 / 0.8)', padding: '0 3px', borderRadius: '3px' });
    this.labelLayer.appendChild(el);
    return el;
  }

  /** Moves the labels to where this frame drew their anchors; hides plane labels that would overlap. */
  private placeLabels(): void {
    if (!this.planeLabels.length && !this.kindLabels.length) {
      this.stats.labelsShown = 0;
      return;
    }
    const w = this.container.clientWidth, h = this.container.clientHeight;
    const v = new THREE.Vector3();
    const screen = (): { x: number; y: number } | null => {
      v.project(this.camera);
      if (v.z < -1 || v.z > 1) return null;
      const x = ((v.x + 1) / 2) * w, y = ((1 - v.y) / 2) * h;
      return x < -LABEL_BOX.width || x > w + LABEL_BOX.width || y < 0 || y > h ? null : { x, y };
    };
    const p0 = this.graph.planes[0];
    // The corner outside the cloud from this camera; labels extend away from the stack's centre.
    const corners = [0, 1, 2, 3].map((c) => this.planeLabels.map((_, i) => (this.graph.planeCorner(p0 + i, c, v), screen())));
    const centre = (v.copy(this.controls.target), screen()) ?? { x: w / 2, y: h / 2 };
    const points = corners[outerCorner(corners, centre)]!;
    const show = visibleLabels(points, LABEL_BOX.width, LABEL_BOX.height);
    let shown = 0;
    this.planeLabels.forEach((el, i) => {
      const p = points[i];
      el.hidden = !show[i];
      if (show[i] && p) {
        shown++;
        const left = p.x < centre.x;
        el.style.transform = `translate(${Math.round(p.x + (left ? -4 : 4))}px, ${Math.round(p.y)}px) translate(${left ? '-100%' : '0'}, -50%)`;
      }
    });
    this.stats.labelsShown = shown;
    const s = this.graph.spacing;
    for (const k of this.kindLabels) {
      v.set(k.x * s.cell, k.y * s.cell, -p0 * s.planeGap);
      const p = screen();
      k.el.hidden = !p;
      if (p) k.el.style.transform = `translate(${Math.round(p.x)}px, ${Math.round(p.y)}px) translate(0, -100%)`;
    }
  }

  private schedule(): void {
    if (!this.raf && !this.disposed) this.raf = requestAnimationFrame(this.tick);
  }

  /** The camera changed (a drag, the wheel, keys, a bench orbit): reduced frames until it stops. */
  private readonly cameraMoved = (): void => {
    this.lastChange = performance.now();
    if (this.lod.mode !== 'off') this.moving = true;
    this.invalidate();
  };

  private readonly dragStart = (): void => {
    this.held = true;
  };

  private readonly dragEnd = (): void => {
    this.held = false;
    this.lastChange = performance.now();
    this.schedule();
  };

  /** One animation frame: time the last moving frame, draw if anything changed, notice the stop. */
  private readonly tick = (now: number): void => {
    this.raf = 0;
    if (this.disposed) return;
    const anim = this.animation;
    if (anim && !anim.step()) {
      this.animation = null;
      anim.done();
    }
    if (this.moving) {
      if (this.lastMovingFrame && this.lod.mode === 'auto') this.controller.sample(now - this.lastMovingFrame, this.graph.edgeCount + TOKEN_COST * this.graph.tokenCount);
      this.lastMovingFrame = 0;
      if (this.held || this.animation || performance.now() - this.lastChange < this.lod.idleMs) {
        if (this.dirty) {
          this.dirty = false;
          this.draw(true);
          this.lastMovingFrame = now;
        }
        this.schedule();
        return;
      }
      this.moving = false;
      this.dirty = true; // the full-detail frame
    }
    if (this.dirty) {
      this.dirty = false;
      this.draw(false);
    }
    if (this.animation) this.schedule();
  };

  /** What a moving frame draws under the current settings. */
  private movingDetail(): Detail {
    const g = this.graph;
    const finest = LEVEL_STRIDES.length - 1;
    if (this.lod.mode === 'fixed') return { edges: this.lod.fixedEdges, tokenLevel: finest };
    return splitBudget(this.controller.budget, g.edgeCount, g.tokenOrder.levelEnd, g.planes[1] - g.planes[0] + 1);
  }

  private draw(moving: boolean): void {
    const g = this.graph;
    const reduced = moving && this.lod.mode !== 'off';
    if (reduced) {
      const d = this.movingDetail();
      g.setDetail(d.edges, d.tokenLevel);
    } else g.setDetail(Infinity, Infinity);
    const lowRes = reduced && (this.lod.mode === 'fixed' || this.controller.lowRes);
    const ratio = lowRes ? this.pixelRatio * this.lod.movingScale : this.pixelRatio;
    if (this.renderer.getPixelRatio() !== ratio) this.renderer.setPixelRatio(ratio); // resizes the drawing buffer only
    const r0 = performance.now();
    this.renderer.render(this.scene, this.camera);
    const renderMs = performance.now() - r0;
    const labelsBefore = this.stats.labelsShown;
    this.placeLabels();
    this.stats.renders++;
    const s = this.stats.lod;
    const started = reduced && !s.moving;
    const changed = labelsBefore !== this.stats.labelsShown || s.moving !== reduced || s.drawnEdges !== g.drawnEdges || s.drawnTokens !== g.drawnTokens || s.tokens !== g.tokenCount || s.pixelRatio !== ratio;
    Object.assign(s, { moving: reduced, drawnEdges: g.drawnEdges, drawnTokens: g.drawnTokens, tokens: g.tokenCount, pixelRatio: ratio, scale: ratio / this.pixelRatio });
    if (reduced) Object.assign(s, { movingEdges: g.drawnEdges, movingTokens: g.drawnTokens });
    this.frameHook?.(reduced, renderMs);
    const t = performance.now();
    // Moving frames report at most every MOVING_STATS_MS (the first one at once); a full-detail frame always does.
    if (changed && (!reduced || started || t - this.lastStatsAt >= MOVING_STATS_MS)) {
      this.lastStatsAt = t;
      this.onStats(this.stats);
    }
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
    // Not a camera move: no reduced frames for it.
    this.controls.removeEventListener('change', this.cameraMoved);
    this.controls.update();
    this.controls.addEventListener('change', this.cameraMoved);
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
