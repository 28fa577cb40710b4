/**
 * Rasteriser: point-samples the scene at every pixel centre of a view.
 *
 * For each pixel the nearest object containing the sample wins (z-buffer by depth order), which
 * gives occlusion, and the same decision writes the instance mask — colour and mask can never
 * disagree. No anti-aliasing on purpose: every pixel is either exactly one object's colour/shade
 * or background, which the ground-truth checks rely on.
 */
import { COLOUR_DARK, COLOUR_RGB, type RGB } from './attributes.ts';
import { depthOrder, IDENTITY_VIEW, objectPose, type Scene, type View } from './scene.ts';
import { insideShape, shapeExtent } from './shapes.ts';
import { darkAt } from './texture.ts';

export interface Raster {
  width: number;
  height: number;
  /** RGB, row-major HWC. */
  rgb: Uint8Array;
  /** Instance ids, 0 = background. */
  mask: Uint8Array;
}

const SKY: RGB = [34, 38, 48];
const GROUND: RGB = [78, 72, 62];

/** Background: a fixed dark vertical gradient in world y (so a zoomed view continues it). */
export function backgroundAt(wy: number, worldHeight: number): RGB {
  const t = Math.min(1, Math.max(0, wy / worldHeight));
  return [
    Math.round(SKY[0] + (GROUND[0] - SKY[0]) * t),
    Math.round(SKY[1] + (GROUND[1] - SKY[1]) * t),
    Math.round(SKY[2] + (GROUND[2] - SKY[2]) * t),
  ];
}

export interface RenderOptions {
  view?: View;
  frame?: number;
  /** Output size; defaults to the scene's size. */
  width?: number;
  height?: number;
}

export function render(scene: Scene, options: RenderOptions = {}): Raster {
  const view = options.view ?? IDENTITY_VIEW;
  const frame = options.frame ?? 0;
  const width = options.width ?? scene.width;
  const height = options.height ?? scene.height;
  const rgb = new Uint8Array(width * height * 3);
  const mask = new Uint8Array(width * height);
  const order = depthOrder(scene, frame).map((o) => ({ o, pose: objectPose(o, frame, scene.height) }));
  const boxes = order.map(({ o, pose }) => {
    const e = shapeExtent(o.shape, pose.r);
    return { x0: pose.cx - e.left, x1: pose.cx + e.right, y0: pose.cy - e.top, y1: pose.cy + e.bottom };
  });
  for (let y = 0; y < height; y++) {
    const wy = (y + 0.5) / view.scale + view.originY;
    const bg = backgroundAt(wy, scene.height);
    for (let x = 0; x < width; x++) {
      const wx = (x + 0.5) / view.scale + view.originX;
      let colour: RGB = bg;
      let id = 0;
      for (let k = 0; k < order.length; k++) {
        const b = boxes[k]!;
        if (wx < b.x0 || wx > b.x1 || wy < b.y0 || wy > b.y1) continue;
        const { o, pose } = order[k]!;
        const dx = wx - pose.cx;
        const dy = wy - pose.cy;
        if (!insideShape(o.shape, dx, dy, pose.r)) continue;
        id = o.id;
        colour = darkAt(o.style, dx, dy) ? COLOUR_DARK[o.colour] : COLOUR_RGB[o.colour];
        break;
      }
      const p = y * width + x;
      mask[p] = id;
      rgb[p * 3] = colour[0];
      rgb[p * 3 + 1] = colour[1];
      rgb[p * 3 + 2] = colour[2];
    }
  }
  return { width, height, rgb, mask };
}

/** The pixels an object would cover with nothing in front of it (for visibility ratios). */
export function fullArea(scene: Scene, id: number, options: RenderOptions = {}): number {
  const only: Scene = { ...scene, objects: scene.objects.filter((o) => o.id === id) };
  const { mask } = render(only, options);
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] === id) n++;
  return n;
}
