/**
 * Token-grid predictions → pixel predictions of the original image, for the probes whose
 * protocol scores pixels (class-wise mIoU, DAVIS J&F, referring IoU, co-segmentation), through the
 * one pixel → token map (src-shared/vision/pixel-map.ts) so the processor's resize and crop are
 * undone exactly.
 *
 * - Hard labels (a segment, a region) go to pixels by each pixel's own cell (nearest: the cell
 *   that pixel's centre falls in), the inverse of how labels reach tokens.
 * - Soft labels (propagated DAVIS masks) are sampled bilinearly at each pixel centre with
 *   PyTorch's `align_corners=False` convention (cell centres at (i + ½) cells; edges clamped),
 *   as DIFT/DINO upsample the propagated map before the argmax.
 * - Pixels the processor cropped away were never seen by the model: they are predicted
 *   background (label 0, or NaN for soft maps, which callers turn into background). Their
 *   ground truth still counts, so a crop costs recall — a choice, documented in the README.
 */
import { type PixelMap, pixelCell } from '../../../src-shared/vision/pixel-map.ts';

/** Per original pixel (row-major), its token cell, or −1 where the processor cropped it away. */
export function pixelCells(map: PixelMap): Int32Array {
  const { width, height } = map.image;
  const out = new Int32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) out[y * width + x] = pixelCell(map, x, y) ?? -1;
  return out;
}

/** Cell labels → pixel labels by each pixel's cell; cropped pixels get 0. */
export function cellsToPixels(cells: ArrayLike<number | boolean>, pc: Int32Array): Uint8Array {
  const out = new Uint8Array(pc.length);
  for (let i = 0; i < pc.length; i++) out[i] = pc[i]! >= 0 ? Number(cells[pc[i]!]) : 0;
  return out;
}

/** Per pixel, the four cells and weights of its bilinear sample (cell −1 = cropped pixel). */
export interface BilinearTable {
  cells: Int32Array;
  weights: Float64Array;
}

/**
 * The bilinear sampling of a cell map at every pixel centre of the original image:
 * align_corners=False grid coordinates g = v · cells / view − ½, clamped to the grid as torch's
 * upsample_bilinear2d does. Built once per image and applied to every channel.
 */
export function bilinearTable(map: PixelMap): BilinearTable {
  const { width, height } = map.image;
  const cells = new Int32Array(width * height * 4).fill(-1);
  const weights = new Float64Array(width * height * 4);
  const clampIndex = (g: number, n: number): [number, number, number] => {
    const u = Math.max(0, g);
    const i0 = Math.min(Math.floor(u), n - 1);
    const i1 = Math.min(i0 + 1, n - 1);
    return [i0, i1, i0 === n - 1 ? 0 : u - i0];
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (pixelCell(map, x, y) === undefined) continue;
      const vx = (x + 0.5) * map.scaleX - map.left;
      const vy = (y + 0.5) * map.scaleY - map.top;
      const [c0, c1, lx] = clampIndex((vx * map.cols) / map.width - 0.5, map.cols);
      const [r0, r1, ly] = clampIndex((vy * map.rows) / map.height - 0.5, map.rows);
      const k = (y * width + x) * 4;
      cells.set([r0 * map.cols + c0, r0 * map.cols + c1, r1 * map.cols + c0, r1 * map.cols + c1], k);
      weights.set([(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx], k);
    }
  }
  return { cells, weights };
}

/** One cell map (rows × cols, row-major) sampled at every pixel (NaN where cropped). */
export function bilinearAtPixels(cellValues: ArrayLike<number>, table: BilinearTable): Float64Array {
  const n = table.cells.length / 4;
  const out = new Float64Array(n);
  const { cells, weights } = table;
  for (let i = 0; i < n; i++) {
    const k = i * 4;
    if (cells[k]! < 0) {
      out[i] = NaN;
      continue;
    }
    out[i] = weights[k]! * cellValues[cells[k]!]! + weights[k + 1]! * cellValues[cells[k + 1]!]! + weights[k + 2]! * cellValues[cells[k + 2]!]! + weights[k + 3]! * cellValues[cells[k + 3]!]!;
  }
  return out;
}
