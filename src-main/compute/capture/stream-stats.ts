/**
 * Streaming statistics, in the compute worker: computed from each item's runtime outputs as
 * the item passes (nothing of the item is kept), so experiments that need only a statistic do
 * not store every tensor. Memory is bounded by the model and the number of image-token places,
 * never by the number of items (`retainedBytes` counts it; tests check it stays flat).
 *
 *  - keyVariance: per LLM layer l and image-token place j (image, tile, row, col — the same place
 *    in every item), Welford's running mean and sum of squared deviations of the key vector
 *    (every KV head concatenated), in float64; variance = Σ_d M2_d / n, the population variance
 *    summed over dimensions — key-tokens.ts's statistic, through the same accumulator
 *    (src-shared/metrics/running-variance.ts). Also the same for the VALUE at the first
 *    layer (the token's input, key-tokens' `inputNormalised`), and the mean key norm.
 *  - features: the mean hidden state per layer and place over items (probe features' means).
 *  - gram: per layer, the mean over items of Xᵀ X / T, X = the image tokens' hidden states [T, width].
 *
 * Accumulators live under the stream id (the run id) until a final flush: a run cancelled and
 * resumed in the same engine goes on accumulating; a worker restart loses them, and the flushed
 * result's item count then says so (streamed-key-variance.ts compares it with the run's).
 */
import { RunningVariance } from '../../../src-shared/metrics/running-variance.ts';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import { encodeSafetensors } from '../../../src-shared/tensor/safetensors.ts';
import { writeFileAtomicSync } from '../../util/atomic-write.ts';

export interface StreamSlot {
  /** The place's identity across items: `image:tile:row:col`, or `image:tile:p<k>` for prefix tokens. */
  key: string;
  position: number;
  image: number;
  tile: number;
  row: number;
  col: number;
}

export interface StreamRequest {
  id: string;
  /** This item's image tokens, with their places. */
  slots: StreamSlot[];
  /** Layers whose keys (`present.<l>.key`) feed the key variance; the first one's value is the input statistic. */
  keyVariance?: { layers: number[] };
  /** Hidden-state outputs [1, seq, width] whose mean per place is kept. */
  features?: { layer: number; source: string }[];
  /** Hidden-state outputs whose image-token Gram matrix Xᵀ X / T is averaged. */
  gram?: { layer: number; source: string }[];
}

/** Runtime outputs a stream request reads (the worker holds them for it, as for captures). */
export function streamSources(s: StreamRequest): string[] {
  const kv = s.keyVariance?.layers ?? [];
  return [...kv.map((l) => `present.${l}.key`), ...(kv.length ? [`present.${Math.min(...kv)}.value`] : []), ...(s.features ?? []).map((f) => f.source), ...(s.gram ?? []).map((g) => g.source)];
}

interface Place {
  slot: Omit<StreamSlot, 'position'>;
}

/** One stream's accumulators. */
export class StreamStats {
  items = 0;
  readonly places = new Map<string, Place>();
  /** layer → place key → running key statistics. */
  readonly keys = new Map<number, Map<string, RunningVariance>>();
  inputLayer: number | null = null;
  readonly input = new Map<string, RunningVariance>();
  /** layer → place key → running mean of the hidden state (Welford's mean; M2 unused). */
  readonly features = new Map<number, Map<string, RunningVariance>>();
  readonly gram = new Map<number, { n: number; width: number; sum: Float64Array }>();

  /** Bytes held by the accumulators (the bounded-memory check counts these, not RSS). */
  retainedBytes(): number {
    let b = 0;
    for (const m of [...this.keys.values(), this.input, ...this.features.values()]) for (const r of m.values()) b += r.bytes;
    for (const g of this.gram.values()) b += g.sum.byteLength;
    return b;
  }

  add(req: StreamRequest, outputs: (name: string) => HostTensor | undefined): void {
    this.items++;
    for (const s of req.slots) if (!this.places.has(s.key)) this.places.set(s.key, { slot: { key: s.key, image: s.image, tile: s.tile, row: s.row, col: s.col } });
    const need = (name: string) => {
      const t = outputs(name);
      if (!t) throw new Error(`streamed statistics: the forward pass produced no ${name}`);
      return t;
    };
    const perToken = (t: HostTensor, into: Map<string, RunningVariance>) => {
      // [1, kvHeads, seq, headDim] → one vector per image token, heads concatenated.
      const [, heads = 1, seq = 0, dim = 0] = t.shape;
      const f = toFloat32(t);
      const v = new Float32Array(heads * dim);
      for (const s of req.slots) {
        for (let h = 0; h < heads; h++) v.set(f.subarray((h * seq + s.position) * dim, (h * seq + s.position + 1) * dim), h * dim);
        let r = into.get(s.key);
        if (!r) into.set(s.key, (r = new RunningVariance(v.length)));
        if (r.width !== v.length) throw new Error(`streamed statistics: ${v.length} values per token, earlier items had ${r.width}`);
        r.add(v);
      }
    };
    if (req.keyVariance?.layers.length) {
      for (const l of req.keyVariance.layers) {
        let m = this.keys.get(l);
        if (!m) this.keys.set(l, (m = new Map()));
        perToken(need(`present.${l}.key`), m);
      }
      const first = Math.min(...req.keyVariance.layers);
      this.inputLayer ??= first;
      if (first === this.inputLayer) perToken(need(`present.${first}.value`), this.input);
    }
    for (const { layer, source } of req.features ?? []) {
      const t = need(source);
      const width = t.shape.at(-1)!;
      const f = toFloat32(t);
      let m = this.features.get(layer);
      if (!m) this.features.set(layer, (m = new Map()));
      for (const s of req.slots) {
        let r = m.get(s.key);
        if (!r) m.set(s.key, (r = new RunningVariance(width)));
        r.addAt(f, s.position * width);
      }
    }
    for (const { layer, source } of req.gram ?? []) {
      const t = need(source);
      const width = t.shape.at(-1)!;
      const f = toFloat32(t);
      let g = this.gram.get(layer);
      if (!g) this.gram.set(layer, (g = { n: 0, width, sum: new Float64Array(width * width) }));
      if (g.width !== width) throw new Error(`streamed Gram at layer ${layer}: width ${width}, earlier items ${g.width}`);
      // Upper triangle of Xᵀ X / T (mirrored on flush), summed over items.
      const T = req.slots.length;
      if (!T) continue;
      g.n++;
      for (const s of req.slots) {
        const row = s.position * width;
        for (let a = 0; a < width; a++) {
          const xa = f[row + a]! / T;
          if (xa === 0) continue;
          const base = a * width;
          for (let b = a; b < width; b++) g.sum[base + b]! += xa * f[row + b]!;
        }
      }
    }
  }

  /** The small per-run result: key variance as JSON (float64), feature means and Gram matrices as float32 tensors. */
  result(): { tensors: Record<string, HostTensor>; metadata: Record<string, string> } {
    const order = [...this.places.keys()];
    const tensors: Record<string, HostTensor> = {};
    const summary = (m: Map<string, RunningVariance>) => order.filter((k) => m.has(k)).map((k) => ({ key: k, n: m.get(k)!.n, variance: m.get(k)!.variance(), meanNorm: m.get(k)!.meanNorm() }));
    const keyVariance = this.keys.size
      ? { layers: [...this.keys.entries()].sort((a, b) => a[0] - b[0]).map(([layer, m]) => ({ layer, slots: summary(m) })), input: this.inputLayer === null ? null : { layer: this.inputLayer, slots: summary(this.input) } }
      : null;
    const features: { layer: number; slots: string[]; n: number[] }[] = [];
    for (const [layer, m] of [...this.features.entries()].sort((a, b) => a[0] - b[0])) {
      const keys = order.filter((k) => m.has(k));
      const width = m.get(keys[0]!)?.mean.length ?? 0;
      const data = new Float32Array(keys.length * width);
      keys.forEach((k, i) => data.set(m.get(k)!.mean, i * width));
      tensors[`mean_features.${layer}`] = { dtype: 'float32', shape: [keys.length, width], data };
      features.push({ layer, slots: keys, n: keys.map((k) => m.get(k)!.n) });
    }
    const gram: { layer: number; items: number }[] = [];
    for (const [layer, g] of [...this.gram.entries()].sort((a, b) => a[0] - b[0])) {
      const w = g.width;
      const data = new Float32Array(w * w);
      for (let a = 0; a < w; a++) for (let b = a; b < w; b++) data[a * w + b] = data[b * w + a] = g.sum[a * w + b]! / g.n;
      tensors[`gram.${layer}`] = { dtype: 'float32', shape: [w, w], data };
      gram.push({ layer, items: g.n });
    }
    const places = order.map((k) => this.places.get(k)!.slot);
    return { tensors, metadata: { items: String(this.items), places: JSON.stringify(places), keyVariance: JSON.stringify(keyVariance), features: JSON.stringify(features), gram: JSON.stringify(gram) } };
  }
}

const streams = new Map<string, StreamStats>();

export function accumulateStream(req: StreamRequest, outputs: (name: string) => HostTensor | undefined): void {
  let s = streams.get(req.id);
  if (!s) streams.set(req.id, (s = new StreamStats()));
  s.add(req, outputs);
}

export interface StreamFlushResult {
  items: number;
  bytes: number;
  retainedBytes: number;
}

/**
 * Writes the stream's result to `out` (atomically; a safetensors file) and, when `final`, drops
 * its accumulators. Null when this worker holds no such stream (nothing ran since it started).
 */
export function flushStream(id: string, out: string, final: boolean): StreamFlushResult | null {
  const s = streams.get(id);
  if (!s) return null;
  const { tensors, metadata } = s.result();
  const bytes = encodeSafetensors(tensors, metadata);
  mkdirSync(dirname(out), { recursive: true });
  writeFileAtomicSync(out, bytes);
  const retainedBytes = s.retainedBytes();
  if (final) streams.delete(id);
  return { items: s.items, bytes: bytes.byteLength, retainedBytes };
}
