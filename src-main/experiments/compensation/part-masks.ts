/**
 * Object parts of a dataset item and the image tokens over them, for the object-part LogitLens.
 *
 * A part is a mask label named `<class>/<part>` (PASCAL-Part's naming, as the PASCAL-Part importer
 * and the world's object-parts task write them): the label's instance ids in its PNG are the
 * part's pixels. Its tokens are the whole-image view's patches (inside-the-llm/tokens.ts
 * imageGrids) the mask covers at all (coverage > 0), found through the model's one pixel → token
 * map (src-shared/vision/pixel-map.ts: the processor's resize and centre crop), so a part the
 * processor crops away has no tokens and is reported, not ranked.
 */
import { join } from 'node:path';
import type { DatasetItem, Label } from '../../../src-shared/dataset/format.ts';
import { type Grid, type PixelMap, type Size, cellCoverage, mapForRaster } from '../../../src-shared/vision/pixel-map.ts';
import { imageSize, readMask } from '../inside-the-llm/images.ts';
import { imageGrids } from '../inside-the-llm/tokens.ts';

export type MaskLabel = Extract<Label, { kind: 'mask' }>;

export interface PartName {
  /** The label's full name, `<class>/<part>`: what results are grouped by. */
  name: string;
  /** The text whose first token is ranked: the part segment as a word (PASCAL-Part abbreviations expanded), underscores read as spaces. */
  text: string;
}

/**
 * PASCAL-Part's abbreviated part names (the devkit's part2ind.m) → the word ranked: side and
 * position prefixes dropped (l/r left/right, f/b front/back, u/l upper/lower, h/c train head/coach),
 * e.g. `lfuleg` → leg, `rfpa` → paw, `fwheel` → wheel, `fliplate` → plate. Instance suffixes `_N`
 * (`window_1`, `engine_2`) are dropped before the lookup.
 */
const PASCAL_PART_WORDS: Record<string, string> = {
  ...Object.fromEntries(['leye', 'reye'].map((k) => [k, 'eye'])),
  ...Object.fromEntries(['lear', 'rear'].map((k) => [k, 'ear'])),
  ...Object.fromEntries(['lebrow', 'rebrow'].map((k) => [k, 'eyebrow'])),
  ...Object.fromEntries(['lhand', 'rhand'].map((k) => [k, 'hand'])),
  ...Object.fromEntries(['lfoot', 'rfoot'].map((k) => [k, 'foot'])),
  ...Object.fromEntries(['lwing', 'rwing'].map((k) => [k, 'wing'])),
  ...Object.fromEntries(['lhorn', 'rhorn'].map((k) => [k, 'horn'])),
  ...Object.fromEntries(['llarm', 'luarm', 'rlarm', 'ruarm'].map((k) => [k, 'arm'])),
  ...Object.fromEntries(
    ['lleg', 'rleg', 'llleg', 'luleg', 'rlleg', 'ruleg', 'lfleg', 'rfleg', 'lbleg', 'rbleg', 'lfuleg', 'lflleg', 'rfuleg', 'rflleg', 'lbuleg', 'lblleg', 'rbuleg', 'rblleg'].map((k) => [k, 'leg']),
  ),
  ...Object.fromEntries(['lfpa', 'rfpa', 'lbpa', 'rbpa'].map((k) => [k, 'paw'])),
  ...Object.fromEntries(['lfho', 'rfho', 'lbho', 'rbho'].map((k) => [k, 'hoof'])),
  ...Object.fromEntries(['fwheel', 'bwheel'].map((k) => [k, 'wheel'])),
  ...Object.fromEntries(['leftmirror', 'rightmirror'].map((k) => [k, 'mirror'])),
  ...Object.fromEntries(['fliplate', 'bliplate'].map((k) => [k, 'plate'])),
  ...Object.fromEntries(['frontside', 'leftside', 'rightside', 'backside', 'roofside', 'hfrontside', 'hleftside', 'hrightside', 'hbackside', 'hroofside', 'cfrontside', 'cleftside', 'crightside', 'cbackside', 'croofside'].map((k) => [k, 'side'])),
  chainwheel: 'chain',
};

/** `<class>/<part>` → its parts; undefined for a mask label that names no part. */
export function parsePartName(name: string | undefined): PartName | undefined {
  if (!name) return undefined;
  const cut = name.lastIndexOf('/');
  if (cut <= 0 || cut === name.length - 1) return undefined;
  const raw = name.slice(cut + 1).replace(/_\d+$/, '');
  return { name, text: (PASCAL_PART_WORDS[raw] ?? raw).replaceAll('_', ' ') };
}

/** Whether `part` is selected by `wanted` (full `<class>/<part>` names or bare part names); everything when absent. */
export function partSelected(part: PartName, wanted?: readonly string[]): boolean {
  return !wanted || wanted.includes(part.name) || wanted.includes(part.name.slice(part.name.lastIndexOf('/') + 1));
}

export interface PartTokens {
  part: PartName;
  image: number;
  /** Sequence positions of the image tokens over the part (ascending). */
  positions: number[];
}

export interface PartSkip {
  part: string;
  reason: string;
}

/**
 * The parts of `item` and their token positions, from the run's `image_token_map`
 * (rows: position, image, tile, row, col). `view` is the model's pixel → token map.
 */
export function partTokens(
  item: DatasetItem,
  datasetRoot: string,
  tokenMap: ArrayLike<number>,
  view: (image: Size, grid: Grid) => PixelMap,
  wanted?: readonly string[],
): { parts: PartTokens[]; skipped: PartSkip[] } {
  const grids = imageGrids(tokenMap);
  const parts: PartTokens[] = [];
  const skipped: PartSkip[] = [];
  for (const label of item.labels) {
    if (label.kind !== 'mask') continue;
    const part = parsePartName(label.name);
    if (!part || !partSelected(part, wanted)) continue;
    const tokens = grids.get(label.image);
    if (!tokens) {
      skipped.push({ part: part.name, reason: `the run has no complete token grid for image ${label.image}` });
      continue;
    }
    // 8- or 16-bit ids (importers write 16-bit layers when an image has more than 255 masks in one layer), through the mask limits.
    const mask = readMask(join(datasetRoot, label.file));
    const map = mapForRaster(view(imageSize(join(datasetRoot, item.images[label.image]!)), tokens.grid), mask);
    const ids = new Set(label.ids ?? [...new Set(mask.ids)].filter((v) => v > 0));
    const coverage = cellCoverage(map, mask.ids, ids);
    const positions = [...coverage.keys()].filter((c) => coverage[c]! > 0).map((c) => tokenMap[tokens.tokenOf[c]! * 5]!);
    if (!positions.length) {
      skipped.push({ part: part.name, reason: `its mask (${label.file}, ids ${[...ids].join(',')}) covers no image token (empty, or cropped away by the processor)` });
      continue;
    }
    parts.push({ part, image: label.image, positions: positions.sort((a, b) => a - b) });
  }
  return { parts, skipped };
}
