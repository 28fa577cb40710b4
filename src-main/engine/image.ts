/**
 * Image decode and CLIP-style preprocessing for the vision encoder.
 * PNG decode is pngjs's; what is ours is only the glue from `preprocessor_config.json`
 * (resize, centre crop, rescale, normalise) to the `pixel_values` layout [1, 3, H, W].
 */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';

export interface RgbImage {
  width: number;
  height: number;
  /** RGB, row-major, 3 bytes per pixel. */
  data: Uint8Array;
}

export function decodePng(path: string): RgbImage {
  let png: PNG;
  try {
    png = PNG.sync.read(readFileSync(path));
  } catch (e) {
    throw new LoupeError('bad-input', `cannot decode image ${path}: ${(e as Error).message} (truncated or not a PNG?)`);
  }
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < png.data.length; i += 4, j += 3) {
    rgb[j] = png.data[i]!;
    rgb[j + 1] = png.data[i + 1]!;
    rgb[j + 2] = png.data[i + 2]!;
  }
  return { width: png.width, height: png.height, data: rgb };
}

/** Bilinear resize with half-pixel centres (PIL's convention for upsampling). */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const out = new Uint8Array(width * height * 3);
  const sx = img.width / width;
  const sy = img.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), img.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, img.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), img.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, img.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => img.data[(yy * img.width + xx) * 3 + c]!;
        const v = (1 - wy) * ((1 - wx) * p(y0, x0) + wx * p(y0, x1)) + wy * ((1 - wx) * p(y1, x0) + wx * p(y1, x1));
        out[(y * width + x) * 3 + c] = Math.round(v);
      }
    }
  }
  return { width, height, data: out };
}

function targetSize(cfg: Record<string, unknown>, key: 'size' | 'crop_size'): { width: number; height: number } | null {
  const s = cfg[key] as { height?: number; width?: number; shortest_edge?: number } | number | undefined;
  if (s === undefined) return null;
  if (typeof s === 'number') return { width: s, height: s };
  if (s.height && s.width) return { width: s.width, height: s.height };
  if (s.shortest_edge) return { width: s.shortest_edge, height: s.shortest_edge };
  return null;
}

/** `preprocessor_config.json` → pixel_values [1, 3, H, W] float32. */
export function preprocess(img: RgbImage, cfg: Record<string, unknown>): HostTensor {
  let cur = img;
  const size = cfg.do_resize === false ? null : targetSize(cfg, 'size');
  if (size) {
    const shortest = (cfg.size as { shortest_edge?: number } | undefined)?.shortest_edge;
    if (shortest) {
      const scale = shortest / Math.min(cur.width, cur.height);
      cur = resizeBilinear(cur, Math.round(cur.width * scale), Math.round(cur.height * scale));
    } else {
      cur = resizeBilinear(cur, size.width, size.height);
    }
  }
  const crop = cfg.do_center_crop === false ? null : targetSize(cfg, 'crop_size');
  if (crop && (crop.width !== cur.width || crop.height !== cur.height)) {
    const x0 = Math.max(0, Math.floor((cur.width - crop.width) / 2));
    const y0 = Math.max(0, Math.floor((cur.height - crop.height) / 2));
    const data = new Uint8Array(crop.width * crop.height * 3);
    for (let y = 0; y < crop.height; y++) data.set(cur.data.subarray(((y0 + y) * cur.width + x0) * 3, ((y0 + y) * cur.width + x0 + crop.width) * 3), y * crop.width * 3);
    cur = { width: crop.width, height: crop.height, data };
  }
  const rescale = cfg.do_rescale === false ? 1 : Number(cfg.rescale_factor ?? 1 / 255);
  const mean = cfg.do_normalize === false ? [0, 0, 0] : ((cfg.image_mean as number[]) ?? [0, 0, 0]);
  const std = cfg.do_normalize === false ? [1, 1, 1] : ((cfg.image_std as number[]) ?? [1, 1, 1]);
  const plane = cur.width * cur.height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (cur.data[i * 3 + c]! * rescale - mean[c]!) / std[c]!;
  }
  return { dtype: 'float32', shape: [1, 3, cur.height, cur.width], data: out };
}
