/**
 * Binary masks as the Label view edits them: one byte per pixel (0 or 1), row-major,
 * `width × height`. Pixel (x, y) covers [x, x+1) × [y, y+1) in image coordinates (the same
 * continuous coordinates the other labels use), so a shape covers a pixel when it covers the
 * pixel's centre (x + ½, y + ½). Pure functions, shared by the renderer (brush and polygon
 * tools), the engine (COCO polygon import) and the tests.
 */

export type Pt = readonly [number, number];

function assertSize(data: Uint8Array, width: number, height: number): void {
  if (data.length !== width * height) throw new Error(`mask of ${data.length} pixels is not ${width}×${height}`);
}

/**
 * Brush: sets every pixel whose centre lies within `radius` of the segment a→b (a capsule;
 * a single dab when a = b) to `value`. Returns how many pixels changed.
 */
export function paintSegment(data: Uint8Array, width: number, height: number, a: Pt, b: Pt, radius: number, value: 0 | 1): number {
  assertSize(data, width, height);
  const r = Math.max(0, radius);
  const x0 = Math.max(0, Math.floor(Math.min(a[0], b[0]) - r - 0.5));
  const x1 = Math.min(width - 1, Math.ceil(Math.max(a[0], b[0]) + r - 0.5));
  const y0 = Math.max(0, Math.floor(Math.min(a[1], b[1]) - r - 0.5));
  const y1 = Math.min(height - 1, Math.ceil(Math.max(a[1], b[1]) + r - 0.5));
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const r2 = r * r + 1e-9;
  let changed = 0;
  for (let y = y0; y <= y1; y++) {
    const py = y + 0.5;
    for (let x = x0; x <= x1; x++) {
      const px = x + 0.5;
      const t = len2 > 0 ? Math.min(1, Math.max(0, ((px - a[0]) * dx + (py - a[1]) * dy) / len2)) : 0;
      const ex = px - (a[0] + t * dx);
      const ey = py - (a[1] + t * dy);
      if (ex * ex + ey * ey > r2) continue;
      const i = y * width + x;
      if (data[i] !== value) {
        data[i] = value;
        changed++;
      }
    }
  }
  return changed;
}

/**
 * Scanline polygon fill (even–odd rule): sets every pixel whose centre lies inside the closed
 * polygon to `value`. A centre exactly on a left edge is inside, on a right edge outside, so
 * two polygons sharing an edge never both cover a pixel. Returns how many pixels changed.
 */
export function fillPolygon(data: Uint8Array, width: number, height: number, polygon: readonly Pt[], value: 0 | 1): number {
  assertSize(data, width, height);
  const n = polygon.length;
  if (n < 3) return 0;
  let ymin = Infinity;
  let ymax = -Infinity;
  for (const [, y] of polygon) {
    ymin = Math.min(ymin, y);
    ymax = Math.max(ymax, y);
  }
  let changed = 0;
  const xs: number[] = [];
  for (let y = Math.max(0, Math.floor(ymin - 0.5)); y <= Math.min(height - 1, Math.ceil(ymax - 0.5)); y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let i = 0; i < n; i++) {
      const [ax, ay] = polygon[i]!;
      const [bx, by] = polygon[(i + 1) % n]!;
      // Half-open in y: a vertex on the scanline counts for exactly one of its two edges.
      if ((ay <= yc) === (by <= yc)) continue;
      xs.push(ax + ((yc - ay) / (by - ay)) * (bx - ax));
    }
    xs.sort((p, q) => p - q);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // Pixels whose centre x + ½ lies in [left, right).
      const from = Math.max(0, Math.ceil(xs[k]! - 0.5));
      const to = Math.min(width, Math.ceil(xs[k + 1]! - 0.5));
      for (let x = from; x < to; x++) {
        const i = y * width + x;
        if (data[i] !== value) {
          data[i] = value;
          changed++;
        }
      }
    }
  }
  return changed;
}

/** Number of set pixels. */
export function maskArea(data: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (data[i]) n++;
  return n;
}

/** Tight box of the set pixels as COCO's [x, y, width, height], or null for an empty mask. */
export function maskBbox(data: ArrayLike<number>, width: number, height: number): [number, number, number, number] | null {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!data[y * width + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 - x0 + 1, y1 - y0 + 1];
}

/** The binary mask of an instance-id map: pixels whose id is in `ids`, or every non-zero id when `ids` is absent. */
export function binaryOf(instances: ArrayLike<number>, ids?: readonly number[]): Uint8Array {
  const out = new Uint8Array(instances.length);
  const keep = ids && ids.length ? new Set(ids) : null;
  for (let i = 0; i < instances.length; i++) {
    const v = instances[i]!;
    out[i] = v !== 0 && (!keep || keep.has(v)) ? 1 : 0;
  }
  return out;
}
