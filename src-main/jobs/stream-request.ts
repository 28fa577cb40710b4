/**
 * vlm-forward's `spec.stream` → what the compute worker accumulates per item
 * (compute/capture/stream-stats.ts), and where the per-run result lands.
 */
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { TapSelection, VlmForwardSpec } from '../../src-shared/jobs/specs.ts';
import type { StreamRequest, StreamSlot } from '../compute/capture/stream-stats.ts';
import type { ResolvedTaps } from '../engine/vlm/tap-sets.ts';
import type { ImageTokenPosition } from '../engine/vlm/token-map.ts';

/** `<data>/run-stats/<run id>.safetensors`: one small file per run, beside the blobs (not content-addressed: a run's statistic is rewritten as it grows). */
export function streamedStatsPath(dataDir: string, runId: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(runId)) throw new LoupeError('bad-input', `not a run id: ${runId}`);
  return join(dataDir, 'run-stats', `${runId}.safetensors`);
}

const hiddenLayers = (spec: Pick<VlmForwardSpec, 'stream'>) => [...new Set([...(spec.stream?.features ?? []), ...(spec.stream?.gram ?? [])])];

/** The tap selection to resolve: the spec's, plus the LLM hidden states streamed features or Gram read. */
export function tapsForStream(spec: Pick<VlmForwardSpec, 'taps' | 'stream'>): TapSelection {
  return hiddenLayers(spec).length && !spec.taps.llmLayers ? { ...spec.taps, llmLayers: true } : spec.taps;
}

/** Whether the capture stores this decoder tap (false for hidden states tapped only for the stream). */
export function storedByCapture(spec: Pick<VlmForwardSpec, 'taps'>, tap: { name: string }): boolean {
  return !!spec.taps.llmLayers || !/^text\.(hidden_states\.\d+|final_norm)$/.test(tap.name);
}

/**
 * Splits resolved taps into what the capture stores (the spec's own selection) and the hidden
 * states the stream reads by layer (`text.hidden_states.N`); a streamed layer the graph lacks is an error naming it.
 */
export function splitStreamTaps(spec: Pick<VlmForwardSpec, 'taps' | 'stream'>, tapped: ResolvedTaps): { taps: ResolvedTaps; hidden: Map<number, string> } {
  const hidden = new Map<number, string>();
  for (const t of tapped.decoder) {
    const m = /^text\.hidden_states\.(\d+)$/.exec(t.name);
    if (m) hidden.set(Number(m[1]), t.tensor);
  }
  for (const l of hiddenLayers(spec)) {
    if (!hidden.has(l)) throw new LoupeError('bad-input', `spec.stream asks for LLM layer ${l}, but the decoder has hidden states ${[...hidden.keys()].join(', ') || 'none'} (text.hidden_states.N, N = 0 for the embeddings)`);
  }
  const stored = spec.taps.llmLayers ? tapped : { ...tapped, decoder: tapped.decoder.filter((t) => storedByCapture(spec, t)) };
  return { taps: stored, hidden };
}

/** One item's places, keyed as key-tokens.ts keys them (prefix tokens by their order within the map). */
export function streamSlots(imageTokens: readonly ImageTokenPosition[]): StreamSlot[] {
  return imageTokens.map((t, k) => ({ key: t.row < 0 ? `${t.image}:${t.tile}:p${k}` : `${t.image}:${t.tile}:${t.row}:${t.col}`, position: t.position, image: t.image, tile: t.tile, row: t.row, col: t.col }));
}

export function streamRequestFor(runId: string, spec: Pick<VlmForwardSpec, 'stream'>, textLayers: number, imageTokens: readonly ImageTokenPosition[], hidden: Map<number, string>): StreamRequest | undefined {
  const s = spec.stream;
  if (!s || (!s.keyVariance && !s.features?.length && !s.gram?.length)) return undefined;
  return {
    id: runId,
    slots: streamSlots(imageTokens),
    ...(s.keyVariance && { keyVariance: { layers: Array.from({ length: textLayers }, (_, i) => i) } }),
    ...(s.features?.length && { features: s.features.map((layer) => ({ layer, source: hidden.get(layer)! })) }),
    ...(s.gram?.length && { gram: s.gram.map((layer) => ({ layer, source: hidden.get(layer)! })) }),
  };
}
