/**
 * A loaded VLM as the engine uses it: processing on this thread, the forward pass in the
 * compute worker. Forward modes: prefill with taps, greedy generation, answer scoring over
 * a fixed choice set (first-token probabilities), and blind runs (no image, or blank image).
 */
import type { AblationSpec } from '../../../src-shared/ablation/spec.ts';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { ComputeClient } from '../../compute/compute-client.ts';
import type { VlmRunResult, VlmSessionFiles } from '../../compute/vlm/types.ts';
import type { CaptureRequest } from '../../compute/capture/store-capture.ts';
import { type ModelFolder, textConfigOf } from '../model-folder.ts';
import { type ImageInput, VlmProcessing } from './processing.ts';
import { type Family, type FamilyInputs, familyFor } from './families.ts';
import type { ImageTokenPosition } from './token-map.ts';
import { ablationRequest } from './ablation.ts';

export interface ForwardOptions {
  visionTaps?: string[];
  decoderTaps?: string[];
  fullLogits?: boolean;
  maxNewTokens?: number;
  choices?: string[];
  /** Attention edits (the sessions must be the ablation rewrite: resolveTaps with `ablation`). */
  ablation?: AblationSpec;
  /** Text-prefix control: words in the user turn before the first image (VlmProcessing.prompt). */
  textPrefix?: string;
  /**
   * Selective capture written by the compute worker (no tensors come back): built from the
   * encoded prompt, it names the outputs to fetch and what to keep of them. Its fetches are
   * added to visionTaps/decoderTaps.
   */
  capture?: (encoded: { inputIds: number[]; imageTokens: ImageTokenPosition[] }) => { request: CaptureRequest; visionFetches: string[]; decoderFetches: string[] } | undefined;
}

export interface ForwardResult extends VlmRunResult {
  prompt: string;
  inputIds: number[];
  imageTokens: ImageTokenPosition[];
  generatedText?: string;
  /** Per choice: log p(first token of choice) and the probability renormalised over the choices. */
  choiceScores?: { choice: string; tokenId: number; logProb: number; prob: number }[];
}

/** The model's answer over a choice set: the most probable choice, and every choice's probability. */
export function chosenAnswer(res: Pick<ForwardResult, 'choiceScores'>): { choice: string; probs: Record<string, number> } | null {
  if (!res.choiceScores?.length) return null;
  const best = res.choiceScores.reduce((a, b) => (b.prob > a.prob ? b : a));
  return { choice: best.choice, probs: Object.fromEntries(res.choiceScores.map((s) => [s.choice, s.prob])) };
}

/** The image placeholder token: its id from config.json and its text from the tokenizer. */
export function imageTokenOf(folder: ModelFolder, processing: VlmProcessing): { id: number; token: string } {
  const id = Number(folder.config.image_token_index ?? folder.config.image_token_id);
  if (!Number.isInteger(id)) throw new LoupeError('bad-input', 'config.json has neither image_token_index nor image_token_id');
  const token = processing.tokenizer.decode([id], { skip_special_tokens: false });
  if (!token) throw new LoupeError('bad-input', `image token id ${id} is not in the tokenizer`);
  return { id, token };
}

export class Vlm {
  readonly folder: ModelFolder;
  readonly processing: VlmProcessing;
  readonly family: Family;
  readonly imageTokenId: number;
  readonly eosTokenIds: number[];
  /** The placeholder string of the image token in prompts (e.g. `<image>`). */
  readonly imageToken: string;
  private readonly compute: ComputeClient;
  private readonly key: string;

  private constructor(folder: ModelFolder, processing: VlmProcessing, compute: ComputeClient, key: string) {
    this.folder = folder;
    this.processing = processing;
    this.compute = compute;
    this.key = key;
    const cfg = folder.config;
    const image = imageTokenOf(folder, processing);
    this.imageTokenId = image.id;
    // eos may be one id or a list (Llama-3 style); generation stops at any of them.
    const eos = (textConfigOf(cfg) as { eos_token_id?: number | number[] }).eos_token_id ?? (cfg.eos_token_id as number | number[] | undefined);
    this.eosTokenIds = (Array.isArray(eos) ? eos : eos === undefined ? [] : [eos]).filter((x) => Number.isInteger(x));
    this.imageToken = image.token;
    this.family = familyFor(folder, processing, image.id, image.token);
  }

  /** `files` may point at tapped copies of the session files (see engine/graph). */
  static async open(folder: ModelFolder, compute: ComputeClient, key: string, files: VlmSessionFiles = { vision: folder.files.vision_encoder, embed: folder.files.embed_tokens, decoder: folder.files.decoder_model_merged }): Promise<Vlm> {
    const processing = await VlmProcessing.load(folder.path, folder.preprocessor, folder.family);
    const vlm = new Vlm(folder, processing, compute, key);
    const text = textConfigOf(folder.config) as { num_key_value_heads?: number; num_attention_heads: number; head_dim?: number; hidden_size: number; num_hidden_layers?: number };
    await compute.openVlm({
      key,
      files,
      imageTokenId: vlm.imageTokenId,
      numKeyValueHeads: text.num_key_value_heads ?? text.num_attention_heads,
      headDim: text.head_dim ?? text.hidden_size / text.num_attention_heads,
      ...(typeof text.num_hidden_layers === 'number' && { numLayers: text.num_hidden_layers }),
      ...(vlm.family.positionIdStart !== undefined && { positionIdStart: vlm.family.positionIdStart }),
    });
    return vlm;
  }

  async forward(question: string, image: ImageInput, options: ForwardOptions = {}): Promise<ForwardResult> {
    return this.run(await this.family.encode(question, image, options.textPrefix), options);
  }

  /** For inputs prepared elsewhere (reference fixtures): LLaVA-style families only. */
  async forwardEncoded(prompt: string, inputIds: HostTensor, pixelValues: HostTensor | undefined, options: ForwardOptions = {}): Promise<ForwardResult> {
    const imageTokens = this.family.mapTokens(inputIds.data as BigInt64Array);
    return this.run({ prompt, inputIds, ...(pixelValues && { pixelValues }), imageTokens }, options);
  }

  private async run(inputs: FamilyInputs, options: ForwardOptions): Promise<ForwardResult> {
    const { prompt, inputIds, pixelValues, imageTokens } = inputs;
    const ids = Array.from(inputIds.data as BigInt64Array, Number);
    const choiceIds = options.choices?.map((c) => {
      const t = this.processing.tokenIdsOf(c);
      if (t.length === 0) throw new LoupeError('bad-input', `choice "${c}" tokenizes to nothing`);
      return t[0]!;
    });
    const capture = options.capture?.({ inputIds: ids, imageTokens });
    if (choiceIds && new Set(choiceIds).size !== choiceIds.length) throw new LoupeError('bad-input', `choices ${JSON.stringify(options.choices)} share a first token; first-token scoring cannot tell them apart (score the option letters instead: readout spec "scoreBy": "letter", with the letters listed in the prompt)`);
    const res = await this.compute.runVlm({
      key: this.key,
      inputIds: { dtype: 'int64', shape: inputIds.shape, data: BigInt64Array.from(inputIds.data as BigInt64Array) },
      ...(pixelValues && { pixelValues: { dtype: 'float32', shape: pixelValues.shape, data: Float32Array.from(pixelValues.data as Float32Array) } }),
      ...(inputs.visionExtras && { visionExtras: inputs.visionExtras }),
      ...(inputs.mrope && { mrope: inputs.mrope }),
      visionFetches: [...new Set([...(options.visionTaps ?? []), ...(capture?.visionFetches ?? [])])],
      decoderFetches: [...new Set([...(options.decoderTaps ?? []), ...(capture?.decoderFetches ?? [])])],
      ...(capture && { capture: capture.request }),
      fullLogits: options.fullLogits ?? false,
      ...(options.maxNewTokens && { generate: { maxNewTokens: options.maxNewTokens, eosTokenIds: this.eosTokenIds } }),
      ...(choiceIds && { scoreTokenIds: choiceIds }),
      ablation: ablationRequest(this.folder, options.ablation, imageTokens, ids.length),
    });
    const out: ForwardResult = { ...res, prompt, inputIds: ids, imageTokens };
    if (res.generated) out.generatedText = this.processing.decode(res.generated);
    if (choiceIds && res.scoreLogProbs) {
      const max = Math.max(...res.scoreLogProbs);
      const z = res.scoreLogProbs.reduce((s, l) => s + Math.exp(l - max), 0);
      out.choiceScores = options.choices!.map((choice, i) => ({ choice, tokenId: choiceIds[i]!, logProb: res.scoreLogProbs![i]!, prob: Math.exp(res.scoreLogProbs![i]! - max) / z }));
    }
    return out;
  }
}
