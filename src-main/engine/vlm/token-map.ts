/**
 * Which prompt positions hold image tokens, and which patch each one is.
 * Built from the real token runs in input_ids and the model's real patch grid — never an
 * assumed 24×24 — and checked against each other, so a processor/config mismatch is caught.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export interface ImageTokenPosition {
  position: number;
  image: number;
  tile: number;
  row: number;
  col: number;
}

export interface PatchGrid {
  rows: number;
  cols: number;
  /** Extra tokens per image before the grid (e.g. CLS kept by a "full" feature strategy). */
  prefix: number;
}

/** LLaVA-style grid: image_size / patch_size per side; CLS dropped under the "default" strategy. */
export function llavaGrid(config: Record<string, unknown>): PatchGrid {
  const vision = config.vision_config as { image_size?: number; patch_size?: number } | undefined;
  if (!vision?.image_size || !vision.patch_size) throw new LoupeError('bad-input', 'config.json vision_config lacks image_size/patch_size');
  const side = Math.floor(vision.image_size / vision.patch_size);
  // "full" keeps the tower's CLS token — SigLIP towers have none (729 tokens at 384 px, not 730).
  const type = String((config.vision_config as { model_type?: string } | undefined)?.model_type ?? 'clip_vision_model');
  const prefix = config.vision_feature_select_strategy === 'full' && !type.includes('siglip') ? 1 : 0;
  return { rows: side, cols: side, prefix };
}

export function imageTokenMap(inputIds: BigInt64Array, imageTokenId: number, grid: PatchGrid): ImageTokenPosition[] {
  const perImage = grid.prefix + grid.rows * grid.cols;
  const positions: number[] = [];
  inputIds.forEach((id, i) => id === BigInt(imageTokenId) && positions.push(i));
  if (positions.length % perImage !== 0) {
    throw new LoupeError('bad-input', `prompt has ${positions.length} image tokens, not a multiple of the ${perImage} the model's ${grid.rows}×${grid.cols} grid implies`);
  }
  return positions.map((position, k) => {
    const image = Math.floor(k / perImage);
    const j = (k % perImage) - grid.prefix;
    // Prefix tokens (CLS) get row/col -1: they belong to the image but to no patch.
    return { position, image, tile: 0, row: j < 0 ? -1 : Math.floor(j / grid.cols), col: j < 0 ? -1 : j % grid.cols };
  });
}

/**
 * Qwen2-VL: each image's tokens cover its merged grid (h/merge × w/merge per frame), in
 * row-major order; the grid comes from the processor's `image_grid_thw`, per image.
 */
export function qwenTokenMap(inputIds: BigInt64Array, imageTokenId: number, grids: { t: number; h: number; w: number }[], mergeSize: number): ImageTokenPosition[] {
  const positions: number[] = [];
  inputIds.forEach((id, i) => id === BigInt(imageTokenId) && positions.push(i));
  const out: ImageTokenPosition[] = [];
  let k = 0;
  grids.forEach((g, image) => {
    const gw = g.w / mergeSize;
    const perFrame = (g.h / mergeSize) * gw;
    for (let j = 0; j < g.t * perFrame; j++, k++) {
      const position = positions[k];
      if (position === undefined) throw new LoupeError('bad-input', `prompt has ${positions.length} image tokens, fewer than the image grids imply`);
      out.push({ position, image, tile: Math.floor(j / perFrame), row: Math.floor((j % perFrame) / gw), col: j % gw });
    }
  });
  if (k !== positions.length) throw new LoupeError('bad-input', `prompt has ${positions.length} image tokens but the image grids imply ${k}`);
  return out;
}

/**
 * Idefics3 / SmolVLM: an image becomes rows×cols tiles plus one global view, each a block of
 * `imageSeqLen` tokens forming a √imageSeqLen square grid (after pixel shuffle). Blocks appear
 * in the prompt in reading order, the global view last; tile index = block index.
 */
export function idefics3TokenMap(inputIds: BigInt64Array, imageTokenId: number, tilesPerImage: number[], imageSeqLen: number): ImageTokenPosition[] {
  const side = Math.round(Math.sqrt(imageSeqLen));
  if (side * side !== imageSeqLen) throw new LoupeError('bad-input', `image_seq_len ${imageSeqLen} is not a square grid`);
  const positions: number[] = [];
  inputIds.forEach((id, i) => id === BigInt(imageTokenId) && positions.push(i));
  const expected = tilesPerImage.reduce((s, n) => s + n, 0) * imageSeqLen;
  if (positions.length !== expected) throw new LoupeError('bad-input', `prompt has ${positions.length} image tokens; ${tilesPerImage.join('+')} tiles × ${imageSeqLen} imply ${expected}`);
  const out: ImageTokenPosition[] = [];
  let k = 0;
  tilesPerImage.forEach((tiles, image) => {
    for (let tile = 0; tile < tiles; tile++) for (let j = 0; j < imageSeqLen; j++) out.push({ position: positions[k++]!, image, tile, row: Math.floor(j / side), col: j % side });
  });
  return out;
}
