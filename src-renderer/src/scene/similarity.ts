/**
 * Patch correspondence, as plain TS (no DOM): per-image patch grids taken from a run's stored
 * tensors at a chosen stage (vision layer, projector, LLM hidden state, LLM key or value),
 * cosine-similarity maps between one patch and another image's patches, a joint PCA → RGB
 * rendering of the grids (used when the images themselves are not available), and the pixels
 * of a cell grid for a canvas.
 */
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import { viridis } from './colormap.ts';
import type { ImageToken } from './flow-data.ts';

/** rows × cols patches of `dim` features, row-major: patch (r, c) at (r * cols + c) * dim. */
export interface PatchGrid {
  rows: number;
  cols: number;
  dim: number;
  vecs: Float32Array;
}

export type Stage =
  | { kind: 'vision'; layer: number }
  | { kind: 'projector' }
  | { kind: 'llm'; layer: number }
  | { kind: 'key'; layer: number }
  | { kind: 'value'; layer: number };

export interface StageInfo {
  stage: Stage;
  label: string;
  tensor: string;
}

const ORDER: Record<Stage['kind'], number> = { vision: 0, projector: 1, llm: 2, key: 2, value: 2 };

/** The stages a result offers, from its tensor names, in forward order (vision → projector → LLM). */
export function listStages(tensorNames: readonly string[]): StageInfo[] {
  const out: StageInfo[] = [];
  for (const name of tensorNames) {
    let m: RegExpExecArray | null;
    if ((m = /^vision\.hidden_states\.(\d+)$/.exec(name))) out.push({ stage: { kind: 'vision', layer: Number(m[1]) }, label: `vision layer ${m[1]}`, tensor: name });
    else if (name === 'projector') out.push({ stage: { kind: 'projector' }, label: 'projector', tensor: name });
    else if ((m = /^text\.hidden_states\.(\d+)$/.exec(name))) out.push({ stage: { kind: 'llm', layer: Number(m[1]) }, label: `LLM layer ${m[1]} hidden`, tensor: name });
    else if ((m = /^image_kv\.(\d+)\.(key|value)$/.exec(name))) out.push({ stage: { kind: m[2] as 'key' | 'value', layer: Number(m[1]) }, label: `LLM layer ${m[1]} ${m[2] === 'key' ? 'K' : 'V'}`, tensor: name });
  }
  const layerOf = (s: Stage) => ('layer' in s ? s.layer : 0);
  const sub = (s: Stage) => (s.kind === 'llm' ? 0 : s.kind === 'key' ? 1 : s.kind === 'value' ? 2 : 0);
  return out.sort((a, b) => ORDER[a.stage.kind] - ORDER[b.stage.kind] || layerOf(a.stage) - layerOf(b.stage) || sub(a.stage) - sub(b.stage));
}

function squareSide(n: number): number {
  const s = Math.round(Math.sqrt(n));
  return s * s === n ? s : 0;
}

/**
 * The patch grid of image `image` at a stage. Vision and projector tensors are indexed by image
 * ([n, (CLS +) P, D], CLS dropped when P - 1 is a square); LLM tensors by the image tokens'
 * (row, col) from `image_token_map` (the first tile of that image).
 */
export function stageGrid(stage: Stage, t: HostTensor, tokens: readonly ImageToken[], image: number): PatchGrid {
  const data = toFloat32(t);
  if (stage.kind === 'vision' || stage.kind === 'projector') {
    const [n, len, dim] = t.shape.slice(-3) as [number, number, number];
    if (image >= n) throw new Error(`${stage.kind}: no image ${image} in a tensor of ${n}`);
    let side = squareSide(len), skip = 0;
    if (!side && squareSide(len - 1)) {
      side = squareSide(len - 1);
      skip = 1;
    }
    if (!side) throw new Error(`${stage.kind}: ${len} positions are not a square patch grid`);
    const start = (image * len + skip) * dim;
    return { rows: side, cols: side, dim, vecs: data.slice(start, start + side * side * dim) };
  }
  const mine = tokens.map((tk, j) => ({ ...tk, j })).filter((tk) => tk.image === image);
  if (!mine.length) throw new Error(`no image tokens for image ${image}`);
  const tile = mine[0]!.tile;
  const cells = mine.filter((tk) => tk.tile === tile);
  const rows = Math.max(...cells.map((c) => c.row)) + 1;
  const cols = Math.max(...cells.map((c) => c.col)) + 1;
  if (stage.kind === 'llm') {
    const dim = t.shape[t.shape.length - 1]!;
    const seq = t.shape[t.shape.length - 2]!;
    const vecs = new Float32Array(rows * cols * dim);
    for (const c of cells) if (c.position < seq) vecs.set(data.subarray(c.position * dim, (c.position + 1) * dim), (c.row * cols + c.col) * dim);
    return { rows, cols, dim, vecs };
  }
  // image_kv.l.key|value: [kvHeads, nImageTokens, headDim] — heads concatenated per token.
  const [heads, n, hd] = t.shape.slice(-3) as [number, number, number];
  const dim = heads * hd;
  const vecs = new Float32Array(rows * cols * dim);
  for (const c of cells) {
    if (c.j >= n) continue;
    for (let h = 0; h < heads; h++) vecs.set(data.subarray((h * n + c.j) * hd, (h * n + c.j + 1) * hd), (c.row * cols + c.col) * dim + h * hd);
  }
  return { rows, cols, dim, vecs };
}

export function patchVector(g: PatchGrid, index: number): Float32Array {
  return g.vecs.subarray(index * g.dim, (index + 1) * g.dim);
}

/** Cosine similarity; 0 when either vector is zero. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!, y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** Cosine of `query` against every patch of `grid`. */
export function cosineMap(query: ArrayLike<number>, grid: PatchGrid): Float32Array {
  const out = new Float32Array(grid.rows * grid.cols);
  for (let i = 0; i < out.length; i++) out[i] = cosine(query, patchVector(grid, i));
  return out;
}

/** Index of the largest value (the first on ties); -1 for an empty map. */
export function argmax(values: ArrayLike<number>): number {
  let best = -1, bv = -Infinity;
  for (let i = 0; i < values.length; i++)
    if (values[i]! > bv) {
      bv = values[i]!;
      best = i;
    }
  return best;
}

/**
 * Joint PCA of several grids' patches (same dim) → one RGB triple per patch per grid: the first
 * three principal components, each stretched over 0..255 across all grids, so the same feature
 * direction gets the same colour in A and B. Power iteration with deflation, fixed start.
 */
export function pcaRgb(grids: readonly PatchGrid[]): Uint8Array[] {
  const dim = grids[0]?.dim ?? 0;
  const total = grids.reduce((s, g) => s + g.rows * g.cols, 0);
  const mean = new Float64Array(dim);
  for (const g of grids) for (let i = 0; i < g.vecs.length; i++) mean[i % dim]! += g.vecs[i]!;
  for (let d = 0; d < dim; d++) mean[d] = mean[d]! / Math.max(1, total);
  const X: Float64Array[] = [];
  for (const g of grids)
    for (let p = 0; p < g.rows * g.cols; p++) {
      const v = new Float64Array(dim);
      for (let d = 0; d < dim; d++) v[d] = g.vecs[p * dim + d]! - mean[d]!;
      X.push(v);
    }
  const comps: Float64Array[] = [];
  for (let c = 0; c < 3; c++) {
    let v = new Float64Array(dim).map((_, d) => 1 + ((d * 7 + c * 3) % 5) / 10);
    for (let it = 0; it < 60; it++) {
      // w = Xᵀ X v, with earlier components projected out.
      const w = new Float64Array(dim);
      for (const x of X) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += x[d]! * v[d]!;
        for (let d = 0; d < dim; d++) w[d]! += s * x[d]!;
      }
      for (const u of comps) {
        let s = 0;
        for (let d = 0; d < dim; d++) s += w[d]! * u[d]!;
        for (let d = 0; d < dim; d++) w[d]! -= s * u[d]!;
      }
      const norm = Math.hypot(...w);
      if (!(norm > 1e-12)) break;
      v = w.map((x) => x / norm);
    }
    comps.push(v);
  }
  const scores = comps.map((u) => X.map((x) => x.reduce((s, xd, d) => s + xd * u[d]!, 0)));
  const ranges = scores.map((s) => [Math.min(...s), Math.max(...s)] as const);
  const out: Uint8Array[] = [];
  let p = 0;
  for (const g of grids) {
    const rgb = new Uint8Array(g.rows * g.cols * 3);
    for (let i = 0; i < g.rows * g.cols; i++, p++)
      for (let c = 0; c < 3; c++) {
        const [lo, hi] = ranges[c]!;
        rgb[i * 3 + c] = hi > lo ? Math.round(((scores[c]![p]! - lo) / (hi - lo)) * 255) : 128;
      }
    out.push(rgb);
  }
  return out;
}

/** Values → RGB through viridis, min..max of the map stretched over the ramp. */
export function heatRgb(values: ArrayLike<number>): Uint8Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]!);
    hi = Math.max(hi, values[i]!);
  }
  const out = new Uint8Array(values.length * 3);
  for (let i = 0; i < values.length; i++) out.set(viridis(hi > lo ? (values[i]! - lo) / (hi - lo) : 0), i * 3);
  return out;
}

/** RGBA pixels of a width × height canvas showing rows × cols cells coloured by `rgb`. */
export function paintCells(rgb: Uint8Array, rows: number, cols: number, width: number, height: number): Uint8ClampedArray<ArrayBuffer> {
  const px = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    const r = Math.min(rows - 1, Math.floor((y * rows) / height));
    for (let x = 0; x < width; x++) {
      const c = Math.min(cols - 1, Math.floor((x * cols) / width));
      const i = (r * cols + c) * 3, o = (y * width + x) * 4;
      px[o] = rgb[i]!;
      px[o + 1] = rgb[i + 1]!;
      px[o + 2] = rgb[i + 2]!;
      px[o + 3] = 255;
    }
  }
  return px;
}
