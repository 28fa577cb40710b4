/**
 * The VLM forward pass, run entirely inside the compute worker so that image features
 * and the KV cache never cross a thread boundary between steps:
 * embed_tokens → vision_encoder → scatter image features into the image-token rows
 * (as transformers.js does) → decoder prefill (zero-length past) → greedy decode with KV cache.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import * as ort from 'onnxruntime-node';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { visionInputName } from './vision-inputs.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../../src-shared/tensor/dtype.ts';
import { biasFeeds, llmStepLayout } from './ablation-feeds.ts';
import type { VlmOpenRequest, VlmRunRequest, VlmRunResult } from './types.ts';
import { captureSources, storeCapture } from '../capture/store-capture.ts';

type Session = ort.InferenceSession;

export interface OpenVlm {
  open: VlmOpenRequest;
  vision: Session;
  embed: Session;
  decoder: Session;
  /** Why captured outputs are no longer given shared buffers for this model (the runtime refused one), if it did. */
  noSharedOutputs?: string;
}

/**
 * Shared-memory buffers for the runtime to write captured fp16 K/V into (ORT fills pre-allocated
 * outputs in place): the store then writes and hashes the image rows as views of them, with no
 * copy for the hashing thread (capture-ops captureViews). Only outputs whose shape is known before
 * the run: `loupe_fp16:present.N.key|value` ([1, kv heads, seq, head dim], checked against the
 * decoder's metadata for present.N.*) and fp16 hidden-state taps ([1, seq, hidden]); anything else
 * is left to the runtime to allocate.
 */
function sharedCaptureOutputs(vlm: OpenVlm, names: string[], seq: number, hiddenStates: { sources: Set<string>; width: number }): Map<string, ort.Tensor> {
  const out = new Map<string, ort.Tensor>();
  if (vlm.noSharedOutputs || typeof SharedArrayBuffer !== 'function') return out;
  const { numKeyValueHeads: heads, headDim } = vlm.open;
  const shared = (dims: number[]) => new ort.Tensor('float16', new Uint16Array(new SharedArrayBuffer(dims.reduce((a, b) => a * b, 1) * 2)), dims);
  for (const name of names) {
    // Residual-stream taps stored as fp16 ([1, seq, hidden] as the embeddings): a wrong guess is refused by ORT and falls back.
    if (name.startsWith('loupe_fp16:') && hiddenStates.sources.has(name)) {
      out.set(name, shared([1, seq, hiddenStates.width]));
      continue;
    }
    const m = /^loupe_fp16:(present\.\d+\.(?:key|value))$/.exec(name);
    if (!m) continue;
    const meta = vlm.decoder.outputMetadata.find((x) => x.name === m[1]);
    if (!meta?.isTensor || meta.shape.length !== 4) continue;
    const fits = (dim: unknown, n: number) => typeof dim !== 'number' || dim === n;
    if (!fits(meta.shape[0], 1) || !fits(meta.shape[1], heads) || !fits(meta.shape[3], headDim)) continue;
    out.set(name, shared([1, heads, seq, headDim]));
  }
  return out;
}

function meta(s: Session, name: string): ort.InferenceSession.TensorValueMetadata {
  const m = s.inputMetadata.find((x) => x.name === name);
  if (!m || !m.isTensor) throw new Error(`decoder has no tensor input ${name}`);
  return m;
}

const toHost = (t: ort.Tensor): HostTensor => ({ dtype: t.type as HostTensor['dtype'], shape: [...t.dims], data: t.data as HostTensor['data'] });

/** Float view of an ORT float tensor whatever its storage (fp16 is kept as raw bits by ORT). */
function floats(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, float16ToFloat32);
  throw new Error(`expected a float tensor, got ${t.type}`);
}

function floatTensor(type: string, values: Float32Array, dims: number[]): ort.Tensor {
  if (type === 'float16') return new ort.Tensor('float16', Uint16Array.from(values, float32ToFloat16), dims);
  return new ort.Tensor('float32', values, dims);
}

/** Writes image feature rows into the rows of `embeds` where input_ids == image token, in order. */
export function scatterImageFeatures(embeds: Float32Array, ids: BigInt64Array, hidden: number, features: Float32Array, imageTokenId: number): number {
  let row = 0;
  const rows = features.length / hidden;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] !== BigInt(imageTokenId)) continue;
    if (row >= rows) throw new Error(`prompt has more image tokens than the vision encoder produced features (${rows})`);
    embeds.set(features.subarray(row * hidden, (row + 1) * hidden), i * hidden);
    row++;
  }
  if (row !== rows) throw new Error(`number of image tokens (${row}) and image features (${rows}) do not match`);
  return row;
}

export async function openVlm(open: VlmOpenRequest, options: ort.InferenceSession.SessionOptions): Promise<OpenVlm> {
  const [vision, embed, decoder] = await Promise.all([
    ort.InferenceSession.create(open.files.vision, options),
    ort.InferenceSession.create(open.files.embed, options),
    ort.InferenceSession.create(open.files.decoder, options),
  ]);
  checkDecoderAgainstConfig(open, decoder);
  return { open, vision, embed, decoder };
}

/**
 * config.json is only a description; the decoder graph is what runs. Its KV cache inputs
 * (`past_key_values.N.key/value`) say how many layers and what KV width it really has — a config
 * that disagrees (an edited or mismatched file) would mislabel every tap and K/V tensor, so it is
 * refused here, naming both numbers, before any item runs.
 */
function checkDecoderAgainstConfig(open: VlmOpenRequest, decoder: ort.InferenceSession): void {
  const keys = decoder.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n));
  if (!keys.length) return; // no cache inputs (a decoder without past): nothing to compare
  const where = `decoder ${open.files.decoder}`;
  if (open.numLayers !== undefined && keys.length !== open.numLayers) {
    throw new LoupeError('bad-input', `config.json says the language model has ${open.numLayers} layers (num_hidden_layers) but ${where} has ${keys.length} (past_key_values.N.key inputs); the config does not describe this export`);
  }
  const m = meta(decoder, keys[0]!);
  const kvHeads = m.shape[1];
  const headDim = m.shape[3];
  if (typeof kvHeads === 'number' && kvHeads !== open.numKeyValueHeads) {
    throw new LoupeError('bad-input', `config.json gives ${open.numKeyValueHeads} key/value heads (num_key_value_heads or num_attention_heads) but ${where} caches ${kvHeads} (${keys[0]} shape)`);
  }
  if (typeof headDim === 'number' && headDim !== open.headDim) {
    throw new LoupeError('bad-input', `config.json gives a head size of ${open.headDim} (head_dim or hidden_size / num_attention_heads) but ${where} caches ${headDim} (${keys[0]} shape)`);
  }
}

function emptyPast(vlm: OpenVlm): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of vlm.decoder.inputNames.filter((n) => n.startsWith('past_key_values.'))) {
    const m = meta(vlm.decoder, name);
    const kv = typeof m.shape[1] === 'number' ? m.shape[1] : vlm.open.numKeyValueHeads;
    const hd = typeof m.shape[3] === 'number' ? m.shape[3] : vlm.open.headDim;
    feeds[name] = m.type === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), [1, kv, 0, hd]) : new ort.Tensor('float32', new Float32Array(0), [1, kv, 0, hd]);
  }
  return feeds;
}

/**
 * position_ids for `length` tokens from `start`: [1, len], or [3, 1, len] for M-RoPE decoders. 1-D ids are offset by
 * the model's first position id (open.positionIdStart: PaliGemma counts from 1).
 */
function positionIds(vlm: OpenVlm, start: number, length: number, mrope: VlmRunRequest['mrope']): ort.Tensor {
  const rank = meta(vlm.decoder, 'position_ids').shape.length;
  const first = vlm.open.positionIdStart ?? 0;
  if (rank !== 3) return new ort.Tensor('int64', BigInt64Array.from({ length }, (_, i) => BigInt(first + start + i)), [1, length]);
  const data = new BigInt64Array(3 * length);
  for (let axis = 0; axis < 3; axis++) {
    for (let i = 0; i < length; i++) {
      // Prefill uses the per-axis ids; later tokens are text: all axes at index + delta.
      const prefill = mrope?.ids[axis]?.[start + i];
      data[axis * length + i] = BigInt(prefill ?? start + i + (mrope?.ropeDelta ?? 0));
    }
  }
  return new ort.Tensor('int64', data, [3, 1, length]);
}

function positionFeeds(vlm: OpenVlm, start: number, length: number, total: number, mrope?: VlmRunRequest['mrope']): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {
    attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    position_ids: positionIds(vlm, start, length, mrope),
  };
  // Optimum-merged decoders gate the cache path with this flag.
  if (vlm.decoder.inputNames.includes('use_cache_branch')) feeds.use_cache_branch = new ort.Tensor('bool', Uint8Array.from([start > 0 ? 1 : 0]), [1]);
  if (vlm.decoder.inputNames.includes('num_logits_to_keep')) feeds.num_logits_to_keep = new ort.Tensor('int64', BigInt64Array.from([0n]), []);
  return feeds;
}

function lastRow(logits: ort.Tensor): Float32Array {
  const [, seq = 1, vocab = 0] = logits.dims;
  return floats(logits).slice((seq - 1) * vocab, seq * vocab);
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

function logSoftmaxAt(x: Float32Array, ids: number[]): number[] {
  let max = -Infinity;
  for (const v of x) if (v > max) max = v;
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return ids.map((i) => x[i]! - lse);
}

export async function runVlm(vlm: OpenVlm, req: VlmRunRequest): Promise<VlmRunResult> {
  const taps: Record<string, HostTensor> = {};
  // Outputs a capture request stores are kept here, not returned: they go to the blob from this thread.
  const captured = req.capture ? captureSources(req.capture) : new Set<string>();
  const held = new Map<string, ort.Tensor>();
  const ids = req.inputIds.data as BigInt64Array;
  const seq = ids.length;

  const embedOut = await vlm.embed.run({ input_ids: new ort.Tensor('int64', ids, [1, seq]) });
  const embedsT = embedOut.inputs_embeds!;
  const hidden = embedsT.dims[2]!;
  const embeds = Float32Array.from(floats(embedsT));

  let imageFeatures: HostTensor | undefined;
  const t0 = performance.now();
  if (req.pixelValues) {
    const fetches = ['image_features', ...req.visionFetches];
    // fp16 exports without keep_io_types take fp16 pixel_values: the session's metadata says which.
    const pixelMeta = vlm.vision.inputMetadata.find((x) => x.name === 'pixel_values');
    const pixelType = pixelMeta?.isTensor ? pixelMeta.type : 'float32';
    const feeds: Record<string, ort.Tensor> = { pixel_values: floatTensor(pixelType, req.pixelValues.data as Float32Array, req.pixelValues.shape) };
    for (const [name, t] of Object.entries(req.visionExtras ?? {})) {
      const target = visionInputName(vlm.vision.inputNames, name);
      if (target) feeds[target] = new ort.Tensor(t.dtype, t.data as never, t.shape);
    }
    if (vlm.vision.inputNames.some((n) => n.startsWith('loupe_attn_bias.'))) {
      // Only the caller knows the tower's token layout (CLS or not, grid), which sizes even all-zero biases.
      const v = req.ablation?.vision;
      if (!v) throw new Error('the vision encoder has attention-bias inputs: runs on it must pass ablation.vision (its token layout), even with no vision edits');
      Object.assign(feeds, biasFeeds(vlm.vision, v.layout, { spec: req.ablation!.spec, heads: v.heads }, 'vision encoder'));
    } else if (req.ablation?.spec?.edits.some((e) => e.part === 'vision')) {
      throw new Error('the vision encoder session has no attention-bias inputs: open the model with the ablation rewrite to apply vision edits');
    }
    const missing = vlm.vision.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`vision encoder needs inputs the processor did not produce: ${missing.join(', ')}`);
    const out = await vlm.vision.run(feeds, fetches);
    const feats = out.image_features!;
    imageFeatures = toHost(feats);
    scatterImageFeatures(embeds, ids, hidden, floats(feats), vlm.open.imageTokenId);
    for (const n of req.visionFetches) if (captured.has(n)) held.set(n, out[n]!);
    else taps[n] = toHost(out[n]!);
    if (captured.has('image_features')) held.set('image_features', feats);
  } else if (ids.includes(BigInt(vlm.open.imageTokenId))) {
    throw new Error('prompt contains image tokens but no image was given');
  }
  const t1 = performance.now();

  const embedsType = meta(vlm.decoder, 'inputs_embeds').type;
  const outNames = ['logits', ...req.decoderFetches.filter((n) => n !== 'logits')];
  const presentNames = vlm.decoder.outputNames.filter((n) => n.startsWith('present.'));
  const generating = (req.generate?.maxNewTokens ?? 0) > 0;
  const fetch = [...new Set([...outNames, ...(generating ? presentNames : [])])];
  const llmEdit = req.ablation?.llm && { spec: req.ablation.spec, heads: req.ablation.llm.heads };
  const prefillBias = biasFeeds(vlm.decoder, llmStepLayout(req.ablation, seq, seq, 0), llmEdit, 'decoder');
  const prefillFeeds = { inputs_embeds: floatTensor(embedsType, embeds, [1, seq, hidden]), ...positionFeeds(vlm, 0, seq, seq, req.mrope), ...emptyPast(vlm), ...prefillBias };
  const hiddenSources = new Set((req.capture?.ops ?? []).filter((o) => o.layout === 'hidden').map((o) => o.source));
  // LOUPE_TEST_SHARED_WIDTH_OFFSET (tests only) mis-sizes the hidden-state buffers, so the fallback below is exercised.
  const width = hidden + Number(process.env.LOUPE_TEST_SHARED_WIDTH_OFFSET ?? 0);
  const shared = sharedCaptureOutputs(vlm, fetch.filter((n) => captured.has(n)), seq, { sources: hiddenSources, width });
  let prefill: ort.InferenceSession.ReturnType;
  try {
    prefill = await vlm.decoder.run(prefillFeeds, shared.size ? Object.fromEntries(fetch.map((n) => [n, shared.get(n) ?? null])) : fetch);
  } catch (e) {
    if (!shared.size) throw e;
    // The runtime refused an output buffer (a layout the metadata did not tell): run as before, and stop trying for this model.
    vlm.noSharedOutputs = `${(e as Error).message}`;
    console.error(`loupe: the decoder refused shared output buffers for captured K/V (${vlm.noSharedOutputs}); copying them instead`);
    shared.clear();
    prefill = await vlm.decoder.run(prefillFeeds, fetch);
  }
  const t2 = performance.now();
  for (const n of req.decoderFetches) if (captured.has(n)) held.set(n, shared.get(n) ?? prefill[n]!);
  else taps[n] = toHost(prefill[n]!);
  const lastLogits = lastRow(prefill.logits!);

  const result: VlmRunResult = { lastLogits, taps, timings: { visionMs: t1 - t0, prefillMs: t2 - t1, decodeMs: 0 } };
  if (req.capture) {
    const t3 = performance.now();
    // Only when no greedy step reuses the K/V below may a source be dropped as soon as its ops ran.
    const stored = await storeCapture(req.capture, (n) => (held.has(n) ? toHost(held.get(n)!) : undefined), (n) => void (!generating && held.delete(n)));
    if (stored) result.stored = stored;
    held.clear();
    result.timings.storeMs = performance.now() - t3;
  }
  if (imageFeatures) result.imageFeatures = imageFeatures;
  if (req.fullLogits) result.fullLogits = toHost(prefill.logits!);
  if (req.scoreTokenIds) result.scoreLogProbs = logSoftmaxAt(lastLogits, req.scoreTokenIds);

  if (req.generate && generating) {
    const generated: number[] = [];
    let next = argmax(lastLogits);
    let past: Record<string, ort.Tensor> = Object.fromEntries(presentNames.map((n) => [n.replace('present.', 'past_key_values.'), prefill[n]!]));
    let total = seq;
    for (let step = 0; step < req.generate.maxNewTokens; step++) {
      generated.push(next);
      if (req.generate.eosTokenIds.includes(next)) break;
      if (step === req.generate.maxNewTokens - 1) break;
      const e = await vlm.embed.run({ input_ids: new ort.Tensor('int64', BigInt64Array.from([BigInt(next)]), [1, 1]) });
      total++;
      const stepBias = biasFeeds(vlm.decoder, llmStepLayout(req.ablation, seq, total, total - 1), llmEdit, 'decoder');
      const out = await vlm.decoder.run({ inputs_embeds: floatTensor(embedsType, floats(e.inputs_embeds!), [1, 1, hidden]), ...positionFeeds(vlm, total - 1, 1, total, req.mrope), ...past, ...stepBias }, ['logits', ...presentNames]);
      past = Object.fromEntries(presentNames.map((n) => [n.replace('present.', 'past_key_values.'), out[n]!]));
      next = argmax(lastRow(out.logits!));
    }
    result.generated = generated;
    result.timings.decodeMs = performance.now() - t2;
  }
  return result;
}
