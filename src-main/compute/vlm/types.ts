/** What the engine asks of the compute worker's VLM pipeline, and what it gets back. */
import type { TokenLayout } from '../../../src-shared/ablation/mask.ts';
import type { AblationSpec } from '../../../src-shared/ablation/spec.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { CaptureRequest, StoredCapture } from '../capture/store-capture.ts';

export interface VlmSessionFiles {
  vision: string;
  embed: string;
  decoder: string;
}

export interface VlmOpenRequest {
  key: string;
  files: VlmSessionFiles;
  imageTokenId: number;
  /** Used when the decoder declares symbolic KV dims (fallback to config). */
  numKeyValueHeads: number;
  headDim: number;
  /** config.json's LLM layer count, checked against the decoder's past/present KV pairs when the sessions open. */
  numLayers?: number;
  /** The first position id (default 0). PaliGemma's decoder counts from 1: HF's `cache_position + 1`, as transformers.js feeds it. */
  positionIdStart?: number;
}

export interface VlmRunRequest {
  key: string;
  /** int64 [1, seq]. */
  inputIds: HostTensor;
  /** The processor's pixel_values in the family's layout ([n,3,H,W]; Idefics3 [1,tiles,3,H,W]; Qwen2-VL flattened patches); absent for text-only. */
  pixelValues?: HostTensor;
  /** Other vision-encoder inputs the processor produced (pixel_attention_mask, image_grid_thw …), fed by name when the graph declares them. */
  visionExtras?: Record<string, HostTensor>;
  /** Multimodal RoPE (Qwen2-VL): position ids per axis [3][seq] and the offset decoding steps add. */
  mrope?: { ids: number[][]; ropeDelta: number };
  /** Extra vision-encoder outputs (taps) to return. */
  visionFetches: string[];
  /** Extra decoder outputs (taps, `present.*`) to return from the prefill step. */
  decoderFetches: string[];
  /** Return the full prefill logits [1, seq, vocab] (else only the last position). */
  fullLogits?: boolean;
  generate?: { maxNewTokens: number; eosTokenIds: number[] };
  /** Token ids whose next-token log-probabilities at the last prompt position are wanted. */
  scoreTokenIds?: number[];
  /**
   * Attention ablation (needs sessions rewritten with `loupe_attn_bias.<layer>` inputs, see
   * engine/graph/ablation.ts). The worker builds the biases of every step from the spec:
   * the vision prefill, the decoder prefill and each greedy step (the new token's row).
   * Sessions with bias inputs and no `ablation` here get all-zero biases (= no edit).
   */
  ablation?: VlmAblation;
  /**
   * Selective capture written by the worker itself: the ops' sources (listed in vision/decoder
   * fetches) are sliced, converted and streamed into a blob under `blobRoot`; they are not
   * returned in `taps`. The result's `stored` names the blob.
   */
  capture?: CaptureRequest;
}

export interface VlmAblation {
  /** Absent: sessions with bias inputs get all-zero biases. */
  spec?: AblationSpec;
  /** Vision tower token layout (same for every image/crop) and query heads. */
  vision?: { layout: TokenLayout; heads: number };
  /** LLM: prompt length, image tokens with their patch index (−1 for prefix tokens), query heads. */
  llm?: { promptLength: number; imageTokens: { position: number; patch: number }[]; heads: number };
}

export interface VlmRunResult {
  /** Logits at the last prompt position [vocab], float32. */
  lastLogits: Float32Array;
  fullLogits?: HostTensor;
  imageFeatures?: HostTensor;
  taps: Record<string, HostTensor>;
  generated?: number[];
  /** log-softmax over the whole vocabulary, at the requested ids. */
  scoreLogProbs?: number[];
  timings: { visionMs: number; prefillMs: number; decodeMs: number; storeMs?: number };
  /** The blob a capture request wrote (the engine records it with BlobStore.adopt). */
  stored?: StoredCapture;
}
