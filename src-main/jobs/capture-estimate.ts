/**
 * How many bytes a vlm-forward run will write, before it runs: the same capture plan the
 * compute worker applies (capture-plan.ts) over source shapes from config.json and the items'
 * encoded prompts (tokenizer + image processor only — no ORT session, no forward pass), and the
 * free space of the data folder. `jobs/estimate` shows it; `jobs/start` refuses a run that does
 * not fit (refuseIfNoSpace).
 *
 * Sampling: items differ in prompt length (hidden states and attention over all tokens scale with
 * it), so up to SAMPLE_ITEMS items spread over the run are encoded and the mean item is taken for
 * every item. Items of one shape (one image size, one prompt length) give the exact byte count.
 */
import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { VlmForwardSpec } from '../../src-shared/jobs/specs.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { formatBytes } from '../../src-shared/tensor/format-bytes.ts';
import { openModelFolder, textConfigOf } from '../engine/model-folder.ts';
import { locateQuestion } from '../engine/vlm/prompt-tokens.ts';
import { type ImageInput, VlmProcessing } from '../engine/vlm/processing.ts';
import { familyFor } from '../engine/vlm/families.ts';
import { resolveTaps } from '../engine/vlm/tap-sets.ts';
import { imageTokenOf } from '../engine/vlm/vlm.ts';
import type { Store } from '../store/store.ts';
import { type SourceShapes, estimateItemBytes, planCapture } from './capture-plan.ts';

export const SAMPLE_ITEMS = 4;

export interface CaptureEstimate {
  /** Mean bytes one item's blob takes (0: the spec captures nothing). */
  itemBytes: number;
  items: number;
  runBytes: number;
  sampledItems: number;
  tensorsPerItem: number;
  /** Bytes free to this user in the data folder (statfs bavail × bsize). */
  freeBytes: number;
  dataDir: string;
  fits: boolean;
  notes: string[];
}

/**
 * TEST-ONLY: `LOUPE_TEST_FREE_BYTES=N` makes the data folder report N bytes free (the refusal is
 * tested without filling a disk). Read here and nowhere else.
 */
export function freeBytesOf(dir: string): number {
  const fake = process.env.LOUPE_TEST_FREE_BYTES;
  if (fake !== undefined && fake !== '') {
    const n = Number(fake);
    if (!Number.isInteger(n) || n < 0) throw new LoupeError('bad-input', `LOUPE_TEST_FREE_BYTES must be a byte count, not "${fake}"`);
    return n;
  }
  const s = statfsSync(dir);
  return Number(s.bavail) * Number(s.bsize);
}

const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/**
 * Source shapes (batch 1) from config.json and one item's encoded inputs: what the runtime's
 * outputs will be. Vision outputs are per view (image or tile): pixel_values' leading axes.
 */
function sourceShapes(config: Record<string, unknown>, taps: { vision: { name: string; tensor: string }[]; decoder: { name: string; tensor: string }[] }, seq: number, imageTokens: number, pixelShape: number[] | undefined): SourceShapes {
  const t = textConfigOf(config) as Record<string, unknown>;
  const v = (config.vision_config ?? {}) as Record<string, unknown>;
  const hidden = num(t.hidden_size) ?? 0;
  const heads = num(t.num_attention_heads) ?? 1;
  const kvHeads = num(t.num_key_value_heads) ?? heads;
  const headDim = num(t.head_dim) ?? hidden / heads;
  const vHidden = num(v.hidden_size) ?? 0;
  const vHeads = num(v.num_attention_heads) ?? 1;
  // CLIP keeps a CLS token in front of the patches; SigLIP has none.
  const cls = String(v.model_type ?? '').includes('siglip') ? 0 : 1;
  const grid = (num(v.image_size) ?? 0) / (num(v.patch_size) ?? 1);
  let views = 0;
  let vTokens = 0;
  if (pixelShape && pixelShape.length >= 4) {
    views = pixelShape.slice(0, -3).reduce((a, b) => a * b, 1);
    vTokens = grid * grid + cls;
  } else if (pixelShape && pixelShape.length === 2) {
    // Qwen2-VL: flattened patches [patches, C·T·P·P]; the tower runs over every patch.
    views = 1;
    vTokens = pixelShape[0]!;
  }
  const byTensor = new Map<string, number[]>();
  for (const x of taps.vision) byTensor.set(x.tensor, x.name.includes('.attentions.') ? [views, vHeads, vTokens, vTokens] : [views, vTokens, vHidden]);
  for (const x of taps.decoder) byTensor.set(x.tensor, x.name.includes('.attentions.') ? [1, heads, seq, seq] : [1, seq, hidden]);
  return {
    shapeOf(source) {
      // The projector's output is one row per image token (the counts agree; the leading axes do not change the bytes).
      if (source === 'image_features') return [1, imageTokens, hidden];
      if (source.startsWith('present.')) return [1, kvHeads, seq, headDim];
      return byTensor.get(source);
    },
  };
}

/** Estimates a vlm-forward run's capture bytes. Tap rewrites land in `<dataDir>/graph-cache`, as the runner's, so the run reuses them. */
export async function estimateVlmForward(store: Store, dataDir: string, modelId: string, datasetId: string, rawSpec: unknown): Promise<CaptureEstimate> {
  const spec = VlmForwardSpec.parse(rawSpec ?? {});
  const model = store.models.get(modelId);
  const dataset = store.datasets.get(datasetId);
  const folder = openModelFolder(model.path, spec.variant);
  const ids = store.datasets.items(datasetId, 0, spec.limit || dataset.itemCount || 1).map((i) => i.id);
  const notes: string[] = [];
  const taps = await resolveTaps(folder, spec.taps, { cacheRoot: join(dataDir, 'graph-cache'), modelHash: model.hash }, spec.ablation);
  const processing = await VlmProcessing.load(folder.path, folder.preprocessor, folder.family);
  const image = imageTokenOf(folder, processing);
  const family = familyFor(folder, processing, image.id, image.token);
  const text = textConfigOf(folder.config) as Record<string, unknown>;
  const dims = { textLayers: Number(text.num_hidden_layers), textHeads: Number(text.num_attention_heads), visionHeads: Number((folder.config.vision_config as Record<string, unknown> | undefined)?.num_attention_heads ?? 1) };
  if (!['llava', 'llava_next', 'llava_onevision', 'paligemma'].includes(String(folder.config.model_type))) notes.push(`vision tensor sizes for model_type ${String(folder.config.model_type)} are approximate (views × config grid)`);
  if (spec.imagesAlone && spec.taps.imageKV) notes.push('imagesAlone: image K/V sized from the one-prompt pass (each image alone has the same image tokens, fewer positions)');

  const picks = ids.length <= SAMPLE_ITEMS ? ids : Array.from({ length: SAMPLE_ITEMS }, (_, k) => ids[Math.floor((k * (ids.length - 1)) / (SAMPLE_ITEMS - 1))]!);
  let total = 0;
  let tensorCount = 0;
  for (const itemId of picks) {
    const item = store.datasets.item(datasetId, itemId);
    const prompt = item.prompt ?? spec.prompt;
    if (!prompt) throw new LoupeError('bad-input', `item ${itemId} has no prompt to ask the model (spec.prompt gives one to items without)`);
    const input: ImageInput =
      spec.image === 'image' ? { kind: 'files', paths: item.images.map((p) => join(dataset.path, p)) } : spec.image === 'blank' ? { kind: 'blank', count: Math.max(1, item.images.length) } : { kind: 'none' };
    const enc = await family.encode(prompt, input, spec.textPrefix);
    const inputIds = Array.from(enc.inputIds.data as BigInt64Array, Number);
    const needsQuestion = spec.taps.promptKV || spec.taps.tokens === 'question';
    const piece = (id: number) => processing.tokenizer.decode([id], { skip_special_tokens: false });
    const q = needsQuestion ? locateQuestion(inputIds, processing.tokenIdsOf(prompt), piece, prompt) : undefined;
    const plan = planCapture(spec, taps, dims, { imagePositions: enc.imageTokens.map((x) => x.position), ...(q && { questionPositions: q.map((x) => x.position) }) }, inputIds.length);
    // The same small tensors vlm-forward adds beside the captures.
    const extra: Record<string, { dtype: HostTensor['dtype']; shape: number[] }> = {};
    if (enc.imageTokens.length) extra.image_token_map = { dtype: 'int32', shape: [enc.imageTokens.length, 5] };
    if (spec.taps.promptKV && q) extra.prompt_token_map = { dtype: 'int32', shape: [q.length, 3] };
    if (!plan.ops.length && !Object.keys(extra).length) continue;
    const shapes = sourceShapes(folder.config, taps, inputIds.length, enc.imageTokens.length, enc.pixelValues?.shape);
    const e = estimateItemBytes(plan, shapes, spec.storeDtype, extra);
    total += e.bytes;
    tensorCount = Math.max(tensorCount, e.tensors.length);
  }
  const itemBytes = picks.length ? Math.round(total / picks.length) : 0;
  const runBytes = itemBytes * ids.length;
  // The blobs' own folder: that is where the bytes go (it may be a mount of its own).
  const freeBytes = freeBytesOf(store.blobs.root);
  return { itemBytes, items: ids.length, runBytes, sampledItems: picks.length, tensorsPerItem: tensorCount, freeBytes, dataDir, fits: runBytes <= freeBytes, notes };
}

/** The refusal `jobs/start` gives when the capture does not fit: both numbers, and what to do. */
export function noSpaceMessage(e: CaptureEstimate): string {
  return (
    `not enough space for this run's captures: about ${formatBytes(e.runBytes)} (${e.runBytes} bytes = ${e.items} items × ${formatBytes(e.itemBytes)}) ` +
    `but the data folder ${e.dataDir} has ${formatBytes(e.freeBytes)} (${e.freeBytes} bytes) free. ` +
    'Free space there (purge deleted runs, or move the data folder to a larger disk), or shrink the capture: ' +
    'fewer layers (taps.layers, taps.layerStride), fewer heads (taps.heads), fewer token rows (taps.tokens, taps.tokenStride), ' +
    'attention as top-k or summed over heads (taps.attentionMode), storeDtype float16, or fewer items (limit)'
  );
}

/** Throws a `storage` LoupeError when a vlm-forward run's estimated captures exceed the data folder's free space. */
export async function refuseIfNoSpace(store: Store, dataDir: string, job: { kind: string; modelId: string; datasetId: string; spec?: unknown }): Promise<CaptureEstimate | null> {
  if (job.kind !== 'vlm-forward') return null;
  const e = await estimateVlmForward(store, dataDir, job.modelId, job.datasetId, job.spec);
  if (!e.fits) throw new LoupeError('storage', noSpaceMessage(e), { estimatedBytes: e.runBytes, freeBytes: e.freeBytes, dataDir: e.dataDir });
  return e;
}

/** `jobs/estimate`: the vlm-forward estimate, or for other kinds the item count and free space only. */
export async function estimateJob(store: Store, dataDir: string, job: { kind: string; modelId: string; datasetId: string; spec?: unknown }): Promise<Omit<CaptureEstimate, 'itemBytes' | 'runBytes'> & { itemBytes: number | null; runBytes: number | null }> {
  if (job.kind === 'vlm-forward') return estimateVlmForward(store, dataDir, job.modelId, job.datasetId, job.spec);
  const dataset = store.datasets.get(job.datasetId);
  const limit = (job.spec as { limit?: number } | undefined)?.limit ?? 0;
  return {
    itemBytes: null,
    runBytes: null,
    items: limit ? Math.min(limit, dataset.itemCount) : dataset.itemCount,
    sampledItems: 0,
    tensorsPerItem: 0,
    freeBytes: freeBytesOf(store.blobs.root),
    dataDir,
    fits: true,
    notes: [`no capture-size estimate for ${job.kind} runs yet`],
  };
}
