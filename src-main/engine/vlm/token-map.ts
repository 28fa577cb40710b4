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
  const prefix = config.vision_feature_select_strategy === 'full' ? 1 : 0;
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
