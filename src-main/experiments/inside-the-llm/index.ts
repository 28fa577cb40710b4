/**
 * "Visual representations inside the language model" probes over a finished vlm-forward run:
 * zero-shot and few-shot segmentation, point correspondence (PCK@α), mask propagation (J) and referring
 * expression grounding, per LLM layer × key/value, each next to a shuffled-position control
 * (see probes.ts). Reads only stored captures: `image_kv.*` (taps.imageKV) and, for referring,
 * `prompt_kv.*` (taps.promptKV).
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { Store } from '../../store/store.ts';
import { type SegmentationItem, fewShotSegmentation } from '../../../src-shared/metrics/few-shot-segmentation.ts';
import { PROBES, SEGMENTATION_METRIC, type Probe, type ProbeOptions, ProbeItem, type Score, correspondenceScores, propagationScores, referringLabel, referringScores, segmentationScores, segmentationTarget } from './probes.ts';
import { ItemTokens, type KvKind } from './tokens.ts';
import { openModelFolder } from '../../engine/model-folder.ts';
import { viewMapper } from '../../engine/vlm/pixel-maps.ts';

export interface KvProbeRow {
  probe: Probe;
  metric: string;
  layer: number;
  kind: KvKind;
  items: number;
  value: number;
  control: number;
}

const SCORERS: Record<Probe, (p: ProbeItem, o: ProbeOptions) => Score[]> = {
  segmentation: segmentationScores,
  // Not per item: trained across items below.
  'segmentation-few-shot': () => [],
  correspondence: correspondenceScores,
  propagation: propagationScores,
  referring: referringScores,
};

export function kvProbes(store: Store, runId: string, options: Partial<ProbeOptions> & { probes?: readonly Probe[] } = {}): KvProbeRow[] {
  const o: ProbeOptions = { alpha: options.alpha ?? 0.1, k: options.k ?? 5, seeds: options.seeds ?? 5, shots: options.shots ?? 8 };
  const probes = options.probes ?? PROBES;
  const run = store.runs.get(runId);
  const dataset = store.datasets.get(run.datasetId);
  const view = viewMapper(openModelFolder(store.models.get(run.modelId).path));
  const acc = new Map<string, { row: Omit<KvProbeRow, 'items' | 'value' | 'control'>; sum: number; control: number; n: number }>();
  let withImageKV = 0;
  let withPromptKV = 0;
  let referringItems = 0;
  // Few-shot segmentation: per image K/V tensor, every segmentation item's tokens and truth, in run order.
  const fewShot = new Map<string, { layer: number; kind: KvKind; d: number; items: SegmentationItem[] }>();
  for (const result of store.runs.results(runId)) {
    const names = new Set(result.tensors.map((t) => t.name));
    const hasImageKV = [...names].some((n) => n.startsWith('image_kv.'));
    const item = store.datasets.item(run.datasetId, result.itemId);
    if (probes.includes('referring') && referringLabel(item)) referringItems++;
    if (!hasImageKV || !names.has('image_token_map')) continue;
    withImageKV++;
    if (names.has('prompt_token_map')) withPromptKV++;
    const tensors: Record<string, HostTensor> = {};
    for (const blob of new Set(result.tensors.map((t) => t.blob))) Object.assign(tensors, store.blobs.getTensors(blob));
    const p = new ProbeItem(item, new ItemTokens(tensors), dataset.path, view);
    for (const probe of probes) {
      for (const s of SCORERS[probe](p, o)) {
        const key = `${s.probe}|${s.metric}|${s.layer}|${s.kind}`;
        const a = acc.get(key) ?? { row: { probe: s.probe, metric: s.metric, layer: s.layer, kind: s.kind }, sum: 0, control: 0, n: 0 };
        acc.set(key, { ...a, sum: a.sum + s.value, control: a.control + s.control, n: a.n + 1 });
      }
    }
    const target = probes.includes('segmentation-few-shot') ? segmentationTarget(p) : null;
    if (target) {
      for (const { name, layer, kind } of p.tokens.kv) {
        const f = fewShot.get(name) ?? { layer, kind, d: p.tokens.width(name), items: [] };
        fewShot.set(name, f);
        if (f.d === p.tokens.width(name)) f.items.push({ x: p.tokens.unit(name, 0), truth: target.truth });
      }
    }
  }
  for (const f of fewShot.values()) {
    const r = fewShotSegmentation(f.items, f.d, o.shots, { seed: 1 });
    if (!r) continue;
    acc.set(`segmentation-few-shot|${f.layer}|${f.kind}`, { row: { probe: 'segmentation-few-shot', metric: `${SEGMENTATION_METRIC} (${o.shots}-shot)`, layer: f.layer, kind: f.kind }, sum: r.miou * r.items, control: r.control * r.items, n: r.items });
  }
  if (withImageKV === 0) throw new LoupeError('bad-input', `run ${runId} captured no image K/V: run vlm-forward with taps.imageKV (--spec '{"taps":{"imageKV":true}}')`);
  if (referringItems > 0 && withPromptKV === 0) {
    throw new LoupeError('bad-input', `run ${runId} has ${referringItems} referring items (a box with text) but captured no K/V at the question's tokens: run vlm-forward with taps.promptKV as well (--spec '{"taps":{"imageKV":true,"promptKV":true}}')`);
  }
  if (acc.size === 0) {
    throw new LoupeError(
      'bad-input',
      `run ${runId} has no items the K/V probes apply to (${probes.join(', ')}): segmentation needs a point and an instance mask on image 0 (few-shot segmentation more than ${o.shots} such items), correspondence a pointPair between two captured images, propagation a pointPair plus masks on both images, referring a box with text plus taps.promptKV`,
    );
  }
  const order = (p: Probe) => PROBES.indexOf(p);
  return [...acc.values()]
    .map((a) => ({ ...a.row, items: a.n, value: a.sum / a.n, control: a.control / a.n }))
    .sort((x, y) => order(x.probe) - order(y.probe) || x.metric.localeCompare(y.metric) || x.layer - y.layer || x.kind.localeCompare(y.kind));
}

export interface KvSegmentationRow {
  layer: number;
  kind: KvKind;
  items: number;
  miou: number;
  controlMiou: number;
}

/** The segmentation probe alone, in the shape of the `kv/segmentation` method. */
export function kvSegmentation(store: Store, runId: string): KvSegmentationRow[] {
  let rows: KvProbeRow[];
  try {
    rows = kvProbes(store, runId, { probes: ['segmentation'] });
  } catch (e) {
    if (e instanceof LoupeError && e.code === 'bad-input') {
      throw new LoupeError('bad-input', `run ${runId} has no items with a marker point, an instance mask and captured image K/V (run vlm-forward with taps.imageKV on a dataset with point + mask labels)`);
    }
    throw e;
  }
  return rows.map((r) => ({ layer: r.layer, kind: r.kind, items: r.items, miou: r.value, controlMiou: r.control }));
}
