/**
 * DAVIS label propagation over token grids, as DIFT evaluates temporal correspondence
 * (github.com/Tsingularity/dift `eval_davis.py`, itself DINO's `eval_video_segmentation.py`;
 * "Visual representations inside the language model" uses "the same method as semantic
 * correspondence" on DAVIS, i.e. this protocol on image value tokens):
 *
 * 1. Frame 0's annotation, nearest-resized to the token grid (here: the id under each cell's
 *    centre, through the pixel map), one-hot over ids 0..max (channel 0 = background).
 * 2. For each later frame t, the context is frame 0 (its one-hot) and the `contextFrames`
 *    previous frames (their *soft* propagated maps, not argmaxed).
 * 3. Affinity of target cell q to context cell p = exp(cos(q, p) / temperature), zeroed outside
 *    a (2·neighbourhood+1)² window around q's grid position; over all context cells, every
 *    value below the top-k-th is set to 0, the rest normalised to sum 1; the target's soft map is
 *    the affinity-weighted sum of the context maps.
 * 4. (pixels.ts) the soft map is upsampled bilinearly, each channel min-max normalised
 *    (`norm_mask`), and the argmax is the predicted object id per pixel.
 *
 * Defaults are DIFT's `eval_davis.py` arguments: topk 5, temperature 0.1, n_last_frames 7,
 * size_mask_neighborhood 12.
 */
import type { Grid } from '../../../src-shared/vision/pixel-map.ts';

export interface LabelPropagationOptions {
  topk: number;
  temperature: number;
  /** Previous frames in the context besides frame 0 (`n_last_frames`). */
  contextFrames: number;
  /** Half-width of the spatial window, in cells (`size_mask_neighborhood`; 0 = no window). */
  neighbourhood: number;
}

export const DIFT_DAVIS: LabelPropagationOptions = { topk: 5, temperature: 0.1, contextFrames: 7, neighbourhood: 12 };

/** A soft label map: channels × cells, channel-major (channel c at [c·n, (c+1)·n)). */
export type SoftMap = Float64Array;

/**
 * Soft maps of frames 1..T−1 from frame 0's one-hot, for several *variants* of the sequence at
 * once (the observed one and the shuffled controls): in variant v, the token at grid position q of
 * frame t is the original token `order[v][t][q]` (identity for the observed sequence).
 * `similarities(t, f)` is the n × n cosine matrix between the original tokens of frames t and f
 * (row = frame t's token); it is asked for once per frame pair, shared by every variant.
 */
export function propagateVariants(frames: number, grid: Grid, similarities: (t: number, f: number) => Float64Array, order: readonly (readonly Int32Array[])[], first: SoftMap, channels: number, o: LabelPropagationOptions): SoftMap[][] {
  const n = grid.rows * grid.cols;
  const out: SoftMap[][] = order.map(() => []);
  const inWindow = (q: number, p: number) =>
    o.neighbourhood <= 0 || (Math.abs(Math.floor(q / grid.cols) - Math.floor(p / grid.cols)) <= o.neighbourhood && Math.abs((q % grid.cols) - (p % grid.cols)) <= o.neighbourhood);
  const window: number[][] = Array.from({ length: n }, (_, q) => Array.from({ length: n }, (_, p) => p).filter((p) => inWindow(q, p)));
  for (let t = 1; t < frames; t++) {
    const ctx = [0, ...Array.from({ length: Math.min(o.contextFrames, t - 1) }, (_, i) => t - 1 - i).reverse()];
    const sims = ctx.map((f) => similarities(t, f));
    order.forEach((perm, v) => {
      const maps = ctx.map((f) => (f === 0 ? first : out[v]![f - 1]!));
      const soft = new Float64Array(channels * n);
      const aff = new Float64Array(ctx.length * n);
      // The k largest affinities so far, descending (k is small: a sort per cell would dominate).
      const top = new Float64Array(o.topk);
      for (let q = 0; q < n; q++) {
        aff.fill(0);
        top.fill(0);
        const row = perm[t]![q]! * n;
        ctx.forEach((f, j) => {
          const pf = perm[f]!;
          for (const p of window[q]!) {
            const a = Math.exp(sims[j]![row + pf[p]!]! / o.temperature);
            aff[j * n + p] = a;
            if (a > top[o.topk - 1]!) {
              let at = o.topk - 1;
              while (at > 0 && top[at - 1]! < a) {
                top[at] = top[at - 1]!;
                at--;
              }
              top[at] = a;
            }
          }
        });
        // torch.topk over every context cell (zeros outside the window included), then keep >= the k-th
        // (affinities are > 0, so with fewer than k cells in the window the k-th is 0 and all are kept).
        const kth = top[o.topk - 1]!;
        let total = 0;
        for (let i = 0; i < aff.length; i++) {
          if (aff[i]! < kth) aff[i] = 0;
          total += aff[i]!;
        }
        for (let i = 0; i < aff.length; i++) {
          if (!aff[i]) continue;
          const w = aff[i]! / total;
          const j = Math.floor(i / n);
          const p = i % n;
          for (let c = 0; c < channels; c++) soft[c * n + q]! += w * maps[j]![c * n + p]!;
        }
      }
      out[v]!.push(soft);
    });
  }
  return out;
}

/** `norm_mask` then argmax over channels per pixel; NaN (cropped) pixels are background (0). */
export function argmaxChannels(upsampled: readonly Float64Array[]): Uint8Array {
  const pixels = upsampled[0]!.length;
  const normalised = upsampled.map((ch) => {
    let min = Infinity;
    let max = -Infinity;
    for (const v of ch) if (!Number.isNaN(v)) [min, max] = [Math.min(min, v), Math.max(max, v)];
    // DIFT's norm_mask: a channel with max > 0 is rescaled to [0, 1] (min subtracted first).
    if (!(max > 0)) return ch;
    const range = max - min;
    return ch.map((v) => (range > 0 ? (v - min) / range : 0));
  });
  const out = new Uint8Array(pixels);
  for (let i = 0; i < pixels; i++) {
    if (Number.isNaN(upsampled[0]![i]!)) continue;
    let best = 0;
    for (let c = 1; c < normalised.length; c++) if (normalised[c]![i]! > normalised[best]![i]!) best = c;
    out[i] = best;
  }
  return out;
}
