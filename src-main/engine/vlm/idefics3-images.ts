/**
 * Idefics3 / SmolVLM image preprocessing and prompt expansion as Hugging Face's `Idefics3ImageProcessor` and
 * `Idefics3Processor` do them (transformers v4.46–4.49, image_processing_idefics3.py / processing_idefics3.py).
 *
 * Why not transformers.js's Idefics3ImageProcessor: it normalises first and then resizes the float tensor with
 * bilinear `interpolate_4d` for the vision-encoder grid and the global view, where HF resizes the 8-bit image with
 * PIL (LANCZOS in every published config) before rescaling; its first resize also rounds the short side differently
 * (floor, where HF truncates and makes it even), and its processor returns rows/cols as nested arrays, not tensors.
 * On tests/fixtures/hf-idefics3 its pixel_values were 0.18–0.82 (relative) off HF's. Here every resize is Pillow's
 * (src-shared/image/pil-resample.ts), in HF's order:
 *   1. resize so the longest edge is `size.longest_edge` (the short side `int()`-truncated, then made even;
 *      small images are upscaled), capped at 4096 as HF 4.49 caps it;
 *   2. splitting on: resize to the next multiples of `max_image_size.longest_edge` (aspect kept, as HF computes
 *      it), cut into rows × cols tiles of that size (reading order), then the whole image resized to one tile as
 *      the global view, last; splitting off: resized to one tile, rows = cols = 0;
 *   3. rescale (float64 product, stored float32) and normalise (float32), channels first;
 *   4. pad every frame to the largest frame (bottom/right zeros), pixel_attention_mask 1 on the image.
 */
import { RawImage } from '@huggingface/transformers';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { pilResize } from '../../../src-shared/image/pil-resample.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { filterOf } from './pillow-resize.ts';

/** HF 4.49's MAX_IMAGE_SIZE: the absolute cap after the longest-edge resize. */
const MAX_IMAGE_SIZE = 4096;

interface Frame {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
}

export interface Idefics3Images {
  /** float32 [1, frames, 3, H, W]: every image's tiles then its global view, images in order. */
  pixelValues: HostTensor;
  /** bool [1, frames, H, W]. */
  pixelAttentionMask: HostTensor;
  /** Per image: tile rows and columns (0 and 0 when the image was not split: one global view only). */
  rows: number[];
  cols: number[];
}

function longestEdge(v: unknown, what: string): number {
  const n = (v as { longest_edge?: number } | undefined)?.longest_edge;
  if (!Number.isInteger(n) || n! <= 0) throw new LoupeError('bad-input', `preprocessor_config.json ${what} needs a positive integer longest_edge (Idefics3ImageProcessor), got ${JSON.stringify(v)}`);
  return n!;
}

/**
 * The blind baseline's blank images: all black, one tile (`max_image_size.longest_edge`) square. (The shared
 * VlmProcessing sizes blanks from `crop_size`/`size.shortest_edge`, which Idefics3 configs do not have.) A black
 * image normalises to -1, not 0, so the vision encoder does not drop it as padding.
 */
export function idefics3BlankImages(count: number, preprocessor: Record<string, unknown>): RawImage[] {
  const side = longestEdge(preprocessor.max_image_size ?? { longest_edge: 364 }, 'max_image_size');
  return Array.from({ length: count }, () => new RawImage(new Uint8ClampedArray(side * side * 3), side, side, 3));
}

/** HF `get_resize_output_image_size`: `_resize_output_size_rescale_to_max_len` then `..._scale_below_upper_bound`. */
export function idefics3ResizeSize(height: number, width: number, maxLen: number): { height: number; width: number } {
  let h = height;
  let w = width;
  let aspect = w / h;
  if (w >= h) {
    w = maxLen;
    h = Math.trunc(w / aspect);
    if (h % 2 !== 0) h += 1;
  } else {
    h = maxLen;
    w = Math.trunc(h * aspect);
    if (w % 2 !== 0) w += 1;
  }
  h = Math.max(h, 1);
  w = Math.max(w, 1);
  aspect = w / h;
  if (w >= h && w > MAX_IMAGE_SIZE) {
    w = MAX_IMAGE_SIZE;
    h = Math.trunc(w / aspect);
  } else if (h > w && h > MAX_IMAGE_SIZE) {
    h = MAX_IMAGE_SIZE;
    w = Math.trunc(h * aspect);
  }
  return { height: Math.max(h, 1), width: Math.max(w, 1) };
}

/** HF `resize_for_vision_encoder`: both sides up to multiples of `tile`, the aspect ratio kept as HF computes it. */
export function idefics3VisionEncoderSize(height: number, width: number, tile: number): { height: number; width: number } {
  const aspect = width / height;
  let h = height;
  let w = width;
  if (w >= h) {
    w = Math.ceil(w / tile) * tile;
    h = Math.trunc(w / aspect);
    h = Math.ceil(h / tile) * tile;
  } else {
    h = Math.ceil(h / tile) * tile;
    w = Math.trunc(h * aspect);
    w = Math.ceil(w / tile) * tile;
  }
  return { height: h, width: w };
}

function resize(f: Frame, width: number, height: number, filter: ReturnType<typeof filterOf>): Frame {
  if (f.width === width && f.height === height) return f; // PIL returns a copy for the same size
  return { data: pilResize(f.data, f.width, f.height, 3, width, height, filter), width, height };
}

function crop(f: Frame, x0: number, y0: number, x1: number, y1: number): Frame {
  const width = x1 - x0;
  const height = y1 - y0;
  const data = new Uint8ClampedArray(width * height * 3);
  for (let y = 0; y < height; y++) data.set(f.data.subarray(((y0 + y) * f.width + x0) * 3, ((y0 + y) * f.width + x1) * 3), y * width * 3);
  return { data, width, height };
}

/** HF `split_image`: rows × cols crops in reading order, then the global view resized to one tile. */
function splitImage(f: Frame, tile: number, filter: ReturnType<typeof filterOf>): { frames: Frame[]; rows: number; cols: number } {
  const { height, width } = f;
  if (height <= tile && width <= tile) return { frames: [f], rows: 0, cols: 0 };
  const rows = Math.ceil(height / tile);
  const cols = Math.ceil(width / tile);
  const oh = Math.ceil(height / rows);
  const ow = Math.ceil(width / cols);
  const frames: Frame[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x0 = c * ow;
      const y0 = r * oh;
      frames.push(crop(f, x0, y0, Math.min(x0 + ow, width), Math.min(y0 + oh, height)));
    }
  }
  frames.push(resize(f, tile, tile, filter));
  return { frames, rows, cols };
}

/** Preprocesses the images of one prompt as HF's Idefics3ImageProcessor does (`preprocessor` = preprocessor_config.json). */
export function idefics3Images(images: RawImage[], preprocessor: Record<string, unknown>): Idefics3Images {
  if (images.length === 0) throw new LoupeError('bad-input', 'Idefics3 preprocessing needs at least one image');
  const cfg = preprocessor as {
    do_resize?: boolean;
    size?: unknown;
    resample?: unknown;
    do_image_splitting?: boolean;
    max_image_size?: unknown;
    do_rescale?: boolean;
    rescale_factor?: number;
    do_normalize?: boolean;
    image_mean?: number | number[];
    image_std?: number | number[];
    do_pad?: boolean;
  };
  const filter = filterOf(cfg.resample ?? 1); // Idefics3ImageProcessor's default is LANCZOS (1)
  const tile = longestEdge(cfg.max_image_size ?? { longest_edge: 364 }, 'max_image_size');
  const frames: Frame[] = [];
  const rows: number[] = [];
  const cols: number[] = [];
  for (const image of images) {
    if (image.channels !== 3) throw new LoupeError('bad-input', `Idefics3 preprocessing expects RGB images, got ${image.channels} channels`);
    let f: Frame = { data: image.data as Uint8ClampedArray, width: image.width, height: image.height };
    if (cfg.do_resize ?? true) {
      const s = idefics3ResizeSize(f.height, f.width, longestEdge(cfg.size ?? { longest_edge: 4 * 364 }, 'size'));
      f = resize(f, s.width, s.height, filter);
    }
    if (cfg.do_image_splitting ?? true) {
      const s = idefics3VisionEncoderSize(f.height, f.width, tile);
      const split = splitImage(resize(f, s.width, s.height, filter), tile, filter);
      frames.push(...split.frames);
      rows.push(split.rows);
      cols.push(split.cols);
    } else {
      frames.push(resize(f, tile, tile, filter));
      rows.push(0);
      cols.push(0);
    }
  }
  const doPad = cfg.do_pad ?? true;
  const H = Math.max(...frames.map((f) => f.height));
  const W = Math.max(...frames.map((f) => f.width));
  if (!doPad && frames.some((f) => f.height !== H || f.width !== W)) throw new LoupeError('bad-input', 'Idefics3 frames of different sizes need do_pad');
  const scale = cfg.do_rescale ?? true ? (cfg.rescale_factor ?? 1 / 255) : 1;
  const perChannel = (v: number | number[] | undefined, d: number) => (Array.isArray(v) ? v : [v ?? d, v ?? d, v ?? d]);
  const normalize = cfg.do_normalize ?? true;
  const mean = perChannel(cfg.image_mean, 0.5).map(Math.fround);
  const std = perChannel(cfg.image_std, 0.5).map(Math.fround);
  const n = frames.length;
  const pixels = new Float32Array(n * 3 * H * W);
  const mask = new Uint8Array(n * H * W);
  frames.forEach((f, i) => {
    for (let y = 0; y < f.height; y++) {
      for (let x = 0; x < f.width; x++) {
        mask[(i * H + y) * W + x] = 1;
        for (let c = 0; c < 3; c++) {
          // HF: rescale in float64, stored float32; normalize in float32.
          let v = Math.fround(f.data[(y * f.width + x) * 3 + c]! * scale);
          if (normalize) v = Math.fround(Math.fround(v - mean[c]!) / std[c]!);
          pixels[((i * 3 + c) * H + y) * W + x] = v;
        }
      }
    }
  });
  return {
    pixelValues: { dtype: 'float32', shape: [1, n, 3, H, W], data: pixels },
    pixelAttentionMask: { dtype: 'bool', shape: [1, n, H, W], data: mask },
    rows,
    cols,
  };
}

/**
 * HF `Idefics3Processor`'s expansion of each `<image>` of the prompt: per tile `<fake_token_around_image>
 * <row_r_col_c>` + image_seq_len × `<image>`, a newline after each row, then `\n<fake_token_around_image>
 * <global-img>` + image_seq_len × `<image>` + `<fake_token_around_image>`; an image that was not split gets only the
 * global part.
 */
export function idefics3ExpandPrompt(prompt: string, rows: number[], cols: number[], imageSeqLen: number, tokens: { image: string; fake: string; global: string } = { image: '<image>', fake: '<fake_token_around_image>', global: '<global-img>' }): string {
  const parts = prompt.split(tokens.image);
  if (parts.length - 1 !== rows.length) throw new LoupeError('bad-input', `prompt has ${parts.length - 1} ${tokens.image} placeholders for ${rows.length} images`);
  const run = tokens.image.repeat(imageSeqLen);
  const globalView = `${tokens.fake}${tokens.global}${run}${tokens.fake}`;
  let out = parts[0]!;
  rows.forEach((r, i) => {
    const c = cols[i]!;
    let s = '';
    if (r === 0 && c === 0) s = globalView;
    else {
      for (let y = 1; y <= r; y++) {
        for (let x = 1; x <= c; x++) s += `${tokens.fake}<row_${y}_col_${x}>${run}`;
        s += '\n';
      }
      s += `\n${globalView}`;
    }
    out += s + parts[i + 1]!;
  });
  return out;
}
