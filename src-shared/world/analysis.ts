/**
 * Measurements on instance masks: visible areas, boxes, centroids and "safe" pixels for markers.
 * Ground truth that depends on occlusion (boxes, marker spots, visibility) is read back from the
 * rendered mask rather than from the scene geometry, so it describes what is actually visible.
 */

export type Box = [number, number, number, number];

export interface InstanceStats {
  id: number;
  area: number;
  /** [x0, y0, x1, y1], x1/y1 exclusive (the dataset format's box convention). */
  box: Box;
  /** Mean pixel index (x, y) of the visible pixels. */
  centroid: [number, number];
}

export function instanceStats(mask: Uint8Array, width: number): Map<number, InstanceStats> {
  const acc = new Map<number, { area: number; sx: number; sy: number; x0: number; y0: number; x1: number; y1: number }>();
  for (let i = 0; i < mask.length; i++) {
    const id = mask[i]!;
    if (id === 0) continue;
    const x = i % width;
    const y = (i - x) / width;
    let a = acc.get(id);
    if (!a) acc.set(id, (a = { area: 0, sx: 0, sy: 0, x0: x, y0: y, x1: x, y1: y }));
    a.area++;
    a.sx += x;
    a.sy += y;
    a.x0 = Math.min(a.x0, x);
    a.y0 = Math.min(a.y0, y);
    a.x1 = Math.max(a.x1, x);
    a.y1 = Math.max(a.y1, y);
  }
  const out = new Map<number, InstanceStats>();
  for (const [id, a] of acc) {
    out.set(id, { id, area: a.area, box: [a.x0, a.y0, a.x1 + 1, a.y1 + 1], centroid: [a.sx / a.area, a.sy / a.area] });
  }
  return out;
}

/** True when the (2·half+1)² square around (x, y) lies inside the image and entirely on `id`. */
export function squareOn(mask: Uint8Array, width: number, height: number, x: number, y: number, half: number, id: number): boolean {
  if (x - half < 0 || y - half < 0 || x + half >= width || y + half >= height) return false;
  for (let yy = y - half; yy <= y + half; yy++) {
    for (let xx = x - half; xx <= x + half; xx++) if (mask[yy * width + xx] !== id) return false;
  }
  return true;
}

/**
 * Pixels of `id` whose (2·half+1)² neighbourhood is all `id`, nearest the visible centroid first:
 * a marker centred there sits clearly on the object and never bleeds onto a neighbour.
 */
export function safePixels(mask: Uint8Array, width: number, height: number, id: number, half: number): [number, number][] {
  const stats = instanceStats(mask, width).get(id);
  if (!stats) return [];
  const [cx, cy] = stats.centroid;
  const out: [number, number][] = [];
  const [x0, y0, x1, y1] = stats.box;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) if (squareOn(mask, width, height, x, y, half, id)) out.push([x, y]);
  }
  // Stable sort by distance to the centroid, ties by raster order (deterministic).
  return out.sort((a, b) => (a[0] - cx) ** 2 + (a[1] - cy) ** 2 - ((b[0] - cx) ** 2 + (b[1] - cy) ** 2) || a[1] - b[1] || a[0] - b[0]);
}
