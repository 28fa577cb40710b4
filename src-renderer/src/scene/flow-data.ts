/**
 * The data behind the 3D attention flow, as plain TS (no three.js, no DOM) so it is unit-tested
 * on hand-computed cases: token layout on the patch grid, attention sources (stored tensors or
 * synthetic), edge selection above a threshold, and tracing a token's flow through the layers.
 *
 * Geometry of the flow: plane `p` holds the residual stream entering LLM layer `p` (plane L is
 * the output of the last layer). Attention of layer `l` moves information from key `k` on plane
 * `l` to query `q` on plane `l + 1`, so an edge of layer `l` joins (l, k) → (l + 1, q).
 */
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';

/** One row of `image_token_map`: where an image token sits in the sequence and on its image. */
export interface ImageToken {
  position: number;
  image: number;
  tile: number;
  row: number;
  col: number;
}

/** `image_token_map` int32 [n, 5] → rows (position, image, tile, row, col). */
export function parseTokenMap(t: HostTensor): ImageToken[] {
  if (t.shape.length !== 2 || t.shape[1] !== 5) throw new Error(`image_token_map: expected [n, 5], got [${t.shape.join(', ')}]`);
  const d = t.data instanceof BigInt64Array ? Int32Array.from(t.data, Number) : t.data;
  const out: ImageToken[] = [];
  for (let i = 0; i < t.shape[0]!; i++) {
    const o = i * 5;
    out.push({ position: Number(d[o]), image: Number(d[o + 1]), tile: Number(d[o + 2]), row: Number(d[o + 3]), col: Number(d[o + 4]) });
  }
  return out;
}

export interface FlowLayout {
  seq: number;
  /** x, y per sequence position, in cell units, centred on the origin. */
  xy: Float32Array;
  /** 1 where the position is an image token. */
  isImage: Uint8Array;
  width: number;
  height: number;
}

/**
 * Lays one plane out: each (image, tile) block on its own row×col grid (rows run down), blocks
 * left to right `gap` cells apart; text tokens in rows below the blocks, wrapping at the blocks'
 * width (at least `minTextRow` per row), in sequence order. The whole is centred on (0, 0).
 */
export function layoutTokens(seq: number, imageTokens: readonly ImageToken[], gap = 2, minTextRow = 16): FlowLayout {
  const xy = new Float32Array(seq * 2);
  const isImage = new Uint8Array(seq);
  const blocks = new Map<string, { rows: number; cols: number; x: number }>();
  for (const t of imageTokens) {
    const key = `${t.image}:${t.tile}`;
    const b = blocks.get(key) ?? { rows: 0, cols: 0, x: 0 };
    b.rows = Math.max(b.rows, t.row + 1);
    b.cols = Math.max(b.cols, t.col + 1);
    blocks.set(key, b);
  }
  let x = 0;
  let imageRows = 0;
  for (const b of blocks.values()) {
    b.x = x;
    x += b.cols + gap;
    imageRows = Math.max(imageRows, b.rows);
  }
  const imageWidth = Math.max(0, x - gap);
  for (const t of imageTokens) {
    if (t.position < 0 || t.position >= seq) continue;
    const b = blocks.get(`${t.image}:${t.tile}`)!;
    xy[t.position * 2] = b.x + t.col;
    xy[t.position * 2 + 1] = -t.row;
    isImage[t.position] = 1;
  }
  const perRow = Math.max(imageWidth, minTextRow);
  const textTop = imageRows ? -(imageRows - 1) - gap : 0;
  let n = 0;
  for (let p = 0; p < seq; p++) {
    if (isImage[p]) continue;
    xy[p * 2] = n % perRow;
    xy[p * 2 + 1] = textTop - Math.floor(n / perRow);
    n++;
  }
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let p = 0; p < seq; p++) {
    const px = xy[p * 2]!, py = xy[p * 2 + 1]!;
    minX = Math.min(minX, px); maxX = Math.max(maxX, px);
    minY = Math.min(minY, py); maxY = Math.max(maxY, py);
  }
  if (seq === 0) return { seq, xy, isImage, width: 0, height: 0 };
  const cx = (minX + maxX) / 2, cy = (minY + maxY) / 2;
  for (let p = 0; p < seq; p++) {
    xy[p * 2] = xy[p * 2]! - cx;
    xy[p * 2 + 1] = xy[p * 2 + 1]! - cy;
  }
  return { seq, xy, isImage, width: maxX - minX, height: maxY - minY };
}

/** Attention probabilities of an LLM, read one query row at a time. */
export interface AttentionSource {
  readonly layers: number;
  readonly heads: number;
  readonly seq: number;
  /** Weights of query `q` over every key at (layer, head); may be a view, valid until the next call. */
  row(layer: number, head: number, q: number): Float32Array;
}

/** Stored `text.attentions.l` tensors ([1, H, S, S] or [H, S, S]), one per layer in order. */
export function tensorAttention(layers: readonly HostTensor[]): AttentionSource {
  if (!layers.length) throw new Error('no attention tensors');
  const dims = layers[0]!.shape.slice(-3);
  const [heads, seq, seq2] = dims as [number, number, number];
  if (dims.length !== 3 || seq !== seq2) throw new Error(`attention: expected [..., H, S, S], got [${layers[0]!.shape.join(', ')}]`);
  const data = layers.map((t) => toFloat32(t));
  return {
    layers: layers.length,
    heads,
    seq,
    row: (layer, head, q) => {
      const o = (head * seq + q) * seq;
      return data[layer]!.subarray(o, o + seq);
    },
  };
}

/** Which heads an edge's weight comes from: one head, or the mean or max over all heads. */
export type HeadSelect = number | 'mean' | 'max';

export interface EdgeFilter {
  /** First and last layer (inclusive) whose edges are drawn. */
  layerFrom: number;
  layerTo: number;
  head: HeadSelect;
  /** Edges with weight ≥ threshold are kept. */
  threshold: number;
  /** Keep at most this many (the strongest) so the scene stays drawable. */
  maxEdges: number;
}

/** Edges as parallel arrays: edge i joins (layer[i], from[i]) → (layer[i] + 1, to[i]). */
export interface EdgeSet {
  count: number;
  layer: Uint16Array;
  from: Uint32Array;
  to: Uint32Array;
  weight: Float32Array;
  /** More edges passed the threshold than `maxEdges`; the weakest were dropped. */
  truncated: boolean;
  /** How many passed the threshold before truncation. */
  candidates: number;
}

/** The row for a head selection, written into `out`. */
export function headRow(src: AttentionSource, layer: number, head: HeadSelect, q: number, out: Float32Array): Float32Array {
  if (typeof head === 'number') {
    out.set(src.row(layer, head, q));
    return out;
  }
  out.set(src.row(layer, 0, q));
  for (let h = 1; h < src.heads; h++) {
    const r = src.row(layer, h, q);
    if (head === 'max') for (let k = 0; k < out.length; k++) out[k] = Math.max(out[k]!, r[k]!);
    else for (let k = 0; k < out.length; k++) out[k] = out[k]! + r[k]!;
  }
  if (head === 'mean') for (let k = 0; k < out.length; k++) out[k] = out[k]! / src.heads;
  return out;
}

/** Every (key → query) weight ≥ threshold in the layer range, strongest `maxEdges` kept. */
export function selectEdges(src: AttentionSource, f: EdgeFilter): EdgeSet {
  const S = src.seq;
  const scratch = new Float32Array(S);
  let cap = 1024;
  let layer = new Uint16Array(cap), from = new Uint32Array(cap), to = new Uint32Array(cap), weight = new Float32Array(cap);
  let n = 0;
  const lo = Math.max(0, f.layerFrom), hi = Math.min(src.layers - 1, f.layerTo);
  for (let l = lo; l <= hi; l++) {
    for (let q = 0; q < S; q++) {
      const r = headRow(src, l, f.head, q, scratch);
      for (let k = 0; k < S; k++) {
        const w = r[k]!;
        if (!(w >= f.threshold && w > 0)) continue;
        if (n === cap) {
          cap *= 2;
          layer = grow(layer, cap); from = grow(from, cap); to = grow(to, cap); weight = grow(weight, cap);
        }
        layer[n] = l; from[n] = k; to[n] = q; weight[n] = w;
        n++;
      }
    }
  }
  const candidates = n;
  if (n > f.maxEdges) {
    // Keep the strongest: the cut is the maxEdges-th largest weight; ties at the cut fill in order.
    const sorted = weight.slice(0, n).sort();
    const cut = sorted[n - f.maxEdges]!;
    let above = 0;
    for (let i = 0; i < n; i++) if (weight[i]! > cut) above++;
    let tiesLeft = f.maxEdges - above;
    let m = 0;
    for (let i = 0; i < n; i++) {
      const w = weight[i]!;
      if (w > cut || (w === cut && tiesLeft-- > 0)) {
        layer[m] = layer[i]!; from[m] = from[i]!; to[m] = to[i]!; weight[m] = w;
        m++;
      }
    }
    n = m;
  }
  return { count: n, layer: layer.slice(0, n), from: from.slice(0, n), to: to.slice(0, n), weight: weight.slice(0, n), truncated: candidates > n, candidates };
}

function grow<T extends Uint16Array | Uint32Array | Float32Array>(a: T, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a);
  return b;
}

export type TraceDirection = 'backward' | 'forward' | 'both';

export interface Trace {
  /** Indices into the EdgeSet of every edge on the traced flow. */
  edges: Uint32Array;
  /** Nodes reached, as plane * seq + token (the start included). */
  nodes: Set<number>;
}

/**
 * Follows the selected edges from (plane, token): backward = what flows into it from earlier
 * planes, forward = where it flows to on later planes (breadth first, each node once).
 */
export function traceFlow(edges: EdgeSet, seq: number, plane: number, token: number, direction: TraceDirection): Trace {
  // Buckets of edge indices by their (layer, to) and (layer, from) node keys.
  const byTo = bucket(edges, seq, edges.to);
  const byFrom = bucket(edges, seq, edges.from);
  const start = plane * seq + token;
  const nodes = new Set<number>([start]);
  const picked = new Set<number>();
  const walk = (dir: 'backward' | 'forward') => {
    const queue = [start];
    const seen = new Set<number>([start]);
    while (queue.length) {
      const node = queue.shift()!;
      const p = Math.floor(node / seq), t = node % seq;
      // Backward: edges of layer p-1 ending at t; forward: edges of layer p starting at t.
      const l = dir === 'backward' ? p - 1 : p;
      if (l < 0) continue;
      const list = (dir === 'backward' ? byTo : byFrom).get(l * seq + t);
      if (!list) continue;
      for (const e of list) {
        picked.add(e);
        const next = dir === 'backward' ? l * seq + edges.from[e]! : (l + 1) * seq + edges.to[e]!;
        nodes.add(next);
        if (!seen.has(next)) {
          seen.add(next);
          queue.push(next);
        }
      }
    }
  };
  if (direction !== 'forward') walk('backward');
  if (direction !== 'backward') walk('forward');
  return { edges: Uint32Array.from([...picked].sort((a, b) => a - b)), nodes };
}

function bucket(edges: EdgeSet, seq: number, end: Uint32Array): Map<number, number[]> {
  const m = new Map<number, number[]>();
  for (let e = 0; e < edges.count; e++) {
    const key = edges.layer[e]! * seq + end[e]!;
    const list = m.get(key);
    if (list) list.push(e);
    else m.set(key, [e]);
  }
  return m;
}

/** A deterministic 32-bit hash → [0, 1), for synthetic data without storing it. */
function hash01(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(c + 0x1b873593, 0x27d4eb2f) ^ Math.imul(d + 0x165667b1, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  h = Math.imul(h, 0x297a2d39);
  h ^= h >>> 15;
  return (h >>> 0) / 4294967296;
}

export interface SyntheticFlow {
  source: AttentionSource;
  tokens: ImageToken[];
}

/**
 * LLaVA-like synthetic attention for benchmarks and demos, computed per row on demand (no
 * S×S×L×H storage): a causal mix of an attention sink on token 0, the token itself, its grid
 * neighbours (image tokens), the previous token and a few hashed long-range keys.
 */
export function syntheticFlow(opts: { layers: number; heads: number; grid: number; textBefore: number; textAfter: number }): SyntheticFlow {
  const { layers, heads, grid, textBefore, textAfter } = opts;
  const nImage = grid * grid;
  const seq = textBefore + nImage + textAfter;
  const tokens: ImageToken[] = [];
  for (let i = 0; i < nImage; i++) tokens.push({ position: textBefore + i, image: 0, tile: 0, row: Math.floor(i / grid), col: i % grid });
  const out = new Float32Array(seq);
  const add = (k: number, w: number, q: number) => {
    if (k >= 0 && k <= q) out[k] = out[k]! + w;
  };
  return {
    tokens,
    source: {
      layers,
      heads,
      seq,
      row(layer, head, q) {
        out.fill(0);
        add(0, 0.3, q);
        add(q, 0.15, q);
        add(q - 1, 0.1, q);
        const i = q - textBefore;
        if (i >= 0 && i < nImage) {
          const r = Math.floor(i / grid), c = i % grid;
          for (const [dr, dc] of [[-1, 0], [0, -1], [-1, -1], [-1, 1]] as const) {
            const rr = r + dr, cc = c + dc;
            if (rr >= 0 && cc >= 0 && cc < grid) add(textBefore + rr * grid + cc, 0.05 + 0.1 * hash01(layer, head, q, rr * grid + cc), q);
          }
        }
        for (let j = 0; j < 4; j++) add(Math.floor(hash01(layer, head, q, 1000 + j) * (q + 1)), 0.12 * hash01(layer, head, q, 2000 + j), q);
        let sum = 0;
        for (let k = 0; k <= q; k++) sum += out[k]!;
        for (let k = 0; k <= q; k++) out[k] = out[k]! / sum;
        return out;
      },
    },
  };
}
