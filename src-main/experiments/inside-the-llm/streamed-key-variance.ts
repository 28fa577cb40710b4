/**
 * Key tokens from a run's streamed key variance (vlm-forward `spec.stream.keyVariance`, written
 * by the compute worker to `<data>/run-stats/<run id>.safetensors`), for runs that stored no K/V.
 * The statistic is key-tokens.ts's — per layer and place, Σ_d M2_d / n of the key vector (Welford
 * in float64 over the same float32 keys) — so the rows equal those a stored-K/V run gives; the
 * normalisation, flag rule and blocking spec are key-tokens.ts's own functions. Mean attention
 * received needs stored attention, so it is null here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { decodeSafetensors } from '../../../src-shared/tensor/safetensors.ts';
import type { StreamSlot } from '../../compute/capture/stream-stats.ts';
import { streamedStatsPath } from '../../jobs/stream-request.ts';
import type { Store } from '../../store/store.ts';
import { DEFAULT_MAX_PER_LAYER, DEFAULT_THRESHOLD, FLAG_RULE, type KeyTokenOptions, type KeyTokenRow, type KeyTokensResult, layerStats, rankLayers } from './key-tokens.ts';

interface SlotStat {
  key: string;
  n: number;
  variance: number;
  meanNorm: number;
}

export interface StreamedKeyVariance {
  items: number;
  places: Omit<StreamSlot, 'position'>[];
  layers: { layer: number; slots: SlotStat[] }[];
  input: { layer: number; slots: SlotStat[] } | null;
}

/** The run's streamed key variance, or null when the run streamed none (no file, or no keyVariance in it). */
export function readStreamedKeyVariance(store: Store, runId: string): StreamedKeyVariance | null {
  const path = streamedStatsPath(dirname(store.blobs.root), runId);
  if (!existsSync(path)) return null;
  const { metadata } = decodeSafetensors(readFileSync(path));
  const kv = JSON.parse(metadata.keyVariance ?? 'null') as Pick<StreamedKeyVariance, 'layers' | 'input'> | null;
  if (!kv) return null;
  return { items: Number(metadata.items), places: JSON.parse(metadata.places ?? '[]') as StreamedKeyVariance['places'], ...kv };
}

/** keyTokens() over the streamed statistic; null when the run has none. */
export function streamedKeyTokens(store: Store, runId: string, options: KeyTokenOptions = {}): KeyTokensResult | null {
  const s = readStreamedKeyVariance(store, runId);
  if (!s) return null;
  const run = store.runs.get(runId);
  if (s.items !== run.done) {
    throw new LoupeError(
      'bad-input',
      `run ${runId}'s streamed key variance covers ${s.items} items but the run has ${run.done} done (its statistics were lost with a restarted engine or worker, or items were retried): run it again with spec.stream.keyVariance, or with taps.imageKV to compute from stored keys`,
    );
  }
  if (s.items < 2) throw new LoupeError('bad-input', `run ${runId} streamed key variance over ${s.items} item; the variance across inputs needs at least 2`);
  const maxPerLayer = options.maxPerLayer ?? DEFAULT_MAX_PER_LAYER;
  const threshold = options.threshold ?? DEFAULT_THRESHOLD;
  const inputFloor = options.inputFloor ?? 0;
  const place = new Map(s.places.map((p) => [p.key, p]));
  // Patch index = row × the grid's columns (per image and tile), as key-tokens.ts computes it.
  const cols = new Map<string, number>();
  for (const p of s.places) cols.set(`${p.image}:${p.tile}`, Math.max(cols.get(`${p.image}:${p.tile}`) ?? 0, p.col + 1));
  const patchOf = (p: Omit<StreamSlot, 'position'>) => (p.row < 0 ? -1 : p.row * cols.get(`${p.image}:${p.tile}`)! + p.col);
  const inputKeys = (s.input?.slots ?? []).filter((x) => x.n >= 2);
  const inputStats = layerStats(inputKeys.map((x) => x.variance));
  const inputNormalised = new Map(inputKeys.map((x, i) => [x.key, inputStats.normalised[i]!]));
  const perLayer = s.layers.map(({ layer, slots }) => {
    const entries = slots.filter((x) => x.n >= 2);
    const stats = layerStats(
      entries.map((x) => x.variance),
      threshold,
    );
    const rows: KeyTokenRow[] = entries.map((x, i) => {
      const p = place.get(x.key)!;
      return {
        layer,
        image: p.image,
        tile: p.tile,
        row: p.row,
        col: p.col,
        patch: patchOf(p),
        items: x.n,
        variance: x.variance,
        normalised: stats.normalised[i]!,
        z: stats.z[i]!,
        meanNorm: x.meanNorm,
        inputNormalised: inputNormalised.get(x.key) ?? null,
        attention: null,
        flagged: stats.flagged[i]! && (inputFloor <= 0 || (inputNormalised.get(x.key) ?? Infinity) >= inputFloor),
      };
    });
    return { layer, rows, stats };
  });
  return { runId, items: s.items, threshold, inputFloor, rule: `${FLAG_RULE} — from the run's streamed statistics (no stored K/V)`, ...rankLayers(run, perLayer, maxPerLayer) };
}
