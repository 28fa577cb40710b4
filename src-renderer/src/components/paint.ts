/** Puts overlay pixels (overlay.ts) into a canvas. */

/** Sizes the canvas to width × height (its native pixels) and puts the RGBA pixels, or clears it. */
export function paintRgba(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray<ArrayBuffer> | null, width: number, height: number): void {
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  if (!rgba || width * height === 0) ctx.clearRect(0, 0, canvas.width, canvas.height);
  else ctx.putImageData(new ImageData(rgba, width, height), 0, 0);
}
