/**
 * Attention on the image: the weights from one query token to every image token at one LLM
 * layer, placed on each image's patch grid. Plain TS (no DOM) so it is unit-tested on a
 * hand-made tensor; the flow view draws the grids over the item's images (HeatmapOverlay).
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type AttentionSource, type HeadSelect, type ImageToken, headRow } from './flow-data.ts';

/** One image's (or tile's) grid of attention weights, row-major rows × cols. */
export interface ImageAttention {
  image: number;
  tile: number;
  rows: number;
  cols: number;
  /** Attention weight of the query to the image token at each cell (0 where no token sits). */
  values: Float32Array;
  /** Largest weight on this grid and its cell (−1 when the grid is empty). */
  max: number;
  argmax: number;
}

/**
 * Weights from query position `query` to each image token at `layer` (one head, or the mean or
 * max over heads), one grid per (image, tile) in image then tile order. Throws `bad-input` when
 * the query, layer, head or a token position is out of range.
 */
export function attentionOnImages(src: AttentionSource, tokens: readonly ImageToken[], query: number, layer: number, head: HeadSelect): ImageAttention[] {
  if (!Number.isInteger(query) || query < 0 || query >= src.seq) throw new LoupeError('bad-input', `attention map: query position ${query} is outside the sequence of ${src.seq} tokens`);
  if (!Number.isInteger(layer) || layer < 0 || layer >= src.layers) throw new LoupeError('bad-input', `attention map: layer ${layer} is outside 0..${src.layers - 1}`);
  if (typeof head === 'number' && (!Number.isInteger(head) || head < 0 || head >= src.heads)) throw new LoupeError('bad-input', `attention map: head ${head} is outside 0..${src.heads - 1}`);
  const blocks = new Map<string, { image: number; tile: number; rows: number; cols: number; tokens: ImageToken[] }>();
  for (const t of tokens) {
    if (t.position < 0 || t.position >= src.seq) throw new LoupeError('bad-input', `attention map: image token at position ${t.position} is outside the sequence of ${src.seq} tokens`);
    if (t.row < 0 || t.col < 0) throw new LoupeError('bad-input', `attention map: image token at position ${t.position} has a negative grid cell (${t.row}, ${t.col})`);
    const key = `${t.image}:${t.tile}`;
    const b = blocks.get(key) ?? { image: t.image, tile: t.tile, rows: 0, cols: 0, tokens: [] };
    b.rows = Math.max(b.rows, t.row + 1);
    b.cols = Math.max(b.cols, t.col + 1);
    b.tokens.push(t);
    blocks.set(key, b);
  }
  const row = headRow(src, layer, head, query, new Float32Array(src.seq));
  return [...blocks.values()]
    .sort((a, b) => a.image - b.image || a.tile - b.tile)
    .map((b) => {
      const values = new Float32Array(b.rows * b.cols);
      for (const t of b.tokens) values[t.row * b.cols + t.col] = row[t.position]!;
      let max = -Infinity, argmax = -1;
      for (let i = 0; i < values.length; i++)
        if (values[i]! > max) {
          max = values[i]!;
          argmax = i;
        }
      return { image: b.image, tile: b.tile, rows: b.rows, cols: b.cols, values, max: argmax < 0 ? 0 : max, argmax };
    });
}
