/**
 * Helpers shared by the task generators: marked copies of rasters, marker placement, label and
 * scene summaries. Kept here so every task places markers and reports scenes the same way.
 */
import type { Label } from '../../dataset/format.ts';
import { instanceStats, safePixels, type Box } from '../analysis.ts';
import { chebyshev, drawMarker, LETTERS, markerHalf, type MarkerKind } from '../markers.ts';
import type { Raster } from '../raster.ts';
import type { Rng } from '../rng.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { objectPose, type Scene } from '../scene.ts';

export type Pixel = [number, number];

export interface Mark {
  at: Pixel;
  kind: MarkerKind;
}

/**
 * A scene of `specs` whose first spec is the target, placed in random order so the target's
 * instance id is not always 1 (ids follow placement). Objects must be at least 60 % visible.
 */
export function sampleWithTarget(rng: Rng, specs: readonly ObjectSpec[]): { scene: Scene; targetId: number } {
  const order = rng.shuffled([...specs.keys()]);
  const scene = sampleScene(
    rng,
    order.map((k) => specs[k]!),
    { minVisible: 0.6 },
  );
  return { scene, targetId: order.indexOf(0) + 1 };
}

/** A copy of the raster with the markers drawn (the mask is shared: markers never change it). */
export function withMarks(raster: Raster, marks: readonly Mark[]): Raster {
  const rgb = raster.rgb.slice();
  for (const m of marks) drawMarker(rgb, raster.width, raster.height, m.at[0], m.at[1], m.kind);
  return { ...raster, rgb };
}

/**
 * A pixel for a marker on object `id`: the marker's whole footprint must lie on the object when
 * possible (falling back to a smaller neighbourhood), chosen at random among the candidates
 * nearest the visible centroid so markers are not always dead centre.
 */
export function pickOnObject(rng: Rng, raster: Raster, id: number, kind: MarkerKind, avoid: readonly Pixel[] = [], minGap = 7): Pixel | null {
  for (let half = markerHalf(kind); half >= 1; half--) {
    const far = (p: Pixel): boolean => avoid.every((q) => chebyshev(p, q) >= minGap);
    const candidates = safePixels(raster.mask, raster.width, raster.height, id, half).filter(far);
    if (candidates.length > 0) return rng.pick(candidates.slice(0, Math.max(1, Math.ceil(candidates.length / 3))));
  }
  return null;
}

/** Distractor points for four-choice point tasks: inside the image, apart from each other and from `keep`. */
export function pickDistractors(rng: Rng, raster: Raster, keep: readonly Pixel[], count: number, minGap = 7): Pixel[] | null {
  const out: Pixel[] = [];
  const taken = [...keep];
  for (let t = 0; t < 400 && out.length < count; t++) {
    // Half the time aim at an object pixel so distractors are not trivially "the background one".
    const p: Pixel = [rng.int(3, raster.width - 4), rng.int(3, raster.height - 4)];
    if (rng.chance(0.5) && raster.mask[p[1] * raster.width + p[0]] === 0) continue;
    if (taken.some((q) => chebyshev(p, q) < minGap)) continue;
    out.push(p);
    taken.push(p);
  }
  return out.length === count ? out : null;
}

export function pointLabel(image: number, at: Pixel, name: string): Label {
  return { kind: 'point', image, at: [at[0], at[1]], name };
}

export function boxLabel(image: number, box: Box, text?: string): Label {
  return text === undefined ? { kind: 'box', image, box: [...box] } : { kind: 'box', image, box: [...box], text };
}

export function classLabel(value: string): Label {
  return { kind: 'class', value };
}

const round = (v: number): number => Math.round(v * 1000) / 1000;

/** Objects with their pose and visible extent in one frame, for `meta.objects`. */
export function describeScene(scene: Scene, raster: Raster, frame = 0): Record<string, unknown>[] {
  const stats = instanceStats(raster.mask, raster.width);
  return scene.objects.map((o) => {
    const p = objectPose(o, frame, scene.height);
    const s = stats.get(o.id);
    return {
      id: o.id,
      shape: o.shape,
      colour: o.colour,
      style: o.style,
      z: round(p.z),
      centre: [round(p.cx), round(p.cy)],
      radius: round(p.r),
      visibleArea: s?.area ?? 0,
      box: s?.box ?? null,
    };
  });
}

/** The visible (post-occlusion) box of an object, from its mask. */
export function visibleBox(raster: Raster, id: number): Box {
  const s = instanceStats(raster.mask, raster.width).get(id);
  if (!s) throw new Error(`object ${id} is not visible`);
  return s.box;
}

/**
 * Letter marks for a four-choice point question: the true point gets `answer`, three distractors
 * the other letters. Null when the distractors do not fit (the caller resamples).
 */
export function letterMarks(rng: Rng, raster: Raster, truth: Pixel, answer: string): { marks: Mark[]; labels: Label[] } | null {
  const distractors = pickDistractors(rng, raster, [truth], 3);
  if (!distractors) return null;
  const marks: Mark[] = [];
  let d = 0;
  for (const letter of LETTERS) marks.push({ at: letter === answer ? truth : distractors[d++]!, kind: letter });
  return { marks, labels: marks.map((m) => pointLabel(0, m.at, m.kind)) };
}
