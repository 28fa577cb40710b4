/**
 * Object-part identification through the LogitLens ("LLMs can compensate for deficient visual
 * representations"), over finished vlm-forward runs with `taps.llmLayers`:
 *
 *   for every item, part (mask label `<class>/<part>`, part-masks.ts) and LLM layer l = 0…L
 *   (`text.hidden_states.l`: 0 = the embeddings entering layer 0, L = the last layer's output
 *   before the final norm), the part's rank at l = the best rank, over the image tokens covering
 *   its mask, of the first token of its name in lm_head(final_norm(h)) — the decoder's own final
 *   norm and lm_head, cut out of its ONNX graph (engine/graph/logit-lens.ts);
 *
 * aggregated per part × layer and over all parts per layer (src-shared/metrics/logit-lens.ts).
 * Several runs of one model on one dataset (the intact run first, then runs with vision
 * self-attention ablations) are ranked on the items all of them finished, and each ablated run
 * gets the LLM's recovery per layer: (ablated − chance) / (intact − chance) of the top-k hit rate
 * (src-shared/metrics/recovery.ts; chance = k / vocab), with the paired change in hit rate over the
 * part instances both runs ranked: a percentile-bootstrap interval (bootstrap.ts) and McNemar's p.
 *
 * The lens reads the hidden states as stored: a run stored in float16 (the default storeDtype) is
 * ranked on float16-rounded states; use storeDtype float32 for exact ranks.
 */
import { join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { ResultOf } from '../../../src-shared/contract/methods.ts';
import { VlmForwardSpec } from '../../../src-shared/jobs/specs.ts';
import { bootstrapPairedDifferenceCI } from '../../../src-shared/metrics/bootstrap.ts';
import { LENS_RESAMPLES, bestRank, chanceHitRate, summarizeRanks, tokenRank } from '../../../src-shared/metrics/logit-lens.ts';
import { mcnemar } from '../../../src-shared/metrics/mcnemar.ts';
import { recovery } from '../../../src-shared/metrics/recovery.ts';
import { type HostTensor, float32ToFloat16, toFloat32 } from '../../../src-shared/tensor/dtype.ts';
import type { EngineContext } from '../../engine/engine-context.ts';
import { lensModelPath } from '../../engine/graph/logit-lens.ts';
import { openModelFolder } from '../../engine/model-folder.ts';
import { rewritableOnnxDir } from '../../engine/vlm/overlay.ts';
import { viewMapper } from '../../engine/vlm/pixel-maps.ts';
import { VlmProcessing } from '../../engine/vlm/processing.ts';
import { type PartName, type PartSkip, partTokens } from './part-masks.ts';

export interface PartsLensOptions {
  parts?: readonly string[];
  topK: number;
  perItem?: boolean;
}

type Result = ResultOf<'parts/logit-lens'>;

/** Logits handed back per lens call stay under this many floats (64 MB), whatever the vocabulary. */
const MAX_LOGITS = 1 << 24;

const HIDDEN = /^text\.hidden_states\.(\d+)$/;

/** A loaded lens: the decoder's final norm + lm_head as an ORT session in the compute worker. */
interface Lens {
  key: string;
  dtype: 'float32' | 'float16';
}

async function openLens(engine: EngineContext, decoder: string, modelHash: string): Promise<Lens> {
  const twin = rewritableOnnxDir({ cacheRoot: join(engine.options.dataDir, 'graph-cache'), modelHash })(decoder);
  const path = await lensModelPath(twin);
  const key = `logit-lens:${path}`;
  const info = await engine.compute.load(key, path);
  const dtype = info.inputs[0]?.dtype;
  if (dtype !== 'float32' && dtype !== 'float16') throw new LoupeError('bad-input', `LogitLens ${path}: input dtype ${String(dtype)}, float32 or float16 expected`);
  return { key, dtype };
}

/** Rows `rows` (sequence positions) of a [1, seq, hidden] hidden state, as float32. */
function gatherRows(t: HostTensor, rows: readonly number[]): Float32Array {
  const d = t.shape[t.shape.length - 1]!;
  const f = toFloat32(t);
  const out = new Float32Array(rows.length * d);
  rows.forEach((r, i) => out.set(f.subarray(r * d, (r + 1) * d), i * d));
  return out;
}

/** lm_head(final_norm(x)) for `n` rows of width `d`, in chunks that keep the logits under MAX_LOGITS; returns one logits row per input row. `vocabHint` 0 = not known yet. */
async function lensLogits(engine: EngineContext, lens: Lens, x: Float32Array, n: number, d: number, vocabHint: number): Promise<{ logits: Float32Array; vocab: number }> {
  // Until the vocabulary size is known (the first call), one row finds it out.
  const rowsPerCall = (v: number) => (v > 0 ? Math.max(1, Math.floor(MAX_LOGITS / v)) : 1);
  const parts: Float32Array[] = [];
  let vocab = vocabHint;
  for (let start = 0, chunk = rowsPerCall(vocab); start < n; start += chunk, chunk = rowsPerCall(vocab)) {
    const m = Math.min(chunk, n - start);
    const slice = x.slice(start * d, (start + m) * d);
    const data = lens.dtype === 'float32' ? slice : Uint16Array.from(slice, (v) => float32ToFloat16(v));
    const out = await engine.compute.run(lens.key, { hidden_state: { dtype: lens.dtype, shape: [1, m, d], data } });
    const logits = out.logits;
    if (!logits) throw new LoupeError('bad-input', 'the LogitLens returned no logits');
    vocab = logits.shape[logits.shape.length - 1]!;
    parts.push(toFloat32(logits));
  }
  const all = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return { logits: all, vocab };
}

interface RunRanks {
  runId: string;
  /** item → part name → per layer best rank. */
  ranks: Map<string, Map<string, number[]>>;
  layers: number;
}

interface Context {
  parts: Map<string, { text: string; tokenId: number; token: string }>;
  /** Per part name: its token, or why it cannot be ranked. */
  tokens: Map<string, { tokenId: number; token: string } | { reason: string }>;
  skipped: (PartSkip & { runId: string; itemId: string })[];
  vocab: number;
}

/**
 * First token of a part's name, or why it cannot be ranked: a name the tokenizer maps to nothing
 * or to its unknown token (word-level vocabularies) says nothing about the part, so such parts are
 * reported in `skipped`, not ranked.
 */
function partToken(processing: VlmProcessing, part: PartName, modelId: string): { tokenId: number; token: string } | { reason: string } {
  const tokenId = processing.tokenIdsOf(part.text)[0];
  const unk = (processing.tokenizer as unknown as { unk_token_id?: number | null }).unk_token_id;
  if (tokenId === undefined) return { reason: `its name "${part.text}" tokenizes to nothing with model ${modelId}'s tokenizer` };
  if (unk !== undefined && unk !== null && tokenId === unk) return { reason: `"${part.text}" is not in model ${modelId}'s vocabulary (its first token is the unknown token ${unk})` };
  return { tokenId, token: processing.tokenizer.decode([tokenId], { skip_special_tokens: false }) };
}

async function rankRun(engine: EngineContext, runId: string, o: PartsLensOptions, ctx: Context, lens: Lens, processing: VlmProcessing, items: Set<string> | undefined): Promise<RunRanks> {
  const { store } = engine;
  const run = store.runs.get(runId);
  const dataset = store.datasets.get(run.datasetId);
  const folder = openModelFolder(store.models.get(run.modelId).path);
  const view = viewMapper(folder);
  const ranks = new Map<string, Map<string, number[]>>();
  let layers = 0;
  for (const result of store.runs.results(runId)) {
    if (items && !items.has(result.itemId)) continue;
    const names = result.tensors.map((t) => t.name);
    if (!names.includes('image_token_map') || !names.some((n) => HIDDEN.test(n))) continue;
    const item = store.datasets.item(run.datasetId, result.itemId);
    const tensors: Record<string, HostTensor> = {};
    for (const blob of new Set(result.tensors.map((t) => t.blob))) Object.assign(tensors, store.blobs.getTensors(blob));
    const { parts: found, skipped } = partTokens(item, dataset.path, tensors.image_token_map!.data as Int32Array, view, o.parts);
    for (const s of skipped) ctx.skipped.push({ ...s, runId, itemId: result.itemId });
    const parts = found.filter((p) => {
      let t = ctx.tokens.get(p.part.name);
      if (!t) ctx.tokens.set(p.part.name, (t = partToken(processing, p.part, run.modelId)));
      if ('reason' in t) ctx.skipped.push({ part: p.part.name, reason: t.reason, runId, itemId: result.itemId });
      else if (!ctx.parts.has(p.part.name)) ctx.parts.set(p.part.name, { text: p.part.text, ...t });
      return !('reason' in t);
    });
    if (!parts.length) continue;
    const hidden = Object.keys(tensors)
      .flatMap((n) => {
        const m = HIDDEN.exec(n);
        return m ? [{ layer: Number(m[1]), t: tensors[n]! }] : [];
      })
      .sort((a, b) => a.layer - b.layer);
    if (hidden.some((h, i) => h.layer !== i)) throw new LoupeError('bad-input', `run ${runId} item ${result.itemId}: LLM hidden states ${hidden.map((h) => h.layer).join(',')} are not layers 0…L`);
    layers = hidden.length;
    // Every needed position at every layer, in one batch of rows: layer-major, positions ascending.
    const positions = [...new Set(parts.flatMap((p) => p.positions))].sort((a, b) => a - b);
    const d = hidden[0]!.t.shape[hidden[0]!.t.shape.length - 1]!;
    const x = new Float32Array(hidden.length * positions.length * d);
    hidden.forEach((h, l) => x.set(gatherRows(h.t, positions), l * positions.length * d));
    const { logits, vocab } = await lensLogits(engine, lens, x, hidden.length * positions.length, d, ctx.vocab);
    ctx.vocab = vocab;
    const row = new Map(positions.map((pos, i) => [pos, i]));
    const byPart = new Map<string, number[]>();
    for (const p of parts) {
      const { tokenId } = ctx.parts.get(p.part.name)!;
      const perLayer = hidden.map((_, l) => bestRank(p.positions.map((pos) => tokenRank(logits, tokenId, vocab, (l * positions.length + row.get(pos)!) * vocab))));
      // Two labels with one name on one item (two wheels): both instances count.
      const key = byPart.has(p.part.name) ? `${p.part.name}\u0000${byPart.size}` : p.part.name;
      byPart.set(key, perLayer);
    }
    ranks.set(result.itemId, byPart);
  }
  return { runId, ranks, layers };
}

const partOf = (key: string) => key.split('\u0000')[0]!;

/** Per-layer ranks of the part instances two runs both ranked (same item, same part label), in a fixed order. */
function pairedInstances(a: RunRanks, b: RunRanks): [number[], number[]][] {
  const out: [number[], number[]][] = [];
  for (const [itemId, parts] of a.ranks) {
    const other = b.ranks.get(itemId);
    if (!other) continue;
    for (const [key, ranks] of parts) {
      const r = other.get(key);
      if (r) out.push([ranks, r]);
    }
  }
  return out;
}

function summarise(r: RunRanks, topK: number): Result['runs'][number] {
  const rows: Result['runs'][number]['rows'] = [];
  const overall: Result['runs'][number]['overall'] = [];
  const byPart = new Map<string, number[][]>();
  for (const parts of r.ranks.values()) {
    for (const [key, perLayer] of parts) {
      const list = byPart.get(partOf(key)) ?? [];
      list.push(perLayer);
      byPart.set(partOf(key), list);
    }
  }
  for (const [part, instances] of [...byPart.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    for (let l = 0; l < r.layers; l++) rows.push({ part, layer: l, ...summarizeRanks(instances.map((i) => i[l]!), topK) });
  }
  const all = [...byPart.values()].flat();
  for (let l = 0; l < r.layers; l++) overall.push({ layer: l, ...summarizeRanks(all.map((i) => i[l]!), topK) });
  return { runId: r.runId, items: r.ranks.size, rows, overall };
}

export async function partsLogitLens(engine: EngineContext, runIds: readonly string[], o: PartsLensOptions): Promise<Result> {
  const { store } = engine;
  if (!runIds.length) throw new LoupeError('bad-input', 'parts/logit-lens needs at least one run');
  const runs = runIds.map((id) => store.runs.get(id));
  const first = runs[0]!;
  for (const run of runs) {
    if (run.kind !== 'vlm-forward') throw new LoupeError('bad-input', `run ${run.id} is a ${run.kind} run; the object-part LogitLens reads vlm-forward runs with taps.llmLayers`);
    const spec = VlmForwardSpec.parse(run.spec);
    if (!spec.taps.llmLayers) throw new LoupeError('bad-input', `run ${run.id} captured no LLM hidden states: run vlm-forward with taps.llmLayers (--spec '{"taps":{"llmLayers":true}}', storeDtype float32 for exact ranks)`);
    if (spec.image !== 'image') throw new LoupeError('bad-input', `run ${run.id} is blind (image: ${spec.image}): it has no image tokens over the parts`);
    if (run.modelId !== first.modelId || run.datasetId !== first.datasetId) throw new LoupeError('bad-input', `run ${run.id} (model ${run.modelId}, dataset ${run.datasetId}) is not on run ${first.id}'s model ${first.modelId} and dataset ${first.datasetId}; compared runs must share both`);
  }
  // Items every run finished, so intact and ablated ranks are over the same parts.
  const done = runs.map((r) => new Set(store.runs.results(r.id).map((x) => x.itemId)));
  const shared = runs.length > 1 ? new Set([...done[0]!].filter((i) => done.every((s) => s.has(i)))) : undefined;
  const model = store.models.get(first.modelId);
  // The lens is the run's own decoder file (its dtype variant), unablated: ablations edit attention only.
  const folder = openModelFolder(model.path, VlmForwardSpec.parse(first.spec).variant);
  const lens = await openLens(engine, folder.files.decoder_model_merged, model.hash);
  const processing = await VlmProcessing.load(folder.path, folder.preprocessor, folder.family);
  const ctx: Context = { parts: new Map(), tokens: new Map(), skipped: [], vocab: 0 };
  const ranked: RunRanks[] = [];
  for (const id of runIds) ranked.push(await rankRun(engine, id, o, ctx, lens, processing, shared));
  if (!ranked[0]!.ranks.size) {
    throw new LoupeError(
      'bad-input',
      `run ${first.id} has no item with a part to rank: parts are mask labels named <class>/<part>${o.parts ? ` (selected: ${o.parts.join(', ')})` : ''} whose mask covers at least one image token and whose name the tokenizer knows${ctx.skipped.length ? `; skipped: ${ctx.skipped.slice(0, 3).map((s) => `${s.itemId} ${s.part}: ${s.reason}`).join('; ')}` : ''}`,
    );
  }
  const summaries = ranked.map((r) => summarise(r, o.topK));
  const chance = chanceHitRate(o.topK, ctx.vocab);
  const intact = summaries[0]!;
  return {
    topK: o.topK,
    vocab: ctx.vocab,
    chance,
    sharedItems: shared ? shared.size : null,
    parts: [...ctx.parts.entries()].map(([part, p]) => ({ part, ...p })).sort((a, b) => a.part.localeCompare(b.part)),
    runs: summaries,
    recovery: summaries.slice(1).map((s, r) => {
      const pairs = pairedInstances(ranked[0]!, ranked[r + 1]!);
      return {
        runId: s.runId,
        pairs: pairs.length,
        layers: s.overall.map((a, l) => {
          const i = intact.overall[l];
          // Paired over the part instances both runs ranked: hits at this layer, intact vs ablated.
          const hitI = pairs.map(([x]) => (x[l]! <= o.topK ? 1 : 0));
          const hitA = pairs.map(([, y]) => (y[l]! <= o.topK ? 1 : 0));
          const diff = pairs.length ? bootstrapPairedDifferenceCI(hitA, hitI, { resamples: LENS_RESAMPLES }) : null;
          return {
            layer: l,
            intactHitRate: i?.hitRate ?? null,
            ablatedHitRate: a.hitRate,
            recovery: i ? recovery(a.hitRate, i.hitRate, chance) : null,
            intactMedianRank: i?.medianRank ?? null,
            ablatedMedianRank: a.medianRank,
            hitRateDiff: diff && { estimate: diff.estimate, low: diff.low, high: diff.high },
            mcnemarP: pairs.length ? mcnemar(hitI, hitA).pValue : null,
          };
        }),
      };
    }),
    skipped: ctx.skipped.slice(0, 200),
    skippedCount: ctx.skipped.length,
    ...(o.perItem && { instances: ranked.flatMap((r) => [...r.ranks].flatMap(([itemId, parts]) => [...parts].map(([key, ranks]) => ({ runId: r.runId, itemId, part: partOf(key), ranks })))) }),
  };
}
