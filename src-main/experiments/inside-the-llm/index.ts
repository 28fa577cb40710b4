/**
 * "Visual representations inside the language model" probes over a finished vlm-forward run:
 * zero- and few-shot segmentation (class-wise mIoU), semantic correspondence (PCK@α_bbox),
 * DAVIS mask propagation (J&F), referring segmentation (mIoU / cIoU), co-segmentation (J and P,
 * cosegmentation.ts) and class-name semantic segmentation (class-wise mIoU, text-segmentation.ts)
 * from image (and question) K/V tokens, per LLM layer × key/value, each figure with a bootstrap interval (items resampled)
 * and a shuffled control from ≥ 20 permutations (null mean and p). Reads only stored captures:
 * `image_kv.*` (taps.imageKV) and, for referring and text-segmentation, `prompt_kv.*` (taps.promptKV).
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { VlmForwardSpec } from '../../../src-shared/jobs/specs.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { Store } from '../../store/store.ts';
import { openModelFolder } from '../../engine/model-folder.ts';
import { viewMapper } from '../../engine/vlm/pixel-maps.ts';
import { cosegmentationProbeScores, cosegmentationSkip, namedMasks } from './cosegmentation.ts';
import { DIFT_DAVIS } from './label-propagation.ts';
import {
  PROBES,
  type Probe,
  type ProbeOptions,
  ProbeItem,
  type Score,
  type SegmentationTarget,
  SEGMENTATION_METRIC,
  correspondenceScores,
  davisSkip,
  fewShotScores,
  keypointPairs,
  propagationScores,
  referringLabel,
  referringScores,
  referringSkip,
  segmentationScores,
  segmentationTarget,
} from './probes.ts';
import { type Finish, type ItemStat, MIN_PERMUTATIONS, type StatisticsOptions, figure } from './statistics.ts';
import { textSegmentationScores, textSegmentationSkip } from './text-segmentation.ts';
import { ItemTokens, type KvKind } from './tokens.ts';

/** How the run's images were encoded: each alone (as the papers) or together in one prompt. */
export type KvEncoding = 'each image alone' | 'one prompt';

export interface KvProbeRow {
  probe: Probe;
  metric: string;
  layer: number;
  kind: KvKind;
  items: number;
  value: number;
  /** 95% bootstrap interval (items resampled). */
  low: number | null;
  high: number | null;
  /** Mean of the shuffled controls. */
  control: number | null;
  /** Permutation p of value ≥ control figures. */
  p: number;
  permutations: number;
  encoding: KvEncoding;
  /** Caveats of this figure: joint encoding of a multi-image protocol, items left out and why. */
  notes: string[];
}

export interface KvProbeParams {
  alpha?: number;
  alphas?: number[];
  k?: number;
  shots?: number;
  permutations?: number;
  resamples?: number;
  layers?: number[];
  contextFrames?: number;
  neighbourhood?: number;
  temperature?: number;
  probes?: readonly Probe[];
}

export const DEFAULT_ALPHAS = [0.05, 0.1, 0.15];

export function probeOptions(p: KvProbeParams): ProbeOptions & StatisticsOptions {
  const alphas = [...new Set([...(p.alphas ?? DEFAULT_ALPHAS), ...(p.alpha !== undefined ? [p.alpha] : [])])].sort((a, b) => a - b);
  const permutations = p.permutations ?? MIN_PERMUTATIONS;
  if (permutations < MIN_PERMUTATIONS) throw new LoupeError('bad-input', `K/V probe controls need at least ${MIN_PERMUTATIONS} permutations (option 'permutations'), got ${permutations}`);
  return {
    alphas,
    propagation: { topk: p.k ?? DIFT_DAVIS.topk, temperature: p.temperature ?? DIFT_DAVIS.temperature, contextFrames: p.contextFrames ?? DIFT_DAVIS.contextFrames, neighbourhood: p.neighbourhood ?? DIFT_DAVIS.neighbourhood },
    permutations,
    shots: p.shots ?? 8,
    ...(p.layers && { layers: p.layers }),
    resamples: p.resamples ?? 1000,
    seed: 0,
  };
}

const SCORERS: Record<Probe, (p: ProbeItem, o: ProbeOptions) => Score[]> = {
  segmentation: segmentationScores,
  // Not per item: trained across items below.
  'segmentation-few-shot': () => [],
  correspondence: correspondenceScores,
  propagation: propagationScores,
  referring: referringScores,
  cosegmentation: cosegmentationProbeScores,
  'text-segmentation': textSegmentationScores,
};

/** One figure's per-item contributions, keyed by item id (kv/compare pairs them across runs). */
export interface CollectedFigure {
  probe: Probe;
  metric: string;
  layer: number;
  kind: KvKind;
  finish: Finish;
  items: Map<string, ItemStat>;
}

export interface CollectedProbes {
  figures: CollectedFigure[];
  encoding: KvEncoding;
  notes: Map<Probe, string[]>;
  options: ProbeOptions & StatisticsOptions;
}

const MULTI_IMAGE: readonly Probe[] = ['correspondence', 'propagation', 'cosegmentation'];

export function collectKvProbes(store: Store, runId: string, params: KvProbeParams = {}): CollectedProbes {
  const o = probeOptions(params);
  const probes = params.probes ?? PROBES;
  const run = store.runs.get(runId);
  if (run.kind !== 'vlm-forward') throw new LoupeError('bad-input', `run ${runId} is a ${run.kind} run; the K/V probes read vlm-forward runs (taps.imageKV)`);
  const encoding: KvEncoding = VlmForwardSpec.parse(run.spec).imagesAlone ? 'each image alone' : 'one prompt';
  const dataset = store.datasets.get(run.datasetId);
  const view = viewMapper(openModelFolder(store.models.get(run.modelId).path));
  const figures = new Map<string, CollectedFigure>();
  const add = (itemId: string, s: Score) => {
    const key = `${s.probe}|${s.metric}|${s.layer}|${s.kind}`;
    let f = figures.get(key);
    if (!f) figures.set(key, (f = { probe: s.probe, metric: s.metric, layer: s.layer, kind: s.kind, finish: s.finish, items: new Map() }));
    f.items.set(itemId, { stat: s.stat, nulls: s.nulls });
  };
  let withImageKV = 0;
  let withPromptKV = 0;
  let referringItems = 0;
  let multiImage = 0;
  const skipped = new Map<string, number>();
  const skip = (why: string) => skipped.set(why, (skipped.get(why) ?? 0) + 1);
  const fewShot: { p: ProbeItem; target: SegmentationTarget }[] = [];
  for (const result of store.runs.results(runId)) {
    const names = new Set(result.tensors.map((t) => t.name));
    const item = store.datasets.item(run.datasetId, result.itemId);
    if (probes.includes('referring') && referringLabel(item)) referringItems++;
    if (![...names].some((n) => n.startsWith('image_kv.')) || !names.has('image_token_map')) continue;
    withImageKV++;
    if (names.has('prompt_token_map')) withPromptKV++;
    const tensors: Record<string, HostTensor> = {};
    for (const blob of new Set(result.tensors.map((t) => t.blob))) Object.assign(tensors, store.blobs.getTensors(blob));
    const p = new ProbeItem(item, new ItemTokens(tensors), dataset.path, view);
    if (item.images.length > 1) multiImage++;
    for (const probe of probes) for (const s of SCORERS[probe](p, o)) add(item.id, s);
    if (probes.includes('propagation') && item.images.length > 1 && item.labels.some((l) => l.kind === 'mask') && keypointPairs(item).length === 0) {
      const why = davisSkip(p);
      if (why) skip(`propagation|${why}`);
    }
    if (probes.includes('referring') && referringLabel(item)) {
      const why = referringSkip(p);
      if (why) skip(`referring|${why}`);
    }
    if (probes.includes('cosegmentation') && namedMasks(p).length >= 2) {
      const why = cosegmentationSkip(p);
      if (why) skip(`cosegmentation|${why}`);
    }
    if (probes.includes('text-segmentation')) {
      const why = textSegmentationSkip(p);
      if (why) skip(`text-segmentation|${why}`);
    }
    const target = probes.includes('segmentation-few-shot') ? segmentationTarget(p) : null;
    if (target) fewShot.push({ p, target });
  }
  for (const { itemId, score } of fewShotScores(fewShot, o)) add(itemId, score);
  if (withImageKV === 0) throw new LoupeError('bad-input', `run ${runId} captured no image K/V: run vlm-forward with taps.imageKV (--spec '{"taps":{"imageKV":true}}')`);
  if (referringItems > 0 && withPromptKV === 0) {
    throw new LoupeError('bad-input', `run ${runId} has ${referringItems} referring items (a box with text) but captured no K/V at the question's tokens: run vlm-forward with taps.promptKV as well (--spec '{"taps":{"imageKV":true,"promptKV":true}}')`);
  }
  if (figures.size === 0) {
    throw new LoupeError(
      'bad-input',
      `run ${runId} has no items the K/V probes apply to (${probes.join(', ')}): segmentation needs a point and an instance mask on image 0 (few-shot segmentation more than ${o.shots} such items), correspondence pointPairs between two captured images, propagation a mask on each of ≥ 3 frames, referring a box with text plus taps.promptKV, co-segmentation ≥ 2 images with masks named by one class, text-segmentation a mask named by a class that its prompt names plus taps.promptKV${skipped.size ? `; left out: ${[...skipped].map(([k, n]) => `${n} × ${k.replace('|', ': ')}`).join('; ')}` : ''}`,
    );
  }
  const notes = new Map<Probe, string[]>();
  const note = (probe: Probe, text: string) => notes.set(probe, [...(notes.get(probe) ?? []), text]);
  for (const [key, n] of skipped) {
    const [probe, why] = key.split('|') as [Probe, string];
    note(probe, `${n} item(s) left out: ${why}`);
  }
  if (encoding === 'one prompt' && multiImage > 0) {
    for (const probe of MULTI_IMAGE) {
      note(probe, `joint encoding: the run put all of an item's images in one prompt, so each later image's K/V attended to the earlier ones — the papers encode each image alone (rerun vlm-forward with spec imagesAlone: true); this figure is not the papers' protocol`);
    }
  }
  return { figures: [...figures.values()], encoding, notes, options: o };
}

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);
const order = (p: Probe) => PROBES.indexOf(p);
export const figureOrder = (x: { probe: Probe; metric: string; layer: number; kind: string }, y: typeof x) => order(x.probe) - order(y.probe) || x.metric.localeCompare(y.metric) || x.layer - y.layer || x.kind.localeCompare(y.kind);

export function kvProbes(store: Store, runId: string, params: KvProbeParams = {}): KvProbeRow[] {
  const c = collectKvProbes(store, runId, params);
  return c.figures
    .map((f): KvProbeRow | null => {
      const items = [...f.items.values()];
      const fig = figure(items, f.finish, c.options);
      // A figure undefined on these items (e.g. no class present) is not a row.
      if (!Number.isFinite(fig.value)) return null;
      return { probe: f.probe, metric: f.metric, layer: f.layer, kind: f.kind, items: items.length, value: fig.value, low: finiteOrNull(fig.low), high: finiteOrNull(fig.high), control: finiteOrNull(fig.control), p: fig.p, permutations: fig.permutations, encoding: c.encoding, notes: c.notes.get(f.probe) ?? [] };
    })
    .filter((r): r is KvProbeRow => r !== null)
    .sort(figureOrder);
}

export interface KvSegmentationRow {
  layer: number;
  kind: KvKind;
  items: number;
  miou: number;
  controlMiou: number;
}

/** The segmentation probe alone (class-wise mIoU), in the shape of the `kv/segmentation` method. */
export function kvSegmentation(store: Store, runId: string): KvSegmentationRow[] {
  let rows: KvProbeRow[];
  try {
    rows = kvProbes(store, runId, { probes: ['segmentation'] });
  } catch (e) {
    if (e instanceof LoupeError && e.code === 'bad-input' && !/taps\.imageKV|is a .* run/.test(e.message)) {
      throw new LoupeError('bad-input', `run ${runId} has no items with a marker point, an instance mask and captured image K/V (run vlm-forward with taps.imageKV on a dataset with point + mask labels)`);
    }
    throw e;
  }
  return rows.filter((r) => r.metric === SEGMENTATION_METRIC).map((r) => ({ layer: r.layer, kind: r.kind, items: r.items, miou: r.value, controlMiou: r.control ?? NaN }));
}
