/**
 * Job kind `vlm-forward`: the VLM on every item — its answer over the item's choices
 * (first-token scoring), optionally greedy text, in normal or blind mode — and the internals
 * the spec selects (projector output, image K/V per LLM layer, K/V at the question's tokens,
 * layer hidden states, attention). `textPrefix` puts words before the first image (the
 * text-prefix control); image_token_map is built from the real input ids, so it follows.
 */
import { dirname, join } from 'node:path';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { VlmForwardSpec } from '../../src-shared/jobs/specs.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { ComputeClient } from '../compute/compute-client.ts';
import { openModelFolder, textConfigOf } from '../engine/model-folder.ts';
import type { ImageInput } from '../engine/vlm/processing.ts';
import { attentionAsBHQK, concatTokens, gatherSequence } from '../engine/vlm/slicing.ts';
import { locateQuestion } from '../engine/vlm/prompt-tokens.ts';
import { resolveTaps } from '../engine/vlm/tap-sets.ts';
import { Vlm, chosenAnswer } from '../engine/vlm/vlm.ts';
import type { Store } from '../store/store.ts';
import { toStoreDtype } from './encode-images.ts';
import type { ItemOutput, JobRunner, PreparedRun } from './job-runner.ts';
import { fp16InGraph, planCapture, withFp16Sources } from './capture-plan.ts';
import { splitStreamTaps, streamRequestFor, streamedStatsPath, tapsForStream } from './stream-request.ts';
import { streamSources } from '../compute/capture/stream-stats.ts';

export class VlmForwardRunner implements JobRunner {
  private readonly store: Store;
  private readonly compute: ComputeClient;
  /** Where rewritten (tapped/ablated) graphs are cached: Loupe's data folder, never the model folder. */
  private readonly graphCache: string;
  constructor(store: Store, compute: ComputeClient, graphCache: string) {
    this.store = store;
    this.compute = compute;
    this.graphCache = graphCache;
  }

  async prepare(run: RunInfo): Promise<PreparedRun> {
    const spec = VlmForwardSpec.parse(run.spec);
    const model = this.store.models.get(run.modelId);
    const folder = openModelFolder(model.path, spec.variant);
    const dataset = this.store.datasets.get(run.datasetId);
    const textConfig = textConfigOf(folder.config) as { num_hidden_layers: number; num_attention_heads: number };
    const textLayers = Number(textConfig.num_hidden_layers);
    const textHeads = Number(textConfig.num_attention_heads);
    const visionHeads = Number((folder.config.vision_config as { num_attention_heads?: number } | undefined)?.num_attention_heads ?? 1);
    const kvNames = spec.taps.imageKV || spec.taps.promptKV ? Array.from({ length: textLayers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat() : [];
    // Streamed features / Gram read hidden states the run may not store: tapped, then left out of the capture plan.
    const tapped = await resolveTaps(folder, tapsForStream(spec), { cacheRoot: this.graphCache, modelHash: model.hash }, spec.ablation, fp16InGraph(spec, kvNames));
    const { taps, hidden } = splitStreamTaps(spec, tapped);
    if (spec.stream && spec.imagesAlone) throw new LoupeError('bad-input', 'spec.stream with imagesAlone: streamed statistics are taken from the one prompt\'s pass; run without imagesAlone');
    const vlm = await Vlm.open(folder, this.compute, `${run.modelId}:${tapped.key}`, tapped.files);

    const statsPath = streamedStatsPath(dirname(this.store.blobs.root), run.id);
    return {
      // The run's streamed statistics, written once its items have run (kept in the worker while a cancelled run may resume).
      ...(spec.stream && {
        dispose: async () => {
          const status = this.store.runs.get(run.id).status;
          await this.compute.flushStream(run.id, statsPath, status !== 'cancelled' && status !== 'paused' && status !== 'running');
        },
      }),
      processItem: async (itemId): Promise<ItemOutput> => {
        const item = this.store.datasets.item(run.datasetId, itemId);
        const prompt = item.prompt ?? spec.prompt;
        if (!prompt) throw new LoupeError('bad-input', `item ${itemId} has no prompt to ask the model (spec.prompt gives one to items without)`);
        const image: ImageInput =
          spec.image === 'image' ? { kind: 'files', paths: item.images.map((p) => join(dataset.path, p)) } : spec.image === 'blank' ? { kind: 'blank', count: Math.max(1, item.images.length) } : { kind: 'none' };
        // Captures are sliced, converted and written by the compute worker (streamed, bounded memory),
        // except each-image-alone K/V, which concatenates several passes here.
        const alonePasses = spec.taps.imageKV && spec.imagesAlone && spec.image === 'image' && item.images.length > 1;
        const piece = (id: number) => vlm.processing.tokenizer.decode([id], { skip_special_tokens: false });
        const question = (ids: number[]) => locateQuestion(ids, vlm.processing.tokenIdsOf(prompt), piece, prompt);
        const needsQuestion = spec.taps.promptKV || spec.taps.tokens === 'question';
        const capture = alonePasses
          ? undefined
          : ({ inputIds, imageTokens }: { inputIds: number[]; imageTokens: { position: number; image: number; tile: number; row: number; col: number }[] }) => {
              const q = needsQuestion ? question(inputIds) : undefined;
              const plan = withFp16Sources(
                planCapture(spec, taps, { textLayers, textHeads, visionHeads }, { imagePositions: imageTokens.map((t) => t.position), ...(q && { questionPositions: q.map((t) => t.position) }) }, inputIds.length),
                tapped.fp16,
              );
              const extra: Record<string, HostTensor> = {};
              if (imageTokens.length) extra.image_token_map = { dtype: 'int32', shape: [imageTokens.length, 5], data: Int32Array.from(imageTokens.flatMap((t) => [t.position, t.image, t.tile, t.row, t.col])) };
              if (spec.taps.promptKV && q) extra.prompt_token_map = { dtype: 'int32', shape: [q.length, 3], data: Int32Array.from(q.flatMap((t) => [t.position, t.tokenId, t.word])) };
              const stream = streamRequestFor(run.id, spec, textLayers, imageTokens, hidden);
              if (!plan.ops.length && !Object.keys(extra).length && !stream) return undefined; // nothing to store: no blob, as before
              const request = { blobRoot: this.store.blobs.root, chunkBytes: this.store.blobs.chunkBytes, dtype: spec.storeDtype, ops: plan.ops, extra, ...(stream && { stream }) };
              return { request, visionFetches: plan.visionFetches, decoderFetches: [...new Set([...plan.decoderFetches, ...(stream ? streamSources(stream) : [])])] };
            };
        const res = await vlm.forward(prompt, image, {
          ...(alonePasses ? { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: [...kvNames, ...taps.decoder.map((t) => t.tensor)] } : { capture: capture! }),
          ...(spec.maxNewTokens > 0 && { maxNewTokens: spec.maxNewTokens }),
          ...(item.choices && { choices: item.choices }),
          ...(spec.ablation && { ablation: spec.ablation }),
          ...(spec.textPrefix && { textPrefix: spec.textPrefix }),
        });

        const metrics: Record<string, number> = { promptTokens: res.inputIds.length, imageTokens: res.imageTokens.length };
        const values: Record<string, unknown> = { prompt: res.prompt };
        const answer = chosenAnswer(res);
        if (answer) {
          values.prediction = answer.choice;
          values.choiceProbs = answer.probs;
          if (item.answer !== undefined) {
            metrics.correct = answer.choice === item.answer ? 1 : 0;
            metrics.pAnswer = answer.probs[item.answer] ?? 0;
          }
        }
        if (res.generatedText !== undefined) values.generated = res.generatedText;

        const tensors: Record<string, HostTensor> = {};
        if (res.stored) return { metrics, values, tensors, stored: res.stored };
        const keep = (name: string, t: HostTensor) => (tensors[name] = toStoreDtype(t, spec.storeDtype));
        if (res.imageTokens.length) {
          // Every image-token tensor carries its coordinates: (position, image, tile, row, col).
          tensors.image_token_map = { dtype: 'int32', shape: [res.imageTokens.length, 5], data: Int32Array.from(res.imageTokens.flatMap((t) => [t.position, t.image, t.tile, t.row, t.col])) };
        }
        if (spec.taps.projector && res.imageFeatures) keep('projector', res.imageFeatures);
        const positions = res.imageTokens.map((t) => t.position);
        if (spec.taps.imageKV && spec.imagesAlone && spec.image === 'image' && item.images.length > 1) {
          // Each image's K/V from its own pass, concatenated in image order.
          const alone = [];
          for (const p of item.images) alone.push(await vlm.forward(prompt, { kind: 'files', paths: [join(dataset.path, p)] }, { decoderTaps: kvNames, ...(spec.textPrefix && { textPrefix: spec.textPrefix }) }));
          const rows = alone.flatMap((r, image) => r.imageTokens.map((t) => ({ ...t, image })));
          tensors.image_token_map = { dtype: 'int32', shape: [rows.length, 5], data: Int32Array.from(rows.flatMap((t) => [t.position, t.image, t.tile, t.row, t.col])) };
          for (const n of kvNames) keep(`image_${n.replace('present.', 'kv.')}`, concatTokens(alone.map((r) => gatherSequence(r.taps[n]!, r.imageTokens.map((t) => t.position)))));
          values.imageKv = 'each image alone';
        } else if (spec.taps.imageKV) for (const n of kvNames) if (positions.length) keep(`image_${n.replace('present.', 'kv.')}`, gatherSequence(res.taps[n]!, positions));
        if (spec.taps.promptKV) {
          // The question's own tokens (not the chat template), with the word each belongs to.
          const q = question(res.inputIds);
          tensors.prompt_token_map = { dtype: 'int32', shape: [q.length, 3], data: Int32Array.from(q.flatMap((t) => [t.position, t.tokenId, t.word])) };
          for (const n of kvNames) keep(`prompt_${n.replace('present.', 'kv.')}`, gatherSequence(res.taps[n]!, q.map((t) => t.position)));
        }
        for (const t of [...taps.vision, ...taps.decoder]) {
          const raw = res.taps[t.tensor]!;
          const heads = t.name.startsWith('vision.') ? visionHeads : textHeads;
          keep(t.name, t.name.includes('.attentions.') ? attentionAsBHQK(raw, heads) : raw);
        }
        return { metrics, values, tensors };
      },
    };
  }
}

