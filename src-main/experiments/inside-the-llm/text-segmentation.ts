/**
 * Zero-shot semantic segmentation from the class name's text tokens ("Visual representations
 * inside the language model", ImageNet-S protocol: the class name's representation inside the
 * LLM against the image's value tokens selects the segment). Loupe's rule, per image that carries
 * a mask label named by class (`<class>` of `<class>/<part>`) and per LLM layer × key/value:
 *
 * 1. The class name must be in the item's prompt (words, case and edge punctuation ignored, the
 *    last occurrence — as the referring probe finds its expression); its question tokens'
 *    K (or V) vectors (taps.promptKV, `prompt_token_map` word index) are averaged.
 * 2. Cosine of that vector with each of the image's tokens (the same layer and kind); the segment
 *    is the cells above the midpoint of the mean and the maximum similarity — the zero-shot
 *    segmentation probe's threshold (src-shared/metrics/segmentation.ts `segmentBySimilarity`).
 * 3. Cells → pixels (pixels.ts) → intersection and union with the named mask's pixels (its ids,
 *    or every non-zero id; pixels of its `ignoreIds` left out) under the class: class-wise mIoU, Pascal-5i convention as the
 *    segmentation probe (per class ΣI/ΣU over the dataset, mean over classes).
 *
 * Control s: the similarity map permuted over the grid with permutation s (as referring).
 * Items whose prompt lacks the class name, or whose run captured no question K/V, are left out
 * and counted in the figure's notes (index.ts).
 */
import { dotRows, unitRows } from '../../../src-shared/metrics/correspondence.ts';
import { segmentBySimilarity } from '../../../src-shared/metrics/segmentation.ts';
import { namedMasks } from './cosegmentation.ts';
import { cellsToPixels } from './pixels.ts';
import { IGNORED_PIXEL, type ProbeItem, type ProbeOptions, type Score, expressionSpan, iouStat, maskClass, permutations } from './probes.ts';
import { classMeanIoU } from './statistics.ts';
import { gatherTokens, kvTensors } from './tokens.ts';

export const TEXT_SEGMENTATION_METRIC = 'class-wise mIoU (pixels, class-name tokens)';

const words = (prompt: string) => prompt.trim().split(/\s+/);

/** Why an item with a named mask is not scored, or null. */
export function textSegmentationSkip(p: ProbeItem): string | null {
  const masks = namedMasks(p);
  if (!masks.length) return null;
  if (!p.tokens.tensors.prompt_token_map) return 'no K/V at the question tokens (taps.promptKV)';
  const absent = masks.map((m) => maskClass(m.label)).find((c) => !p.item.prompt || !expressionSpan(words(p.item.prompt), c));
  if (absent !== undefined) return `its class name "${absent}" is not in its prompt`;
  if (!masks.some((m) => p.tokens.images.get(m.image))) return 'no captured tokens of its masked images';
  return null;
}

export function textSegmentationScores(p: ProbeItem, o: ProbeOptions): Score[] {
  const masks = namedMasks(p).filter((m) => p.tokens.images.get(m.image));
  if (!masks.length || textSegmentationSkip(p) !== null) return [];
  const map = p.tokens.tensors.prompt_token_map!.data as Int32Array;
  const tokenRows = Array.from({ length: map.length / 3 }, (_, r) => r);
  const layers = new Set(p.kv(o).map((t) => t.layer));
  const targets = masks.map(({ image, label }) => {
    const className = maskClass(label);
    const span = expressionSpan(words(p.item.prompt!), className)!;
    const m = p.mask(label);
    const ids = label.ids ? new Set(label.ids) : null;
    const ignored = new Set(label.ignoreIds ?? []);
    const grid = p.tokens.images.get(image)!.grid;
    return {
      image,
      className,
      n: grid.rows * grid.cols,
      rows: tokenRows.filter((r) => map[r * 3 + 2]! >= span[0] && map[r * 3 + 2]! < span[1]),
      // Ignored pixels (ImageNet-S 1000) are out of intersection and union, as the official evaluator drops them.
      truth: Uint8Array.from(m.ids, (v) => (ignored.has(v) ? IGNORED_PIXEL : ids ? (ids.has(v) ? 1 : 0) : v !== 0 ? 1 : 0)),
      cells: p.pixelCells(image, m),
    };
  });
  const out: Score[] = [];
  for (const t of kvTensors(p.tokens.tensors, 'prompt')) {
    const imageName = `image_kv.${t.layer}.${t.kind}`;
    if (!p.tokens.tensors[imageName] || !layers.has(t.layer)) continue;
    const d = p.tokens.width(imageName);
    const stat: Record<string, number> = {};
    const nulls: Record<string, number>[] = Array.from({ length: o.permutations }, () => ({}));
    let scored = 0;
    for (const target of targets) {
      // A class name the tokenizer merged into a neighbouring word's token has no rows of its own.
      if (!target.rows.length) continue;
      scored++;
      const text = gatherTokens(p.tokens.tensors[t.name]!, target.rows);
      const mean = new Float32Array(d);
      for (let r = 0; r < target.rows.length; r++) for (let j = 0; j < d; j++) mean[j]! += text[r * d + j]! / target.rows.length;
      const sims = dotRows(unitRows(mean, 1, d), p.tokens.unit(imageName, target.image), target.n, d);
      const statOf = (s: ArrayLike<number>) => iouStat(cellsToPixels(segmentBySimilarity(s), target.cells), target.truth, target.className);
      for (const [k, v] of Object.entries(statOf(sims))) stat[k] = (stat[k] ?? 0) + v;
      permutations(target.n, o.permutations).forEach((perm, s) => {
        for (const [k, v] of Object.entries(statOf(perm.map((c) => sims[c]!)))) nulls[s]![k] = (nulls[s]![k] ?? 0) + v;
      });
    }
    if (scored) out.push({ probe: 'text-segmentation', metric: TEXT_SEGMENTATION_METRIC, layer: t.layer, kind: t.kind, stat, nulls, finish: classMeanIoU });
  }
  return out;
}
