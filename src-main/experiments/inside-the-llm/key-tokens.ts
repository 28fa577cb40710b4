/**
 * Input-agnostic key tokens ("Visual representations inside the language model"): image-token
 * positions whose KEY vectors barely change from one input to the next — artifact-like tokens
 * that soak up attention — found from a finished vlm-forward run with image K/V
 * (`image_kv.<layer>.key` [kvHeads, nImageTokens, headDim] + `image_token_map`), and the
 * attention-blocking spec that removes them from the text's view.
 *
 * The statistic, per LLM layer l and image-token slot j (a slot is a place on the patch grid:
 * image, tile, row, col — the same place in every item):
 *   variance(l, j) = (1/N) Σ_items ‖k_i − k̄‖²
 *     the population variance of the key vector across the N items that have the slot, summed
 *     over every dimension of every KV head (= the trace of the key's covariance).
 *   normalised(l, j) = variance(l, j) / mean_j' variance(l, j')
 *     divided by the layer's mean per-token variance: layers differ in key scale by orders of
 *     magnitude (RMSNorm gains, RoPE does not change norms), so raw variances are comparable only
 *     within a layer; 1 = an ordinary token of its layer, ≈ 0 = the same key whatever the image.
 *   z(l, j) = (variance − layer mean) / layer standard deviation (population, over the layer's
 *     tokens) — how many sds below the layer's typical token it sits (0 when all are equal).
 * Flag rule (outliers): variance(l, j) < threshold × median_j' variance(l, j') (default threshold
 * 0.25: a quarter of the layer's median). The median, not the mean, is the reference because a
 * few huge-variance tokens inflate the mean; strict "<" so a layer of identical variances (or a
 * zero median) flags nothing. Slots present in fewer than 2 items are left out (no variance).
 * Input variation: a key can also be constant because the token's input is — a place that is
 * plain background in every image of a synthetic set. `inputNormalised` tells the two apart: the
 * same normalised variance for the slot's VALUE at the first stored LLM layer, which depends only
 * on the token's own embedding (the projected patch). Input-agnostic proper = key variance low
 * while inputNormalised is ordinary (≈ 1); both low = the content there never changes. With
 * `inputFloor` > 0 a token is flagged only when also inputNormalised ≥ inputFloor (default 0: off).
 * Mean attention received (when the run captured `text.attentions.<l>` [1, heads, q, k]): per
 * item, the mean over query heads and over text query positions after the token of the
 * probability of attending to it; then the mean over items. null without attention taps.
 *
 * The blocking spec: for each layer with flagged tokens, block attention from every text
 * position (prompt text and generated tokens) to those tokens' patches in that layer
 * (`patches` indices, row-major in the image's grid). The spec language addresses patches by
 * grid index, so in a multi-image (or tiled) prompt a patch flagged in one image is blocked in
 * every image; flagged prefix tokens (a kept CLS, row −1) are blocked as `cls` (every prefix token).
 * Layers with the same flagged set share one edit.
 */
import type { RunInfo } from '../../../src-shared/contract/domain.ts';
import { RunningVariance } from '../../../src-shared/metrics/running-variance.ts';
import type { AblationSpec, TokenSet } from '../../../src-shared/ablation/spec.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type VlmForwardSpec, VlmForwardSpec as VlmForwardSpecSchema } from '../../../src-shared/jobs/specs.ts';
import { type HostTensor, toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import type { Store } from '../../store/store.ts';
import { streamedKeyTokens } from './streamed-key-variance.ts';

export const DEFAULT_THRESHOLD = 0.25;
export const DEFAULT_MAX_PER_LAYER = 5;

export const FLAG_RULE =
  'flagged: variance < threshold × the layer\'s median token variance, and inputNormalised ≥ inputFloor when inputFloor > 0 (variance = mean over items of ‖key − mean key‖², all KV heads; normalised = variance / layer mean variance; z = (variance − layer mean) / layer sd; inputNormalised = the same normalised variance of the slot\'s first-layer value, i.e. of its input embedding)';

export function median(values: readonly number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface LayerStats {
  mean: number;
  median: number;
  sd: number;
  normalised: number[];
  z: number[];
  flagged: boolean[];
}

/** The layer-level normalisation and the flag rule over one layer's per-token variances. */
export function layerStats(variances: readonly number[], threshold = DEFAULT_THRESHOLD): LayerStats {
  const n = variances.length;
  const mean = n ? variances.reduce((s, v) => s + v, 0) / n : NaN;
  const sd = n ? Math.sqrt(variances.reduce((s, v) => s + (v - mean) ** 2, 0) / n) : NaN;
  const med = median(variances);
  return {
    mean,
    median: med,
    sd,
    normalised: variances.map((v) => (mean > 0 ? v / mean : 0)),
    z: variances.map((v) => (sd > 0 ? (v - mean) / sd : 0)),
    flagged: variances.map((v) => med > 0 && v < threshold * med),
  };
}

/** Token `j`'s vector of a [heads, n, dim] tensor, heads concatenated. */
export function tokenVector(t: HostTensor, j: number, f: Float32Array = toFloat32(t)): Float32Array {
  const [heads = 1, n = 0, dim = 0] = t.shape;
  const out = new Float32Array(heads * dim);
  for (let h = 0; h < heads; h++) out.set(f.subarray((h * n + j) * dim, (h * n + j + 1) * dim), h * dim);
  return out;
}

export interface KeyTokenRow {
  layer: number;
  image: number;
  tile: number;
  /** −1 for prefix tokens (e.g. a kept CLS). */
  row: number;
  col: number;
  /** Row-major patch index in its image's (tile's) grid; −1 for prefix tokens. */
  patch: number;
  items: number;
  variance: number;
  normalised: number;
  z: number;
  meanNorm: number;
  /** Normalised variance of the slot's first-layer value (its input) across items; null when not stored. */
  inputNormalised: number | null;
  /** Mean attention from text queries after the token (null: the run captured no attention). */
  attention: number | null;
  flagged: boolean;
}

export interface KeyTokenLayer {
  layer: number;
  tokens: number;
  meanVariance: number;
  medianVariance: number;
  flagged: number;
}

export interface KeyTokensResult {
  runId: string;
  items: number;
  threshold: number;
  inputFloor: number;
  rule: string;
  layers: KeyTokenLayer[];
  /** Per layer, the lowest-variance tokens: at least `maxPerLayer`, and every flagged one. Sorted by layer, then variance. */
  tokens: KeyTokenRow[];
  /** Blocks text → the flagged tokens in their layers; null when nothing is flagged. */
  ablation: AblationSpec | null;
  /** The same run (model, dataset, spec) with that ablation added: pass to `jobs/start`. */
  blockingRun: { kind: 'vlm-forward'; modelId: string; datasetId: string; name: string; spec: VlmForwardSpec } | null;
}

interface Slot {
  image: number;
  tile: number;
  row: number;
  col: number;
  patch: number;
}

/** Slots of one item's image_token_map (rows position, image, tile, row, col), with their patch index. */
function slotsOf(map: Int32Array): { key: string; slot: Slot; position: number }[] {
  const n = map.length / 5;
  const cols = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    const key = `${map[k * 5 + 1]}:${map[k * 5 + 2]}`;
    cols.set(key, Math.max(cols.get(key) ?? 0, map[k * 5 + 4]! + 1));
  }
  return Array.from({ length: n }, (_, k) => {
    const [position, image, tile, row, col] = [map[k * 5]!, map[k * 5 + 1]!, map[k * 5 + 2]!, map[k * 5 + 3]!, map[k * 5 + 4]!];
    const patch = row < 0 ? -1 : row * cols.get(`${image}:${tile}`)! + col;
    // Prefix tokens have row = col = −1; tell several apart by their order within the image.
    const key = row < 0 ? `${image}:${tile}:p${k}` : `${image}:${tile}:${row}:${col}`;
    return { key, slot: { image, tile, row, col, patch }, position };
  });
}

/** Blocking edits: one per distinct flagged set, listing the layers that share it. */
export function blockingSpec(flagged: ReadonlyMap<number, readonly Slot[]>): AblationSpec | null {
  const bySet = new Map<string, { layers: number[]; keys: TokenSet[] }>();
  for (const [layer, slots] of [...flagged.entries()].sort((a, b) => a[0] - b[0])) {
    if (!slots.length) continue;
    const patches = [...new Set(slots.filter((s) => s.patch >= 0).map((s) => s.patch))].sort((a, b) => a - b);
    const keys: TokenSet[] = [];
    if (patches.length) keys.push({ kind: 'patches', indices: patches });
    if (slots.some((s) => s.patch < 0)) keys.push({ kind: 'cls' });
    const id = JSON.stringify(keys);
    const e = bySet.get(id) ?? { layers: [], keys };
    e.layers.push(layer);
    bySet.set(id, e);
  }
  const edits = [...bySet.values()].flatMap(({ layers, keys }) =>
    keys.map((k) => ({ op: 'block' as const, part: 'llm' as const, layers, heads: 'all' as const, queries: { kind: 'text' as const }, keys: k, excludeSelf: false })),
  );
  if (!edits.length) return null;
  if (edits.length > 64) throw new LoupeError('bad-input', `the flagged key tokens need ${edits.length} distinct blocking edits, more than an ablation spec holds (64): raise the bar with a lower threshold`);
  return { edits };
}

export interface KeyTokenOptions {
  /** Tokens listed per layer (every flagged token is listed too). */
  maxPerLayer?: number;
  /** Flag tokens with variance < threshold × the layer's median. */
  threshold?: number;
  /** Also require inputNormalised ≥ inputFloor (0 = no such condition). */
  inputFloor?: number;
}

export function keyTokens(store: Store, runId: string, options: KeyTokenOptions = {}): KeyTokensResult {
  const maxPerLayer = options.maxPerLayer ?? DEFAULT_MAX_PER_LAYER;
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const inputFloor = options.inputFloor ?? 0;
  const run = store.runs.get(runId);
  if (run.kind !== 'vlm-forward') throw new LoupeError('bad-input', `run ${runId} is a ${run.kind} run; key tokens are found in vlm-forward runs with taps.imageKV`);
  if ((run.spec as { imagesAlone?: boolean }).imagesAlone) {
    throw new LoupeError('bad-input', `run ${runId} took each image's K/V from its own pass (imagesAlone); key tokens and the text → token blocking they propose need the one prompt's K/V and positions: run without imagesAlone`);
  }
  const acc = new Map<number, Map<string, { slot: Slot; w: RunningVariance; att: number; attItems: number }>>();
  const input = new Map<string, RunningVariance>();
  let inputLayer: number | undefined;
  let items = 0;
  let withAttention = false;
  for (const result of store.runs.results(runId)) {
    const names = result.tensors.map((t) => t.name);
    if (!names.includes('image_token_map') || !names.some((n) => /^image_kv\.\d+\.key$/.test(n))) continue;
    const tensors: Record<string, HostTensor> = {};
    for (const blob of new Set(result.tensors.map((t) => t.blob))) Object.assign(tensors, store.blobs.getTensors(blob));
    const slots = slotsOf(tensors.image_token_map!.data as Int32Array);
    const imagePositions = new Set(slots.map((s) => s.position));
    items++;
    // The slot's input: its value at the first stored LLM layer (a function of its own embedding alone).
    const first = Math.min(...Object.keys(tensors).flatMap((n) => /^image_kv\.(\d+)\.value$/.exec(n)?.[1] ?? []).map(Number));
    inputLayer ??= first;
    const v0 = Number.isFinite(first) && first === inputLayer ? tensors[`image_kv.${first}.value`] : undefined;
    if (v0 && v0.shape[1] === slots.length) {
      const f = toFloat32(v0);
      slots.forEach(({ key }, j) => {
        let w = input.get(key);
        if (!w) input.set(key, (w = new RunningVariance(v0.shape[0]! * v0.shape[2]!)));
        w.add(tokenVector(v0, j, f));
      });
    }
    for (const [name, t] of Object.entries(tensors)) {
      const m = /^image_kv\.(\d+)\.key$/.exec(name);
      if (!m) continue;
      const layer = Number(m[1]);
      if (t.shape.length !== 3 || t.shape[1] !== slots.length) throw new LoupeError('bad-input', `${name} of item ${result.itemId} has shape [${t.shape.join(', ')}], not [kvHeads, ${slots.length} image tokens, headDim]`);
      const f = toFloat32(t);
      const width = t.shape[0]! * t.shape[2]!;
      let perLayer = acc.get(layer);
      if (!perLayer) acc.set(layer, (perLayer = new Map()));
      const att = tensors[`text.attentions.${layer}`];
      const attData = att && att.shape.length === 4 && att.shape[2] === att.shape[3] ? toFloat32(att) : undefined;
      if (attData) withAttention = true;
      slots.forEach(({ key, slot, position }, j) => {
        let a = perLayer.get(key);
        if (!a) perLayer.set(key, (a = { slot, w: new RunningVariance(width), att: 0, attItems: 0 }));
        if (a.w.width !== width) throw new LoupeError('bad-input', `${name} of item ${result.itemId} has ${width} key values per token, other items ${a.w.width}`);
        a.w.add(tokenVector(t, j, f));
        if (attData) {
          const [, heads = 1, q = 0] = att!.shape;
          let sum = 0;
          let count = 0;
          for (let qi = position + 1; qi < q; qi++) {
            if (imagePositions.has(qi)) continue;
            for (let h = 0; h < heads; h++) sum += attData[(h * q + qi) * q + position]!;
            count += heads;
          }
          if (count) {
            a.att += sum / count;
            a.attItems++;
          }
        }
      });
    }
  }
  if (items === 0) {
    // A run that stored no K/V may have streamed the key variance instead (spec.stream.keyVariance).
    const streamed = streamedKeyTokens(store, runId, options);
    if (streamed) return streamed;
  }
  if (items === 0) throw new LoupeError('bad-input', `run ${runId} captured no image keys: run vlm-forward with taps.imageKV (--spec '{"taps":{"imageKV":true}}') or stream the statistic (--spec '{"stream":{"keyVariance":true}}')`);
  if (items < 2) throw new LoupeError('bad-input', `run ${runId} has image K/V for ${items} item; the key variance across inputs needs at least 2 (many more for a stable ranking)`);

  const inputKeys = [...input.entries()].filter(([, w]) => w.n >= 2);
  const inputStats = layerStats(inputKeys.map(([, w]) => w.variance()));
  const inputNormalised = new Map(inputKeys.map(([k], i) => [k, inputStats.normalised[i]!]));
  const perLayer = [...acc.keys()]
    .sort((a, b) => a - b)
    .map((layer) => {
      const entries = [...acc.get(layer)!.entries()].filter(([, a]) => a.w.n >= 2);
      const variances = entries.map(([, a]) => a.w.variance());
      const stats = layerStats(variances, threshold);
      const rows: KeyTokenRow[] = entries.map(([key, a], i) => ({
        layer,
        ...a.slot,
        items: a.w.n,
        variance: variances[i]!,
        normalised: stats.normalised[i]!,
        z: stats.z[i]!,
        meanNorm: a.w.meanNorm(),
        inputNormalised: inputNormalised.get(key) ?? null,
        attention: withAttention && a.attItems ? a.att / a.attItems : null,
        flagged: stats.flagged[i]! && (inputFloor <= 0 || (inputNormalised.get(key) ?? Infinity) >= inputFloor),
      }));
      return { layer, rows, stats };
    });
  return { runId, items, threshold, inputFloor, rule: FLAG_RULE, ...rankLayers(run, perLayer, maxPerLayer) };
}

/**
 * From each layer's rows (any order) to the result both paths report (stored K/V above, streamed
 * statistics in streamed-key-variance.ts): rows sorted by variance (ties by place), the layer
 * summaries, the rows shown (at least `maxPerLayer`, and every flagged one), the blocking spec of
 * the flagged places and the run that applies it.
 */
export function rankLayers(run: RunInfo, perLayer: readonly { layer: number; rows: KeyTokenRow[]; stats: LayerStats }[], maxPerLayer: number): Pick<KeyTokensResult, 'layers' | 'tokens' | 'ablation' | 'blockingRun'> {
  const layers: KeyTokenLayer[] = [];
  const tokens: KeyTokenRow[] = [];
  const flagged = new Map<number, KeyTokenRow[]>();
  for (const { layer, rows, stats } of perLayer) {
    const all = [...rows].sort((x, y) => x.variance - y.variance || x.image - y.image || x.tile - y.tile || x.row - y.row || x.col - y.col);
    const nFlagged = all.filter((r) => r.flagged).length;
    tokens.push(...all.slice(0, Math.max(maxPerLayer, nFlagged)));
    flagged.set(layer, all.filter((r) => r.flagged));
    layers.push({ layer, tokens: all.length, meanVariance: stats.mean, medianVariance: stats.median, flagged: nFlagged });
  }
  const ablation = blockingSpec(flagged);
  let blockingRun: KeyTokensResult['blockingRun'] = null;
  if (ablation) {
    const spec = VlmForwardSpecSchema.parse(run.spec);
    // Edits the run already had stay: the blocking run differs from this one by the key-token block alone.
    const edits = [...(spec.ablation?.edits ?? []), ...ablation.edits];
    if (edits.length > 64) throw new LoupeError('bad-input', `run ${run.id} already has ${spec.ablation!.edits.length} ablation edits; adding ${ablation.edits.length} exceeds the 64 a spec holds`);
    blockingRun = { kind: 'vlm-forward', modelId: run.modelId, datasetId: run.datasetId, name: `${run.name} · key tokens blocked`, spec: { ...spec, ablation: { edits } } };
  }
  return { layers, tokens, ablation, blockingRun };
}
