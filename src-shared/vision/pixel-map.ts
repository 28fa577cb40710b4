/**
 * The one pixel → token map: where a point, mask pixel or box of the *original* image lands on
 * a model's token grid, through the image processor's resize and centre crop. Every experiment
 * (readouts, K/V probes, correspondence, propagation) goes through it, so labels on
 * non-square images land on the tokens the model actually saw — or are reported as cropped away.
 *
 * Coordinates are continuous pixel coordinates of the original image (0..width), as labels
 * store them; pixel (px, py) covers [px, px + 1) × [py, py + 1) and is mapped by its centre.
 * A resize maps u → u · view/original (Pillow's and sharp's convention: output pixel centres
 * sample input position (i + 0.5) · scale), the crop then shifts by its offset.
 */

export interface Size {
  width: number;
  height: number;
}

export interface Grid {
  rows: number;
  cols: number;
}

export interface PixelMap extends Grid {
  /** The original image. */
  image: Size;
  /** Original → resized scale per axis. */
  scaleX: number;
  scaleY: number;
  /** Where the view starts in the resized image (the crop offset; negative = padding). */
  left: number;
  top: number;
  /** The view the tokens tile, in resized pixels. */
  width: number;
  height: number;
}

/** The whole image is the view (a plain resize, or none): cells are proportional. */
export function wholeImageMap(image: Size, grid: Grid): PixelMap {
  return { image, rows: grid.rows, cols: grid.cols, scaleX: 1, scaleY: 1, left: 0, top: 0, width: image.width, height: image.height };
}

/** The same view for a raster of another size over the same image (a mask stored at another resolution). */
export function mapForRaster(map: PixelMap, raster: Size): PixelMap {
  if (raster.width === map.image.width && raster.height === map.image.height) return map;
  return { ...map, image: raster, scaleX: (map.scaleX * map.image.width) / raster.width, scaleY: (map.scaleY * map.image.height) / raster.height };
}

/** Row-major cell under a continuous coordinate, or undefined when the processor cropped it away. */
export function cellAt(map: PixelMap, at: readonly [number, number]): number | undefined {
  const x = at[0] * map.scaleX - map.left;
  const y = at[1] * map.scaleY - map.top;
  if (!(x >= 0 && y >= 0 && x <= map.width && y <= map.height)) return undefined;
  // A coordinate on the far edge (x = width) belongs to the last cell.
  const col = Math.min(map.cols - 1, Math.floor((x * map.cols) / map.width));
  const row = Math.min(map.rows - 1, Math.floor((y * map.rows) / map.height));
  return row * map.cols + col;
}

/** Cell of pixel (px, py), by its centre. */
export function pixelCell(map: PixelMap, px: number, py: number): number | undefined {
  return cellAt(map, [px + 0.5, py + 0.5]);
}

/** Centre of a row-major cell in original-image coordinates (the inverse of cellAt at cell centres). */
export function cellCentre(map: PixelMap, cell: number): [number, number] {
  const row = Math.floor(cell / map.cols);
  const col = cell % map.cols;
  return [(((col + 0.5) * map.width) / map.cols + map.left) / map.scaleX, (((row + 0.5) * map.height) / map.rows + map.top) / map.scaleY];
}

/** A cell's bounds [x0, y0, x1, y1] in original-image coordinates. */
export function cellBounds(map: PixelMap, cell: number): [number, number, number, number] {
  const row = Math.floor(cell / map.cols);
  const col = cell % map.cols;
  const x = (c: number) => ((c * map.width) / map.cols + map.left) / map.scaleX;
  const y = (r: number) => ((r * map.height) / map.rows + map.top) / map.scaleY;
  return [x(col), y(row), x(col + 1), y(row + 1)];
}

/** Image-processor settings that decide the view (`preprocessor_config.json`). */
export interface ViewConfig {
  do_resize?: boolean;
  size?: { shortest_edge?: number; longest_edge?: number; height?: number; width?: number } | number;
  do_center_crop?: boolean;
  crop_size?: { height?: number; width?: number } | number;
}

/**
 * CLIP/SigLIP-style processors (LLaVA-1.5, LLaVA-OneVision's base view) as Loupe runs them
 * (transformers.js sizes; Pillow resampling): resize to `size` — the shortest edge to
 * `shortest_edge` keeping the aspect ratio, or exactly height × width — then centre-crop to
 * `crop_size` with the offset floored.
 */
export function clipViewMap(config: ViewConfig, image: Size, grid: Grid): PixelMap {
  let w = image.width;
  let h = image.height;
  const size = typeof config.size === 'number' ? { shortest_edge: config.size } : config.size;
  if (config.do_resize !== false && size) {
    if (size.shortest_edge !== undefined) {
      const f = Math.max(size.shortest_edge / w, size.shortest_edge / h);
      // transformers.js: floor after rounding to two decimals (its guard against float noise).
      [w, h] = [Math.floor(Number((w * f).toFixed(2))), Math.floor(Number((h * f).toFixed(2)))];
    } else if (size.width !== undefined && size.height !== undefined) {
      [w, h] = [size.width, size.height];
    }
  }
  const scaleX = w / image.width;
  const scaleY = h / image.height;
  const crop = typeof config.crop_size === 'number' ? { width: config.crop_size, height: config.crop_size } : config.crop_size;
  if (config.do_center_crop && crop?.width && crop.height) {
    return { image, rows: grid.rows, cols: grid.cols, scaleX, scaleY, left: Math.floor((w - crop.width) / 2), top: Math.floor((h - crop.height) / 2), width: crop.width, height: crop.height };
  }
  return { image, rows: grid.rows, cols: grid.cols, scaleX, scaleY, left: 0, top: 0, width: w, height: h };
}

/**
 * Fraction of each cell covered by the instances in `target`, from a pixel mask of instance ids
 * (row-major, at the original image's size); pixels the processor cropped away count nowhere.
 */
export function cellCoverage(map: PixelMap, ids: ArrayLike<number>, target: ReadonlySet<number>): Float64Array {
  const { width, height } = map.image;
  if (ids.length !== width * height) throw new Error(`mask has ${ids.length} pixels, the image is ${width}×${height}`);
  const count = new Float64Array(map.rows * map.cols);
  const area = new Float64Array(map.rows * map.cols);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = pixelCell(map, x, y);
      if (c === undefined) continue;
      area[c]! += 1;
      if (target.has(ids[y * width + x]!)) count[c]! += 1;
    }
  }
  return count.map((c, p) => (area[p]! > 0 ? c / area[p]! : 0));
}
