/** What the engine asks of the compute worker's VLM pipeline, and what it gets back. */
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';

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
}

export interface VlmRunRequest {
  key: string;
  /** int64 [1, seq]. */
  inputIds: HostTensor;
  /** float32 [numImages, 3, H, W]; absent for text-only (blind, no image). */
  pixelValues?: HostTensor;
  /** Extra vision-encoder outputs (taps) to return. */
  visionFetches: string[];
  /** Extra decoder outputs (taps, `present.*`) to return from the prefill step. */
  decoderFetches: string[];
  /** Return the full prefill logits [1, seq, vocab] (else only the last position). */
  fullLogits?: boolean;
  generate?: { maxNewTokens: number; eosTokenId: number | null };
  /** Token ids whose next-token log-probabilities at the last prompt position are wanted. */
  scoreTokenIds?: number[];
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
  timings: { visionMs: number; prefillMs: number; decodeMs: number };
}
