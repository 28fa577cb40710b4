/**
 * A vlm-forward spec's tap selection → the capture ops the compute worker applies (which
 * runtime outputs to fetch, which layers, heads and token rows to keep, attention as stored),
 * and the size those captures take — the same plan drives the run and its estimate.
 */
import type { TapSelection, VlmForwardSpec } from '../../src-shared/jobs/specs.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { type CaptureOp, type CapturedShape, captureShape } from '../../src-shared/tensor/capture-ops.ts';
import { safetensorsLayout } from '../../src-shared/tensor/safetensors.ts';
import type { CaptureRequest } from '../compute/capture/store-capture.ts';
import type { NamedTap } from '../engine/vlm/tap-sets.ts';
import type { Fp16Choice } from '../engine/vlm/graph-taps.ts';
import { storedByCapture } from './stream-request.ts';

export interface ModelDims {
  textLayers: number;
  textHeads: number;
  visionHeads: number;
}

/** Per-item token facts the plan needs (from the encoded prompt, before the forward pass). */
export interface ItemTokens {
  imagePositions: number[];
  /** Positions of the question's own tokens (needed for promptKV and tokens: 'question'). */
  questionPositions?: number[];
}

export interface CapturePlan {
  visionFetches: string[];
  decoderFetches: string[];
  ops: CaptureOp[];
}

/** Layer numbers kept by a selection: the set (or all), then every `stride`-th of them. */
export function keptLayers(all: number[], set: number[] | undefined, stride = 1): number[] {
  const chosen = set ? all.filter((l) => set.includes(l)) : all;
  return chosen.filter((_, i) => i % stride === 0);
}

/** The trailing layer number of a tap name (`llm.hidden_states.3`, `vision.attentions.0`); null for others (final_norm). */
function layerOf(name: string): number | null {
  const m = /\.(?:hidden_states|attentions)\.(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

function tokenRows(sel: TapSelection, item: ItemTokens): number[] | undefined {
  const t = sel.tokens ?? 'all';
  const rows = t === 'all' ? undefined : t === 'image' ? item.imagePositions : t === 'question' ? (item.questionPositions ?? []) : t.positions;
  const stride = sel.tokenStride ?? 1;
  if (stride === 1) return rows;
  return (rows ?? null) === null ? undefined : rows!.filter((_, i) => i % stride === 0);
}

export function planCapture(spec: Pick<VlmForwardSpec, 'taps'>, taps: { vision: NamedTap[]; decoder: NamedTap[] }, dims: ModelDims, item: ItemTokens, seq: number): CapturePlan {
  const sel = spec.taps;
  const ops: CaptureOp[] = [];
  const vision: string[] = [];
  const decoder: string[] = [];
  const heads = sel.heads && { heads: sel.heads };
  const llmLayers = keptLayers(
    Array.from({ length: dims.textLayers }, (_, i) => i),
    sel.layers,
    sel.layerStride,
  );
  if (sel.projector) ops.push({ name: 'projector', source: 'image_features', layout: 'raw' });
  const kv = (prefix: string, rows: number[]) => {
    if (!rows.length) return;
    for (const l of llmLayers)
      for (const part of ['key', 'value']) {
        const source = `present.${l}.${part}`;
        decoder.push(source);
        ops.push({ name: `${prefix}.${l}.${part}`, source, layout: 'kv', rows, ...heads });
      }
  };
  if (sel.imageKV) kv('image_kv', item.imagePositions);
  if (sel.promptKV) kv('prompt_kv', item.questionPositions ?? []);
  const rows = tokenRows(sel, item);
  const mode = sel.attentionMode === 'topk' ? { mode: 'topk' as const, k: sel.attentionTopK ?? 8 } : sel.attentionMode === 'headsum' ? { mode: 'headsum' as const } : undefined;
  const pickTaps = (list: NamedTap[], isVision: boolean) => {
    const numbered = [...new Set(list.map((t) => layerOf(t.name)).filter((l): l is number => l !== null))].sort((a, b) => a - b);
    const kept = new Set(keptLayers(numbered, isVision ? sel.visionLayerSet : sel.layers, sel.layerStride));
    for (const t of list) {
      const l = layerOf(t.name);
      if (l !== null && !kept.has(l)) continue;
      const attention = t.name.includes('.attentions.');
      const op: CaptureOp = { name: t.name, source: t.tensor, layout: attention ? 'attention' : isVision ? 'raw' : 'hidden' };
      if (attention) {
        op.attentionHeads = isVision ? dims.visionHeads : dims.textHeads;
        if (heads) op.heads = sel.heads!;
        if (mode) op.attention = mode;
      }
      if (!isVision && rows) op.rows = rows.filter((r) => r < seq);
      ops.push(op);
      (isVision ? vision : decoder).push(t.tensor);
    }
  };
  pickTaps(taps.vision, true);
  pickTaps(taps.decoder, false);
  return { visionFetches: [...new Set(vision)], decoderFetches: [...new Set(decoder)], ops };
}

/**
 * The plan reading the runtime's fp16 copies of its sources where the graph has them
 * (ResolvedTaps.fp16): ops read `loupe_fp16:<source>` and those are fetched instead, so the
 * worker only gathers rows and writes. Sources without a copy are left as they are.
 */
export function withFp16Sources(plan: CapturePlan, fp16: Record<string, string>): CapturePlan {
  if (!Object.keys(fp16).length) return plan;
  const vision = new Set(plan.visionFetches);
  const decoder = new Set(plan.decoderFetches);
  const ops = plan.ops.map((op) => {
    const copy = fp16[op.source];
    if (!copy) return op;
    // image_features is fetched for every pass (the projector's output feeds the decoder): its copy is a vision fetch too.
    if (vision.has(op.source) || op.source === 'image_features') vision.add(copy);
    else decoder.add(copy);
    return { ...op, source: copy };
  });
  const used = new Set(ops.map((o) => o.source));
  // An original stays fetched only if some op still reads it (the caller adds streamed sources itself).
  const keep = (names: Set<string>) => [...names].filter((n) => used.has(n));
  return { visionFetches: keep(vision), decoderFetches: keep(decoder), ops };
}

export function captureRequest(plan: CapturePlan, blobRoot: string, dtype: 'float32' | 'float16', extra: Record<string, HostTensor>): CaptureRequest {
  return { blobRoot, dtype, ops: plan.ops, extra };
}

/** Source shapes of one item, as a LLaVA-style model produces them (batch 1; `images` pictures of `visionTokens` tokens). */
export interface SourceShapes {
  shapeOf(source: string): number[] | undefined;
}

/**
 * Bytes one item's blob takes: the ops' stored shapes (same function the worker uses), plus the
 * extra tensors, laid out as the safetensors file is.
 */
export function estimateItemBytes(plan: CapturePlan, sources: SourceShapes, dtype: 'float32' | 'float16', extra: Record<string, { dtype: HostTensor['dtype']; shape: number[] }>): { bytes: number; tensors: CapturedShape[] } {
  const tensors: CapturedShape[] = [];
  for (const op of plan.ops) {
    const shape = sources.shapeOf(op.source);
    if (!shape) throw new Error(`cannot size capture ${op.name}: no shape known for ${op.source}`);
    tensors.push(...captureShape(op, shape, dtype));
  }
  for (const [name, t] of Object.entries(extra)) tensors.push({ name, dtype: t.dtype, shape: t.shape });
  const layout = safetensorsLayout(Object.fromEntries(tensors.map((t) => [t.name, t])));
  return { bytes: tensors.length ? layout.size : 0, tensors };
}

/**
 * Captures stored as fp16 are converted by the runtime (taps.ts fp16TapName) when every pass of
 * the run is a capture pass. ORT runs every node of a graph whatever is fetched, so the Cast runs
 * on each decoder call: a greedy step would convert the whole KV cache again, and each-image-alone
 * passes fetch the float32 K/V — those runs convert in the worker instead (half.ts). Top-k and
 * head-summed attention are ranked and summed in float32, so their sources stay float32.
 */
export function fp16InGraph(spec: Pick<VlmForwardSpec, 'storeDtype' | 'maxNewTokens' | 'imagesAlone' | 'taps'>, kvNames: string[]): Fp16Choice | undefined {
  if (spec.storeDtype !== 'float16' || spec.maxNewTokens > 0 || spec.imagesAlone) return undefined;
  const attentionAsIs = (spec.taps.attentionMode ?? 'full') === 'full';
  const cast = (t: { name: string }) => attentionAsIs || !t.name.includes('.attentions.');
  return ({ vision, decoder }) => ({
    vision: [...(spec.taps.projector ? ['image_features'] : []), ...vision.filter(cast).map((t) => t.tensor)],
    decoder: [...kvNames, ...decoder.filter((t) => cast(t) && storedByCapture(spec, t)).map((t) => t.tensor)],
  });
}
