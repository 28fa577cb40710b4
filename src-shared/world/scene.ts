/**
 * Scene model: objects in a simple 2.5-D world, and the views that image it.
 *
 * World coordinates are pixels of the canonical 64×64 view (view A). Depth z ∈ [0, 1] (0 nearest)
 * fixes three things at once, like a camera over a ground plane: the draw order (nearer on top),
 * the apparent radius (perspective shrink) and the vertical position (farther = higher, nearer the
 * horizon). Objects can move (vx, vz per frame) for frame sequences; everything derived from a
 * scene goes through `objectPose`, so views, frames, masks and labels agree exactly.
 */
import type { Colour, Shape, Style } from './attributes.ts';

export const IMAGE_SIZE = 64;

export interface SceneObject {
  /** Instance id (mask value), 1-based, stable across the views and frames of one scene. */
  id: number;
  shape: Shape;
  colour: Colour;
  style: Style;
  /** Horizontal centre in world px at frame 0. */
  x: number;
  /** Depth at frame 0, 0 nearest … 1 farthest. */
  z: number;
  /** Radius in px if the object stood at z = 0. */
  size: number;
  /** Small vertical offset (px) so height is a strong but not perfect depth cue. */
  jitter: number;
  /** Motion per frame (frame sequences only; 0 for still scenes). */
  vx: number;
  vz: number;
}

export interface Scene {
  width: number;
  height: number;
  objects: SceneObject[];
}

/** Image placement of an object at a frame. */
export interface Pose {
  cx: number;
  cy: number;
  r: number;
  z: number;
}

/** Perspective: an object at the far plane appears at 60 % of its near size. */
export const FAR_SHRINK = 0.4;
/** Vertical centre of the nearest (z = 0) and farthest (z = 1) objects, as fractions of the height. */
const NEAR_Y = 0.72;
const FAR_Y = 0.25;

export function radiusAt(size: number, z: number): number {
  return size * (1 - FAR_SHRINK * z);
}

export function heightAt(z: number, height: number): number {
  return height * (NEAR_Y + (FAR_Y - NEAR_Y) * z);
}

export function objectPose(o: SceneObject, frame = 0, height = IMAGE_SIZE): Pose {
  const z = o.z + o.vz * frame;
  return { cx: o.x + o.vx * frame, cy: heightAt(z, height) + o.jitter, r: radiusAt(o.size, z), z };
}

/**
 * A view maps world → image pixels by `p = scale * (w - origin)` (a zoom-and-crop camera).
 * View A is the identity; a two-view pair's view B uses scale > 1 and an origin inside A.
 */
export interface View {
  scale: number;
  originX: number;
  originY: number;
}

export const IDENTITY_VIEW: View = { scale: 1, originX: 0, originY: 0 };

/** Continuous world point → continuous image point. */
export function worldToView(view: View, wx: number, wy: number): [number, number] {
  return [view.scale * (wx - view.originX), view.scale * (wy - view.originY)];
}

/** Pixel index (x, y) of view `from` → pixel index in view `to`, through the pixel centre. */
export function mapPixel(from: View, to: View, x: number, y: number): [number, number] {
  const wx = (x + 0.5) / from.scale + from.originX;
  const wy = (y + 0.5) / from.scale + from.originY;
  const [vx, vy] = worldToView(to, wx, wy);
  return [Math.floor(vx), Math.floor(vy)];
}

/** Objects sorted nearest first (draw priority), ties broken by id so the order is total. */
export function depthOrder(scene: Scene, frame = 0): SceneObject[] {
  return scene.objects
    .slice()
    .sort((a, b) => objectPose(a, frame, scene.height).z - objectPose(b, frame, scene.height).z || a.id - b.id);
}
