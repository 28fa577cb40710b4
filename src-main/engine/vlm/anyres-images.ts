/**
 * LLaVA-NeXT and LLaVA-OneVision "anyres" inputs as Hugging Face makes them (transformers v4.46–4.49):
 * `LlavaNextImageProcessor` / `LlavaOnevisionImageProcessor` (pixel_values, image_sizes), the processors' `<image>`
 * expansion (`_get_number_of_features`, `_get_unpadded_features`) and where each feature row of the models'
 * `pack_image_features` comes from (the token map). transformers.js 4.3.1 has no LLaVA-NeXT and runs OneVision as
 * single-crop LLaVA, so none of this comes from it; every resize is Pillow's (src-shared/image/pil-resample.ts).
 *
 * Per image (height h, width w):
 *   1. `select_best_resolution((h, w), image_grid_pinpoints)`: the (height, width) pinpoint with the largest effective
 *      resolution min(int(w·s)·int(h·s), w·h), s = min(W/w, H/h), then the least waste; the first such.
 *   2. resize (Pillow, the processor's resample) to `_get_patch_output_size` — the limiting side to the pinpoint, the
 *      other `ceil`ed and capped —, pad `(target − new) // 2` black pixels on *both* sides (an odd difference leaves
 *      the image one pixel short), cut into crops of `crop` px in reading order (the last row/column of crops may be
 *      short).
 *   3. the base view: the whole image resized to the base size (a square: NeXT size.shortest_edge, OneVision
 *      size.height × size.width) — first in pixel_values.
 *   4. each of [base, crops…] through the per-crop preprocessing: NeXT the CLIP resize (shortest edge, aspect kept,
 *      `int()`) and centre crop; OneVision a resize to size.height × size.width (short crops are stretched); then
 *      rescale (float64 product, stored float32) and normalise (float32).
 *   5. pixel_values [images, max crops + 1, 3, H, W] (images with fewer crops zero-padded, do_pad), image_sizes
 *      [images, 2] = (h, w) int64.
 *
 * Tokens per image (what the vision encoder's packed image_features hold, in this order): the base view's
 * side × side grid; then the crop grid's features (rows·side × cols·side cells) with `unpad_image`'s padding removed
 * (the aspect test and `int()` of the processor / model, rows or columns floor-halved off both ends), row by row,
 * each row followed by one `image_newline`; OneVision (`anyres_max_N`, N = 9) first shrinks an unpadded grid larger
 * than N·1.1² base grids by bilinear interpolation to int(H // r) × int(W // r), r = √(H·W / (N·side²)).
 *
 * Token map (ImageTokenPosition): tiles 0 … crops − 1 are the crops (pixel_values index tile + 1), tile `crops` is
 * the base view (pixel_values index 0) — last, like Idefics3's global view, so the whole-image view the K/V probes
 * read (experiments/inside-the-llm/tokens.ts imageGrids: the last tile) is the base view's complete side × side grid. row/col are the
 * patch within the crop (0 … side − 1), so an unpadded crop lists only the patches it kept. image_newline tokens have
 * row = col = −1 (no patch; llmImageTokens gives them patch −1) and the tile of the crop whose row they close. Tokens
 * of a downsampled grid (OneVision, large images) are given the crop patch nearest the centre of their interpolation
 * footprint — an approximation: each is a bilinear mix of up to four patches.
 */
import type { RawImage } from '@huggingface/transformers';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type PilFilter, pilResize } from '../../../src-shared/image/pil-resample.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { ModelFolder } from '../model-folder.ts';
import { filterOf } from './pillow-resize.ts';
import type { ImageTokenPosition } from './token-map.ts';

const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

export type AnyresFamily = 'llava-next' | 'llava-onevision';

export interface AnyresConfig {
  family: AnyresFamily;
  /** (height, width) pairs, as HF reads image_grid_pinpoints. */
  pinpoints: [number, number][];
  /** Crop size of divide_to_patches (NeXT crop_size.height, OneVision size.height). */
  crop: number;
  /** The base view's resize (height × width). */
  base: { height: number; width: number };
  doResize: boolean;
  /** Per-crop resize: the shortest edge (NeXT, CLIP-style) or an exact height × width. */
  cropResize: { shortestEdge: number } | { height: number; width: number };
  /** NeXT's per-crop centre crop. */
  centerCrop?: { height: number; width: number };
  filter: PilFilter;
  rescale?: number;
  normalize?: { mean: number[]; std: number[] };
  doPad: boolean;
  /** Feature grid side per crop (patches per side). */
  side: number;
  /** OneVision's anyres_max_N (N), undefined for NeXT. */
  maxCrops?: number;
}

/** Which processing a folder needs: anyres for LLaVA-NeXT, and for LLaVA-OneVision folders with grid pinpoints. */
export function isAnyres(folder: Pick<ModelFolder, 'family' | 'config' | 'preprocessor'>): boolean {
  if (folder.family === 'llava-next') return true;
  return folder.family === 'llava-onevision' && Array.isArray(folder.preprocessor.image_grid_pinpoints ?? folder.config.image_grid_pinpoints);
}

function positiveInt(v: unknown, what: string): number {
  if (!Number.isInteger(v) || (v as number) <= 0) throw new LoupeError('bad-input', `${what} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function perChannel(v: unknown, fallback: number[]): number[] {
  if (v === undefined || v === null) return fallback;
  return Array.isArray(v) ? v.map(Number) : [Number(v), Number(v), Number(v)];
}

/** The anyres settings of a LLaVA-NeXT / LLaVA-OneVision folder (preprocessor_config.json, processor_config.json, config.json). */
export function anyresConfig(folder: Pick<ModelFolder, 'family' | 'config' | 'preprocessor' | 'processorConfig'>): AnyresConfig {
  const family = folder.family as AnyresFamily;
  if (family !== 'llava-next' && family !== 'llava-onevision') throw new LoupeError('bad-input', `family ${folder.family} is not an anyres family`);
  const pre = folder.preprocessor as Record<string, unknown>;
  const cfg = folder.config;
  const vision = (cfg.vision_config ?? {}) as { image_size?: number; patch_size?: number; model_type?: string };
  const rawPins = (pre.image_grid_pinpoints ?? cfg.image_grid_pinpoints) as unknown;
  if (!Array.isArray(rawPins) || rawPins.length === 0 || rawPins.some((p) => !Array.isArray(p) || p.length !== 2 || !p.every((x) => Number.isInteger(x) && x > 0))) {
    throw new LoupeError('bad-input', `image_grid_pinpoints (preprocessor_config.json or config.json) must be a list of [height, width] pairs, got ${JSON.stringify(rawPins)}`);
  }
  const pinpoints = rawPins.map((p) => [p[0], p[1]] as [number, number]);
  const size = (typeof pre.size === 'number' ? { shortest_edge: pre.size } : (pre.size ?? {})) as { shortest_edge?: number; height?: number; width?: number };
  const square = size.shortest_edge ?? (size.height !== undefined && size.width !== undefined ? Math.min(size.height, size.width) : undefined);
  let crop: number;
  let base: { height: number; width: number };
  let cropResize: AnyresConfig['cropResize'];
  let centerCrop: AnyresConfig['centerCrop'];
  if (family === 'llava-next') {
    // LlavaNextImageProcessor.preprocess: get_image_patches(size=(shortest_edge,)*2 or (min(h, w),)*2, patch_size=crop_size["height"])
    const cs = (typeof pre.crop_size === 'number' ? { height: pre.crop_size, width: pre.crop_size } : (pre.crop_size ?? { height: 336, width: 336 })) as { height?: number; width?: number };
    crop = positiveInt(cs.height, 'preprocessor_config.json crop_size.height');
    const s = positiveInt(square ?? 336, 'preprocessor_config.json size');
    base = { height: s, width: s };
    cropResize = size.shortest_edge !== undefined ? { shortestEdge: size.shortest_edge } : { height: positiveInt(size.height, 'size.height'), width: positiveInt(size.width, 'size.width') };
    if (pre.do_center_crop ?? true) centerCrop = { height: crop, width: positiveInt(cs.width ?? crop, 'crop_size.width') };
  } else {
    // LlavaOnevisionImageProcessor.preprocess: size_tuple = (height, width) or (shortest_edge,)*2, patch_size=size["height"]
    const h = size.height ?? size.shortest_edge ?? 384;
    const w = size.width ?? size.shortest_edge ?? 384;
    base = { height: positiveInt(h, 'preprocessor_config.json size.height'), width: positiveInt(w, 'preprocessor_config.json size.width') };
    crop = base.height;
    cropResize = { ...base };
  }
  const proc = folder.processorConfig as { patch_size?: number; num_image_tokens?: number; vision_feature_select_strategy?: string };
  const strategy = String(proc.vision_feature_select_strategy ?? cfg.vision_feature_select_strategy ?? 'default');
  let side: number;
  if (family === 'llava-next') {
    // LlavaNextProcessor: patches_height = height // patch_size, height = the preprocessed crop's height
    const patch = positiveInt(proc.patch_size ?? vision.patch_size, 'processor_config.json patch_size (or vision_config.patch_size)');
    side = Math.floor((centerCrop?.height ?? ('height' in cropResize ? cropResize.height : crop)) / patch);
  } else {
    // LlavaOnevisionProcessor: patches_height = int(sqrt(num_image_tokens))
    const n = proc.num_image_tokens ?? (vision.image_size && vision.patch_size ? Math.floor(vision.image_size / vision.patch_size) ** 2 : undefined);
    side = Math.floor(Math.sqrt(positiveInt(n, 'processor_config.json num_image_tokens')));
  }
  // pack_image_features views every crop's selected features as side × side: "default" drops the first token, which
  // is a CLS only for CLIP-style towers; "full" keeps it. Other combinations fail in HF's model as well.
  const cls = String(vision.model_type ?? (family === 'llava-next' ? 'clip_vision_model' : 'siglip_vision_model')).includes('clip');
  if (cls !== (strategy === 'default')) throw new LoupeError('bad-input', `vision_feature_select_strategy "${strategy}" with a ${cls ? 'CLS' : 'CLS-free'} ${vision.model_type ?? ''} tower leaves a crop's features off the ${side}×${side} grid HF's pack_image_features needs`);
  let maxCrops: number | undefined;
  if (family === 'llava-onevision') {
    const m = /^anyres_max_(\d+)$/.exec(String(cfg.vision_aspect_ratio ?? 'anyres_max_9'));
    if (!m) throw new LoupeError('bad-input', `config.json vision_aspect_ratio ${JSON.stringify(cfg.vision_aspect_ratio)} is not anyres_max_N`);
    maxCrops = Number(m[1]);
  }
  const normalize = pre.do_normalize ?? true;
  return {
    family,
    pinpoints,
    crop,
    base,
    doResize: (pre.do_resize as boolean | undefined) ?? true,
    cropResize,
    ...(centerCrop && { centerCrop }),
    filter: filterOf(pre.resample ?? 3), // both processors default to BICUBIC
    ...(((pre.do_rescale as boolean | undefined) ?? true) && { rescale: Number(pre.rescale_factor ?? 1 / 255) }),
    ...(normalize && { normalize: { mean: perChannel(pre.image_mean, OPENAI_CLIP_MEAN), std: perChannel(pre.image_std, OPENAI_CLIP_STD) } }),
    doPad: (pre.do_pad as boolean | undefined) ?? true,
    side,
    ...(maxCrops !== undefined && { maxCrops }),
  };
}

/** HF `select_best_resolution(original_size=(height, width), possible_resolutions)`: [height, width]. */
export function selectBestResolution(height: number, width: number, pinpoints: readonly (readonly [number, number])[]): [number, number] {
  let best: [number, number] | undefined;
  let maxEffective = 0;
  let minWasted = Infinity;
  for (const [h, w] of pinpoints) {
    const scale = Math.min(w / width, h / height);
    const effective = Math.min(Math.trunc(width * scale) * Math.trunc(height * scale), width * height);
    const wasted = w * h - effective;
    if (effective > maxEffective || (effective === maxEffective && wasted < minWasted)) {
      maxEffective = effective;
      minWasted = wasted;
      best = [h, w];
    }
  }
  if (!best) throw new LoupeError('bad-input', `no grid pinpoint fits a ${width}×${height} image`);
  return best;
}

/** HF `_get_patch_output_size`: the resize before padding, [height, width]. */
export function patchOutputSize(height: number, width: number, target: readonly [number, number]): [number, number] {
  const [th, tw] = target;
  const scaleW = tw / width;
  const scaleH = th / height;
  if (scaleW < scaleH) return [Math.min(Math.ceil(height * scaleW), th), tw];
  return [th, Math.min(Math.ceil(width * scaleH), tw)];
}

/** Python's `a // b` on positive floats (floor of the exactly rounded quotient, as CPython's float_floor_div). */
function pyFloorDiv(a: number, b: number): number {
  const mod = a % b;
  const div = (a - mod) / b;
  let floor = Math.floor(div);
  if (div - floor > 0.5) floor += 1;
  return floor;
}

/** One image's place in the packed features. */
export interface AnyresLayout {
  height: number;
  width: number;
  /** The crop grid (best pinpoint / crop). */
  rows: number;
  cols: number;
  /** The unpadded region of the (rows·side) × (cols·side) feature grid: [top, bottom) × [left, right). */
  top: number;
  bottom: number;
  left: number;
  right: number;
  /** The packed grid (the region, or OneVision's downsampled size), each row closed by an image_newline. */
  outRows: number;
  outCols: number;
  /** Tokens of this image: side² (base) + outRows·(outCols + 1). */
  tokens: number;
}

/** The processor's count and the model's packing for one image (LlavaNextProcessor / LlavaOnevisionProcessor `_get_number_of_features`). */
export function anyresLayout(height: number, width: number, cfg: Pick<AnyresConfig, 'pinpoints' | 'crop' | 'side' | 'maxCrops'>): AnyresLayout {
  const [bh, bw] = selectBestResolution(height, width, cfg.pinpoints);
  const rows = Math.floor(bh / cfg.crop);
  const cols = Math.floor(bw / cfg.crop);
  const ch = cfg.side * rows;
  const cw = cfg.side * cols;
  let top = 0;
  let bottom = ch;
  let left = 0;
  let right = cw;
  // _get_unpadded_features / unpad_image: original vs current aspect ratio, int() of the scaled side
  if (width / height > cw / ch) {
    const pad = Math.floor((ch - Math.trunc(height * (cw / width))) / 2);
    top = pad;
    bottom = ch - pad;
  } else {
    const pad = Math.floor((cw - Math.trunc(width * (ch / height))) / 2);
    left = pad;
    right = cw - pad;
  }
  let outRows = bottom - top;
  let outCols = right - left;
  if (cfg.maxCrops !== undefined) {
    const ratio = Math.sqrt((outRows * outCols) / (cfg.maxCrops * cfg.side ** 2));
    if (ratio > 1.1) {
      outRows = pyFloorDiv(outRows, ratio);
      outCols = pyFloorDiv(outCols, ratio);
    }
  }
  return { height, width, rows, cols, top, bottom, left, right, outRows, outCols, tokens: cfg.side ** 2 + outRows * (outCols + 1) };
}

/** Each `<image>` of the prompt repeated as often as its image has tokens (the processors' `_expand_image_tokens`). */
export function anyresExpandPrompt(prompt: string, tokensPerImage: readonly number[], imageToken: string): string {
  const parts = prompt.split(imageToken);
  if (parts.length - 1 !== tokensPerImage.length) throw new LoupeError('bad-input', `prompt has ${parts.length - 1} ${imageToken} placeholders for ${tokensPerImage.length} images`);
  return parts.reduce((out, part, i) => (i === 0 ? part : out + imageToken.repeat(tokensPerImage[i - 1]!) + part), '');
}

/** The token map of a prompt's image tokens (see the module comment for the tile / row / col convention). */
export function anyresTokenMap(inputIds: BigInt64Array, imageTokenId: number, layouts: readonly AnyresLayout[], side: number): ImageTokenPosition[] {
  const positions: number[] = [];
  inputIds.forEach((id, i) => id === BigInt(imageTokenId) && positions.push(i));
  const expected = layouts.reduce((s, l) => s + l.tokens, 0);
  if (positions.length !== expected) throw new LoupeError('bad-input', `prompt has ${positions.length} image tokens; the images' anyres layouts imply ${expected}`);
  const out: ImageTokenPosition[] = [];
  let k = 0;
  const push = (image: number, tile: number, row: number, col: number) => out.push({ position: positions[k++]!, image, tile, row, col });
  layouts.forEach((l, image) => {
    const crops = l.rows * l.cols;
    for (let j = 0; j < side * side; j++) push(image, crops, Math.floor(j / side), j % side);
    const h = l.bottom - l.top;
    const w = l.right - l.left;
    // Downsampled (OneVision): output cell i samples source (i + ½)·in/out − ½ (bilinear, align_corners false); the
    // nearest source cell is floor((i + ½)·in/out).
    const srcRow = (i: number) => l.top + (l.outRows === h ? i : Math.min(h - 1, Math.floor(((i + 0.5) * h) / l.outRows)));
    const srcCol = (j: number) => l.left + (l.outCols === w ? j : Math.min(w - 1, Math.floor(((j + 0.5) * w) / l.outCols)));
    const tileOf = (r: number, c: number) => Math.floor(r / side) * l.cols + Math.floor(c / side);
    for (let i = 0; i < l.outRows; i++) {
      const r = srcRow(i);
      for (let j = 0; j < l.outCols; j++) {
        const c = srcCol(j);
        push(image, tileOf(r, c), r % side, c % side);
      }
      push(image, tileOf(r, srcCol(l.outCols - 1)), -1, -1);
    }
  });
  return out;
}

interface Frame {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
}

function resize(f: Frame, width: number, height: number, filter: PilFilter): Frame {
  if (f.width === width && f.height === height) return f; // PIL returns a copy for the same size
  return { data: pilResize(f.data, f.width, f.height, 3, width, height, filter), width, height };
}

/** Crop [x0, x1) × [y0, y1), clipped to the frame (numpy slicing). */
function crop(f: Frame, x0: number, y0: number, x1: number, y1: number): Frame {
  const xe = Math.min(x1, f.width);
  const ye = Math.min(y1, f.height);
  const width = xe - x0;
  const height = ye - y0;
  const data = new Uint8ClampedArray(width * height * 3);
  for (let y = 0; y < height; y++) data.set(f.data.subarray(((y0 + y) * f.width + x0) * 3, ((y0 + y) * f.width + xe) * 3), y * width * 3);
  return { data, width, height };
}

/** Black borders: `py` rows above and below, `px` columns left and right. */
function pad(f: Frame, py: number, px: number): Frame {
  if (py === 0 && px === 0) return f;
  const width = f.width + 2 * px;
  const height = f.height + 2 * py;
  const data = new Uint8ClampedArray(width * height * 3);
  for (let y = 0; y < f.height; y++) data.set(f.data.subarray(y * f.width * 3, (y + 1) * f.width * 3), ((y + py) * width + px) * 3);
  return { data, width, height };
}

/** The per-crop `_preprocess` resize and centre crop (before rescale / normalise). */
function preprocessCrop(f: Frame, cfg: AnyresConfig): Frame {
  let out = f;
  if (cfg.doResize) {
    if ('shortestEdge' in cfg.cropResize) {
      // get_resize_output_image_size(default_to_square=False): the short side to shortest_edge, the long one int()
      const s = cfg.cropResize.shortestEdge;
      const [short, long] = out.width <= out.height ? [out.width, out.height] : [out.height, out.width];
      const newLong = Math.trunc((s * long) / short);
      out = out.width <= out.height ? resize(out, s, newLong, cfg.filter) : resize(out, newLong, s, cfg.filter);
    } else {
      out = resize(out, cfg.cropResize.width, cfg.cropResize.height, cfg.filter);
    }
  }
  if (cfg.centerCrop) {
    const { height, width } = cfg.centerCrop;
    const top = Math.floor((out.height - height) / 2);
    const left = Math.floor((out.width - width) / 2);
    if (top < 0 || left < 0) throw new LoupeError('bad-input', `a ${out.width}×${out.height} crop is smaller than crop_size ${width}×${height} (size.shortest_edge below crop_size is not supported)`);
    out = crop(out, left, top, left + width, top + height);
  }
  return out;
}

export interface AnyresImages {
  /** float32 [images, max crops + 1, 3, H, W]: per image the base view, then its crops in reading order. */
  pixelValues: HostTensor;
  /** int64 [images, 2]: (height, width) of each original image. */
  imageSizes: HostTensor;
  layouts: AnyresLayout[];
}

/** Preprocesses a prompt's images as HF's LlavaNextImageProcessor / LlavaOnevisionImageProcessor do. */
export function anyresImages(images: RawImage[], cfg: AnyresConfig): AnyresImages {
  if (images.length === 0) throw new LoupeError('bad-input', 'anyres preprocessing needs at least one image');
  const perImage: Frame[][] = [];
  const layouts: AnyresLayout[] = [];
  for (const image of images) {
    if (image.channels !== 3) throw new LoupeError('bad-input', `anyres preprocessing expects RGB images, got ${image.channels} channels`);
    const f: Frame = { data: image.data as Uint8ClampedArray, width: image.width, height: image.height };
    const best = selectBestResolution(f.height, f.width, cfg.pinpoints);
    const [nh, nw] = patchOutputSize(f.height, f.width, best);
    const padded = pad(resize(f, nw, nh, cfg.filter), Math.floor((best[0] - nh) / 2), Math.floor((best[1] - nw) / 2));
    const crops: Frame[] = [];
    for (let y = 0; y < padded.height; y += cfg.crop) for (let x = 0; x < padded.width; x += cfg.crop) crops.push(crop(padded, x, y, x + cfg.crop, y + cfg.crop));
    const frames = [resize(f, cfg.base.width, cfg.base.height, cfg.filter), ...crops].map((c) => preprocessCrop(c, cfg));
    const layout = anyresLayout(f.height, f.width, cfg);
    if (crops.length !== layout.rows * layout.cols) throw new LoupeError('bad-input', `a ${f.width}×${f.height} image gave ${crops.length} crops for a ${layout.rows}×${layout.cols} grid`);
    perImage.push(frames);
    layouts.push(layout);
  }
  const { width: W, height: H } = perImage[0]![0]!;
  if (perImage.some((fs) => fs.some((f) => f.width !== W || f.height !== H))) throw new LoupeError('bad-input', 'anyres crops of different sizes after preprocessing');
  const P = Math.max(...perImage.map((fs) => fs.length));
  if (!cfg.doPad && perImage.some((fs) => fs.length !== P)) throw new LoupeError('bad-input', 'images with different crop counts need do_pad');
  const mean = cfg.normalize?.mean.map(Math.fround);
  const std = cfg.normalize?.std.map(Math.fround);
  const pixels = new Float32Array(images.length * P * 3 * H * W); // padding crops stay 0 (_pad_for_batching)
  perImage.forEach((frames, i) => {
    frames.forEach((f, p) => {
      const o = (i * P + p) * 3 * H * W;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          for (let c = 0; c < 3; c++) {
            // HF: rescale in float64, stored float32; normalise in float32.
            let v = f.data[(y * W + x) * 3 + c]!;
            if (cfg.rescale !== undefined) v = Math.fround(v * cfg.rescale);
            if (mean && std) v = Math.fround(Math.fround(v - mean[c]!) / std[c]!);
            pixels[o + (c * H + y) * W + x] = v;
          }
        }
      }
    });
  });
  return {
    pixelValues: { dtype: 'float32', shape: [images.length, P, 3, H, W], data: pixels },
    imageSizes: { dtype: 'int64', shape: [images.length, 2], data: BigInt64Array.from(images.flatMap((im) => [BigInt(im.height), BigInt(im.width)])) },
    layouts,
  };
}
