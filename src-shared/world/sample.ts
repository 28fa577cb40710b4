/**
 * Scene sampling: places objects one at a time with rejection, so every object ends up fully in
 * frame and visible enough (after occlusion) for its ground truth to be fair — a count is only
 * right if each counted object can be seen, a colour question only if its object shows.
 */
import { COLOURS, SHAPES, STYLES, type Colour, type Shape, type Style } from './attributes.ts';
import { render } from './raster.ts';
import type { Rng } from './rng.ts';
import { IMAGE_SIZE, objectPose, type Scene, type SceneObject } from './scene.ts';
import { shapeExtent } from './shapes.ts';
import { instanceStats } from './analysis.ts';

export interface ObjectSpec {
  shape?: Shape;
  colour?: Colour;
  style?: Style;
  /** Draw from these when the attribute is not fixed. */
  shapes?: readonly Shape[];
  colours?: readonly Colour[];
  styles?: readonly Style[];
  size?: readonly [number, number];
  z?: readonly [number, number];
  x?: readonly [number, number];
}

export interface SceneOptions {
  /** Minimum visible fraction of each object's own area, in every frame. */
  minVisible?: number;
  /** Minimum visible pixel count of each object. */
  minArea?: number;
  /** Number of frames the scene must stay valid for (moving objects when > 1). */
  frames?: number;
  /** Max |vx| in px per frame and |vz| per frame when frames > 1. */
  maxVx?: number;
  maxVz?: number;
  size?: readonly [number, number];
}

export const DEFAULT_SIZE: readonly [number, number] = [7.5, 11.5];
const MARGIN = 1;
const OBJECT_TRIES = 40;
const SCENE_TRIES = 60;

function sampleObject(rng: Rng, id: number, spec: ObjectSpec, opts: SceneOptions, frames: number): SceneObject | null {
  const shape = spec.shape ?? rng.pick(spec.shapes ?? SHAPES);
  const colour = spec.colour ?? rng.pick(spec.colours ?? COLOURS);
  const style = spec.style ?? rng.pick(spec.styles ?? STYLES);
  const [slo, shi] = spec.size ?? opts.size ?? DEFAULT_SIZE;
  const [zlo, zhi] = spec.z ?? [0, 1];
  for (let t = 0; t < OBJECT_TRIES; t++) {
    const moving = frames > 1;
    const o: SceneObject = {
      id,
      shape,
      colour,
      style,
      size: rng.float(slo, shi),
      z: rng.float(zlo, zhi),
      x: spec.x ? rng.float(spec.x[0], spec.x[1]) : rng.float(0, IMAGE_SIZE),
      jitter: rng.float(-3, 3),
      vx: moving ? rng.float(-(opts.maxVx ?? 3), opts.maxVx ?? 3) : 0,
      vz: moving ? rng.float(-(opts.maxVz ?? 0.06), opts.maxVz ?? 0.06) : 0,
    };
    if (inFrame(o, frames)) return o;
  }
  return null;
}

/** The whole shape stays inside the image (with a 1 px margin) in every frame, and z in [0, 1]. */
export function inFrame(o: SceneObject, frames: number): boolean {
  for (let f = 0; f < frames; f++) {
    const p = objectPose(o, f);
    if (p.z < 0 || p.z > 1) return false;
    const e = shapeExtent(o.shape, p.r);
    if (p.cx - e.left < MARGIN || p.cx + e.right > IMAGE_SIZE - MARGIN) return false;
    if (p.cy - e.top < MARGIN || p.cy + e.bottom > IMAGE_SIZE - MARGIN) return false;
  }
  return true;
}

// An object's unoccluded area depends on the object alone; cache it across placement retries.
const aloneAreas = new WeakMap<SceneObject, number[]>();

function aloneArea(scene: Scene, o: SceneObject, frame: number): number {
  let areas = aloneAreas.get(o);
  if (!areas) aloneAreas.set(o, (areas = []));
  let a = areas[frame];
  if (a === undefined) {
    a = instanceStats(render({ ...scene, objects: [o] }, { frame }).mask, scene.width).get(o.id)?.area ?? 0;
    areas[frame] = a;
  }
  return a;
}

/** Every object is visible enough in every frame. */
export function visibleEnough(scene: Scene, opts: SceneOptions): boolean {
  const frames = opts.frames ?? 1;
  const minVisible = opts.minVisible ?? 0.6;
  const minArea = opts.minArea ?? 30;
  for (let f = 0; f < frames; f++) {
    const stats = instanceStats(render(scene, { frame: f }).mask, scene.width);
    for (const o of scene.objects) {
      const seen = stats.get(o.id)?.area ?? 0;
      if (seen < minArea || seen < minVisible * aloneArea(scene, o, f)) return false;
    }
  }
  return true;
}

/**
 * A scene with one object per spec (ids 1..n in spec order), or throws when the constraints
 * cannot be met — a sign the specs ask for too much, never a random event at sane settings.
 */
export function sampleScene(rng: Rng, specs: readonly ObjectSpec[], opts: SceneOptions = {}): Scene {
  const frames = opts.frames ?? 1;
  for (let s = 0; s < SCENE_TRIES; s++) {
    const scene: Scene = { width: IMAGE_SIZE, height: IMAGE_SIZE, objects: [] };
    let ok = true;
    for (let i = 0; i < specs.length && ok; i++) {
      ok = false;
      for (let t = 0; t < OBJECT_TRIES; t++) {
        const o = sampleObject(rng, i + 1, specs[i]!, opts, frames);
        if (!o) break;
        scene.objects.push(o);
        if (visibleEnough(scene, opts)) {
          ok = true;
          break;
        }
        scene.objects.pop();
      }
    }
    if (ok) return scene;
  }
  throw new Error(`could not place ${specs.length} objects`);
}
