/** Paints an RGB uint8 tensor [h, w, 3] into a canvas at its native resolution. */
import type { HostTensor } from '../../../../src-shared/tensor/dtype.ts';

export function paintRgb(canvas: HTMLCanvasElement, t: HostTensor): void {
  const [h = 0, w = 0] = t.shape;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const img = ctx.createImageData(w, h);
  const src = t.data as Uint8Array;
  for (let i = 0, j = 0; i < w * h; i++, j += 3) {
    img.data[i * 4] = src[j]!;
    img.data[i * 4 + 1] = src[j + 1]!;
    img.data[i * 4 + 2] = src[j + 2]!;
    img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}
