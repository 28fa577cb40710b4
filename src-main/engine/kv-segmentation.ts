/**
 * Zero-shot segmentation from the LLM's image key/value tokens ("Visual representations
 * inside the language model"): the token under the item's marker is the query; image tokens
 * more similar to it (cosine) than average form the segment; IoU against the marked object's
 * ground-truth mask on the patch grid. The control scores the same segments against the
 * ground truth with the tokens' grid positions shuffled, so mIoU ≫ control means the K/V
 * tokens really carry where the object is.
 */
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { cosine, shuffle } from '../../src-shared/metrics/probe.ts';
import { iou, patchMask, segmentBySimilarity } from '../../src-shared/metrics/segmentation.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { patchAt } from '../jobs/readout-geometry.ts';
import type { Store } from '../store/store.ts';

export interface KvSegmentationRow {
  layer: number;
  kind: 'key' | 'value';
  items: number;
  miou: number;
  controlMiou: number;
}

export function kvSegmentation(store: Store, runId: string): KvSegmentationRow[] {
  const run = store.runs.get(runId);
  const dataset = store.datasets.get(run.datasetId);
  const acc = new Map<string, { sum: number; control: number; n: number }>();
  for (const result of store.runs.results(runId)) {
    const item = store.datasets.item(run.datasetId, result.itemId);
    const point = item.labels.find((l) => l.kind === 'point' && l.image === 0);
    const mask = item.labels.find((l) => l.kind === 'mask' && l.image === 0);
    if (!point || point.kind !== 'point' || !mask || mask.kind !== 'mask') continue;
    const png = PNG.sync.read(readFileSync(join(dataset.path, mask.file)));
    const ids = Uint8Array.from({ length: png.width * png.height }, (_, i) => png.data[i * 4]!);
    // The marked object: the instance under the marker (masks may list several objects).
    const under = ids[Math.floor(point.at[1]) * png.width + Math.floor(point.at[0])]!;
    const target = new Set(mask.ids?.includes(under) || !mask.ids ? [under] : mask.ids);
    if (under === 0) continue;
    const blob = store.blobs.getTensors(result.tensors[0]!.blob);
    const map = blob.image_token_map?.data as Int32Array | undefined;
    if (!map) continue;
    const tokens = map.length / 5;
    const rows = Math.max(...Array.from({ length: tokens }, (_, k) => map[k * 5 + 3]!)) + 1;
    const cols = Math.max(...Array.from({ length: tokens }, (_, k) => map[k * 5 + 4]!)) + 1;
    const truth = patchMask(ids, png.width, png.height, target, rows, cols);
    const query = patchAt(point.at, { width: png.width, height: png.height }, { rows, cols });
    for (const name of Object.keys(blob).filter((n) => /^image_kv\.\d+\.(key|value)$/.test(n))) {
      const t = blob[name]!;
      const [heads = 1, n = 0, dim = 0] = t.shape;
      const f = toFloat32(t);
      // Token j's vector = its K (or V) across all KV heads.
      const vec = (j: number) => Float32Array.from({ length: heads * dim }, (_, x) => f[(Math.floor(x / dim) * n + j) * dim + (x % dim)]!);
      const tokenOfPatch = (p: number) => Array.from({ length: tokens }, (_, k) => k).find((k) => map[k * 5 + 1] === 0 && map[k * 5 + 3]! * cols + map[k * 5 + 4]! === p)!;
      const q = vec(tokenOfPatch(query));
      const sims = Array.from({ length: rows * cols }, (_, p) => cosine(q, vec(tokenOfPatch(p))));
      const seg = segmentBySimilarity(sims);
      let control = 0;
      for (let s = 0; s < 5; s++) control += iou(shuffle(seg, 17 + s), truth) / 5;
      const key = name.replace('image_kv.', '');
      const a = acc.get(key) ?? { sum: 0, control: 0, n: 0 };
      acc.set(key, { sum: a.sum + iou(seg, truth), control: a.control + control, n: a.n + 1 });
    }
  }
  if (acc.size === 0) throw new LoupeError('bad-input', `run ${runId} has no items with a marker point, an instance mask and captured image K/V (run vlm-forward with taps.imageKV on a dataset with point + mask labels)`);
  return [...acc]
    .map(([key, a]) => {
      const [layer, kind] = key.split('.');
      return { layer: Number(layer), kind: kind as 'key' | 'value', items: a.n, miou: a.sum / a.n, controlMiou: a.control / a.n };
    })
    .sort((x, y) => x.layer - y.layer || x.kind.localeCompare(y.kind));
}
