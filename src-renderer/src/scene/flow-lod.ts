/**
 * Interaction-time level of detail (LOD) for the 3D attention flow, as plain TS (no three.js, no
 * DOM) so it is unit-tested: while the camera moves the scene draws only the strongest N edges, a
 * coarse lattice of the tokens and a smaller drawing buffer; when it stops, one full-detail frame.
 *
 * Everything here is chosen so that a LOD change is a draw-range change, never a rebuild: the
 * graph sorts its edges strongest first and its tokens coarse-lattice first once per build
 * (`tokenOrder`), so "N edges, tokens up to level k" is a prefix of each buffer.
 */
import type { FlowLayout } from './flow-data.ts';

/** off: every frame at full detail; auto: detail adapted to the frame budget; fixed: N edges while moving. */
export type LodMode = 'off' | 'auto' | 'fixed';

export interface LodSettings {
  mode: LodMode;
  /** Edges drawn while moving in 'fixed' mode (tokens all drawn). */
  fixedEdges: number;
  /** Frame budget while moving, ms (60 fps → 16.7). */
  targetMs: number;
  /** Drawing-buffer scale while moving, × the still pixel ratio (the compositor upscales); auto uses it once a frame missed. */
  movingScale: number;
  /** The full-detail frame is drawn once the camera has been still this long (and no drag is held). */
  idleMs: number;
}

export const DEFAULT_LOD: LodSettings = { mode: 'auto', fixedEdges: 5000, targetMs: 1000 / 60, movingScale: 0.5, idleMs: 150 };

/** Strides of the token lattice levels: level 0 = every 8th cell in x and y, …, level 3 = every cell. */
export const LEVEL_STRIDES = [8, 4, 2, 1] as const;

export interface TokenOrder {
  /** Token indices, coarse lattice levels first, sequence order within a level. */
  order: Uint32Array;
  /** levelEnd[i] = how many tokens have level ≤ i (so levelEnd[last] = seq). */
  levelEnd: number[];
}

/**
 * Orders a plane's tokens for decimation: a token's level is the first stride in LEVEL_STRIDES
 * dividing both of its cell coordinates (measured from the layout's corner), so a prefix of the
 * order up to a level boundary is a uniform sub-lattice of the image grid and the text rows.
 */
export function tokenOrder(layout: FlowLayout): TokenOrder {
  const { seq, xy } = layout;
  let minX = Infinity, minY = Infinity;
  for (let t = 0; t < seq; t++) {
    minX = Math.min(minX, xy[t * 2]!);
    minY = Math.min(minY, xy[t * 2 + 1]!);
  }
  const level = new Uint8Array(seq);
  const counts = new Array<number>(LEVEL_STRIDES.length).fill(0);
  for (let t = 0; t < seq; t++) {
    const cx = Math.round(xy[t * 2]! - minX), cy = Math.round(xy[t * 2 + 1]! - minY);
    const l = LEVEL_STRIDES.findIndex((s) => cx % s === 0 && cy % s === 0);
    level[t] = l;
    counts[l]!++;
  }
  const levelEnd: number[] = [];
  for (let l = 0, sum = 0; l < counts.length; l++) levelEnd.push((sum += counts[l]!));
  const next = [0, ...levelEnd.slice(0, -1)];
  const order = new Uint32Array(seq);
  for (let t = 0; t < seq; t++) order[next[level[t]!]!++] = t;
  return { order, levelEnd };
}

/** What one moving frame draws. */
export interface Detail {
  edges: number;
  /** Highest token level drawn (LEVEL_STRIDES index). */
  tokenLevel: number;
}

/** Relative cost of a token point vs an edge line in the budget (points are small, lines long). */
export const TOKEN_COST = 0.5;

/**
 * Splits a primitive budget (in edge-equivalents) between edges and tokens: the share s of the
 * whole scene that fits, N = s·M strongest edges, and tokens up to the finest lattice level whose
 * count fits 4·s·T (tokens are cheap context, so they thin out later than edges).
 * `levelEnd` is per plane; `planes` multiplies it.
 */
export function splitBudget(budget: number, edges: number, levelEnd: readonly number[], planes: number): Detail {
  const tokens = levelEnd[levelEnd.length - 1]! * planes;
  const total = edges + TOKEN_COST * tokens;
  const s = total > 0 ? Math.min(1, Math.max(0, budget) / total) : 1;
  if (s >= 1) return { edges, tokenLevel: levelEnd.length - 1 };
  let tokenLevel = 0;
  while (tokenLevel < levelEnd.length - 1 && levelEnd[tokenLevel + 1]! * planes <= 4 * s * tokens) tokenLevel++;
  return { edges: Math.floor(s * edges), tokenLevel };
}

/**
 * Adapts moving frames to measured frame intervals, as dynamic resolution does in games. Starts
 * at full detail and full resolution (a GPU that keeps up never sees LOD). An interval over
 * 1.25 × target is a miss: the first one switches to the reduced drawing buffer (`lowRes`), later
 * ones cut the budget (edge-equivalents) in proportion (× target / interval, so by at least 20 %,
 * at most ×0.05); after a miss the next two intervals are ignored (frames already queued at the
 * old detail). `growAfter` on-time intervals in a row raise the budget by 10 %, but not above
 * 0.9 × the budget that last missed until `holdSamples` samples have passed, so it settles under
 * the limit rather than oscillating across it; once it is unlimited again and `holdSamples`
 * intervals in a row were on time, full resolution is tried again.
 */
export class LodController {
  budget = Infinity;
  /** Moving frames use the reduced drawing buffer. */
  lowRes = false;
  private fullFor = 0;
  private onTime = 0;
  private skip = 0;
  private ceiling = Infinity;
  private age = 0;

  readonly targetMs: number;
  readonly minBudget: number;
  readonly growAfter: number;
  readonly holdSamples: number;

  constructor(targetMs: number, opts: { minBudget?: number; growAfter?: number; holdSamples?: number } = {}) {
    this.targetMs = targetMs;
    this.minBudget = opts.minBudget ?? 64;
    this.growAfter = opts.growAfter ?? 8;
    this.holdSamples = opts.holdSamples ?? 240;
  }

  /**
   * One interval (ms) between two consecutive moving frames; `total` is the whole scene's cost
   * (the budget never grows past it). Returns true when the budget or the resolution changed.
   */
  sample(ms: number, total: number): boolean {
    if (this.skip > 0) {
      this.skip--;
      return false;
    }
    if (++this.age > this.holdSamples) this.ceiling = Infinity;
    const before = this.budget;
    if (ms > this.targetMs * 1.25) {
      this.onTime = this.fullFor = this.age = 0;
      this.skip = 2;
      if (!this.lowRes) {
        this.lowRes = true;
        return true;
      }
      const from = Math.min(this.budget, total);
      this.ceiling = from;
      this.budget = Math.max(this.minBudget, from * Math.max(0.05, this.targetMs / ms));
    } else if (ms <= this.targetMs * 1.1) {
      if (this.budget === Infinity) {
        if (this.lowRes && ++this.fullFor > this.holdSamples) {
          this.lowRes = false;
          this.fullFor = 0;
          return true;
        }
      } else if (++this.onTime >= this.growAfter) {
        this.onTime = 0;
        const cap = this.ceiling === Infinity ? Infinity : 0.9 * this.ceiling;
        const grown = Math.min(this.budget * 1.1, cap);
        if (grown > this.budget) this.budget = grown >= total ? Infinity : grown;
      }
    } else this.onTime = 0;
    return this.budget !== before;
  }

  /** Forget what was learnt (e.g. the settings changed). */
  reset(): void {
    this.budget = this.ceiling = Infinity;
    this.lowRes = false;
    this.onTime = this.skip = this.age = this.fullFor = 0;
  }
}
