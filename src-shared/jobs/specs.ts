/**
 * Job specs: what a run was asked to do, validated on receipt and stored with the run
 * (so a run can be reproduced from its row alone).
 */
import { z } from 'zod';
import { AblationSpec } from '../ablation/spec.ts';
import { ModelVariant } from './variant.ts';

export { ModelVariant };

const StoreDtype = z.enum(['float32', 'float16']);

export const EncodeImagesSpec = z
  .object({
    /** Keep the captured tensors in fp16 (half the disk) or fp32 (exact). */
    storeDtype: StoreDtype.default('float16'),
    /** Store per-item image features as tensors (otherwise only summary metrics). */
    storeFeatures: z.boolean().default(true),
    /** Limit to the first N items (0 = all). */
    limit: z.number().int().nonnegative().default(0),
    /**
     * Which dtype export of each ONNX session to load: one dtype for every session (`"q4"`) or a
     * per-session map (`{"decoder_model_merged": "q4", "vision_encoder": "fp32"}`; sessions left
     * out get the default pick). Absent = default pick (fp32 when present). The file each session
     * used is recorded in the run's provenance.
     */
    variant: ModelVariant.optional(),
  })
  .strict();
export type EncodeImagesSpec = z.infer<typeof EncodeImagesSpec>;

/** Which internals to capture per item; only what is asked for is stored. */
export const TapSelection = z
  .object({
    /** Projector output (the image features the LLM receives). */
    projector: z.boolean().default(false),
    /** Key and value vectors at the image-token positions, every LLM layer (keys carry RoPE). */
    imageKV: z.boolean().default(false),
    /**
     * Key and value vectors at the question's text positions, every LLM layer (default off;
     * optional so specs written before it parse unchanged). Stored as `prompt_kv.<layer>.key|value`
     * [kvHeads, nQuestionTokens, headDim] with `prompt_token_map` int32 rows
     * (position, token id, word index into the question split on whitespace).
     */
    promptKV: z.boolean().optional(),
    /** Every vision-encoder layer's hidden state (CLS + patches). */
    visionLayers: z.boolean().default(false),
    /** Every LLM layer's hidden state (all positions). */
    llmLayers: z.boolean().default(false),
    /** Attention probabilities, every layer of both towers where the graph computes them. */
    attention: z.boolean().default(false),
    /**
     * Selective capture (all optional; absent = everything, as before). LLM layers to keep for
     * K/V, hidden states and attention (`hidden_states.N` counts the embeddings as 0, as HF does;
     * K/V and attention count layers from 0).
     */
    layers: z.array(z.number().int().nonnegative()).max(1024).optional(),
    /** Vision-tower layers to keep (hidden states and attention), same numbering. */
    visionLayerSet: z.array(z.number().int().nonnegative()).max(1024).optional(),
    /** Keep every n-th layer (0, n, 2n, …) of those selected; 1 = all. */
    layerStride: z.number().int().min(1).max(1024).optional(),
    /** Heads to keep: key/value heads of K/V, query heads of attention. */
    heads: z.array(z.number().int().nonnegative()).max(1024).optional(),
    /** LLM token rows to keep in hidden states and attention (query rows): all, the image tokens, the question's tokens, or explicit positions. */
    tokens: z.union([z.enum(['all', 'image', 'question']), z.object({ positions: z.array(z.number().int().nonnegative()).max(100_000) }).strict()]).optional(),
    /** Keep every n-th of the selected token rows. */
    tokenStride: z.number().int().min(1).max(4096).optional(),
    /** Attention as stored: every key (`full`), the k largest per row (`topk`, with attentionTopK), or summed over the kept heads (`headsum`). */
    attentionMode: z.enum(['full', 'topk', 'headsum']).optional(),
    attentionTopK: z.number().int().min(1).max(4096).optional(),
  })
  .strict();
export type TapSelection = z.infer<typeof TapSelection>;

export const VlmForwardSpec = z
  .object({
    /** `image`: the item's images; `blank`: blind with a blank image; `none`: blind, text only. */
    image: z.enum(['image', 'blank', 'none']).default('image'),
    /** Greedy tokens to generate after the prompt (0 = score the choices only). */
    maxNewTokens: z.number().int().min(0).max(256).default(0),
    taps: TapSelection.default(TapSelection.parse({})),
    storeDtype: StoreDtype.default('float16'),
    limit: z.number().int().nonnegative().default(0),
    /** Attention edits applied to every item (graph surgery + per-run bias feeds); stored with the run. */
    ablation: AblationSpec.optional(),
    /**
     * Text-prefix control: words placed in the user turn before the first image (before the
     * question when there is no image), so every image token sits later by the prefix's token
     * count. Absent or empty = none. Must not contain the model's image placeholder.
     */
    textPrefix: z.string().max(2000).optional(),
    /** The question for items that have none (benchmark images without questions, e.g. PASCAL-Part for the object-part LogitLens); an item's own prompt wins. */
    prompt: z.string().min(1).max(2000).optional(),
    /**
     * Which dtype export of each ONNX session to load: one dtype for every session (`"q4"`) or a
     * per-session map (`{"decoder_model_merged": "q4", "vision_encoder": "fp32"}`; sessions left
     * out get the default pick). Absent = default pick (fp32 when present). The file each session
     * used is recorded in the run's provenance.
     */
    variant: ModelVariant.optional(),
    /**
     * Multi-image items: take each image's K/V (`image_kv.*`, `image_token_map`) from a forward
     * pass with that image alone, as the papers encode images — in one prompt the second image's
     * tokens have attended to the first. The answer still comes from the one prompt with every
     * image; token positions in `image_token_map` are those of the image's own pass.
     */
    imagesAlone: z.boolean().optional(),
    /**
     * Streaming statistics, computed in the compute worker as items pass (memory bounded by the
     * model, not the item count; nothing extra stored per item) and written once per run to
     * `<data>/run-stats/<run id>.safetensors`: `keyVariance` — image keys' variance per LLM layer
     * and image-token place (Welford; what kv/key-tokens needs, so a run can skip storing K/V);
     * `features` — the mean hidden state per place at these LLM layers (hidden_states.N numbering);
     * `gram` — the mean image-token Gram matrix Xᵀ X / T at these layers.
     */
    stream: z
      .object({
        keyVariance: z.boolean().optional(),
        features: z.array(z.number().int().nonnegative()).max(1024).optional(),
        gram: z.array(z.number().int().nonnegative()).max(1024).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();
export type VlmForwardSpec = z.infer<typeof VlmForwardSpec>;

/**
 * "Hidden in plain sight": per item, the task read out of every stage (vision layers →
 * projector → LLM layers at image positions) next to the VLM's answer and a blind answer.
 * Readout geometry comes from the item's labels (marker points, candidate points, or the
 * whole image); see src-main/experiments/hidden-in-plain-sight/readout-runner.ts.
 */
export const ReadoutSpec = z
  .object({
    /** The blind baseline: a blank image at the same positions, or no image at all. */
    blind: z.enum(['blank', 'none']).default('blank'),
    /** Optional ablation applied to the sighted forward (the compensation experiments). */
    ablation: AblationSpec.optional(),
    /**
     * Also read the task out of Gram matrices (feature correlations) of the patches around the
     * first spot (3×3) or of the whole image: the style readout. Stores those patch rows.
     */
    gram: z.boolean().default(true),
    /** Also probe the vision encoder's CLS token of the first image at every vision layer. */
    cls: z.boolean().default(true),
    /**
     * Also answer by greedy generation of up to this many tokens, matched to the choices
     * (metrics/answer-matching.ts), for the VLM and the blind baseline; 0 = first-token scoring only.
     */
    generate: z.number().int().min(0).max(64).default(0),
    /**
     * First-token scoring of the choices' own words (`choice`), or of the option letters A, B, …
     * by position (`letter`) — for benchmarks whose prompt lists lettered options (BLINK, CV-Bench)
     * and whose choice wordings share a first token.
     */
    scoreBy: z.enum(['choice', 'letter']).default('choice'),
    limit: z.number().int().nonnegative().default(0),
    /**
     * Which dtype export of each ONNX session to load: one dtype for every session (`"q4"`) or a
     * per-session map (`{"decoder_model_merged": "q4", "vision_encoder": "fp32"}`; sessions left
     * out get the default pick). Absent = default pick (fp32 when present). The file each session
     * used is recorded in the run's provenance.
     */
    variant: ModelVariant.optional(),
  })
  .strict();
export type ReadoutSpec = z.infer<typeof ReadoutSpec>;
