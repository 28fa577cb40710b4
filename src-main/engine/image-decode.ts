/**
 * Every image and mask Loupe decodes goes through here: the file size and the header's
 * width × height are checked against the limits (limits.ts) *before* a decoder allocates pixels,
 * so a compression bomb is refused in microseconds instead of costing gigabytes.
 *
 * Grey+alpha PNGs (colour type 4) are decoded here with pngjs: transformers.js's sharp loader
 * cannot convert their two channels (it throws "unsupported number of channels"). They become RGB
 * as Pillow's `convert('RGB')` makes them (the HF processors call it): grey replicated, alpha
 * dropped, 16-bit samples reduced to their high byte as Pillow's PNG decoder does.
 */
import { readFileSync, statSync } from 'node:fs';
import { RawImage } from '@huggingface/transformers';
import { PNG } from 'pngjs';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { type ImageHeader, imageHeaderOf } from './image-header.ts';
import { enforceLimit, limitValue, overLimit } from './limits.ts';

/** Bytes a decoder allocates per pixel at least: RGBA, 8 bytes for 16-bit PNGs (pngjs keeps 16-bit samples). */
function decodedBytesPerPixel(h: ImageHeader): number {
  return h.format === 'png' && h.bitDepth === 16 ? 8 : 4;
}

/**
 * Refuses an image or mask whose header promises more pixels than `pixels` allows, or whose decoded
 * size is out of all proportion to its file (a compression bomb). Cheap: header fields only.
 */
export function checkDecodeCost(h: ImageHeader, fileBytes: number, what: string, pixels: 'imagePixels' | 'maskPixels'): void {
  enforceLimit(pixels, h.width * h.height, `${what} (${h.width}×${h.height})`);
  const decoded = h.width * h.height * decodedBytesPerPixel(h);
  if (decoded > limitValue('decodedRatioFloor')) {
    const ratio = Math.round(decoded / Math.max(1, fileBytes));
    if (ratio > limitValue('decodedRatio')) throw overLimit('decodedRatio', ratio, `${what} (${fileBytes} bytes that decode to ${decoded} bytes)`);
  }
}

/** The bytes of an image file, after its size, header and decode cost passed the limits. */
export function readCheckedImage(path: string, what = path, pixels: 'imagePixels' | 'maskPixels' = 'imagePixels'): { bytes: Buffer; header: ImageHeader } {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    throw new LoupeError('not-found', `cannot read ${what}: ${(e as Error).message}`);
  }
  enforceLimit('imageFileBytes', size, what);
  const bytes = readFileSync(path);
  const header = imageHeaderOf(bytes, what);
  checkDecodeCost(header, bytes.length, what, pixels);
  return { bytes, header };
}

/** A grey+alpha PNG as RGB (Pillow's LA → RGB: grey replicated, alpha dropped, 16-bit → high byte). */
function greyAlphaToRgb(bytes: Buffer, header: ImageHeader, what: string): RawImage {
  let png: PNG;
  try {
    png = PNG.sync.read(bytes, { skipRescale: true });
  } catch (e) {
    throw new LoupeError('bad-input', `cannot decode ${what}: ${(e as Error).message}`);
  }
  const n = png.width * png.height;
  const src = png.data as unknown as ArrayLike<number>;
  const shift = header.bitDepth === 16 ? 8 : 0;
  const rgb = new Uint8ClampedArray(n * 3);
  for (let i = 0; i < n; i++) {
    const g = src[i * 4]! >> shift;
    rgb[i * 3] = g;
    rgb[i * 3 + 1] = g;
    rgb[i * 3 + 2] = g;
  }
  return new RawImage(rgb, png.width, png.height, 3);
}

/** The RGB pixels of an image file, refused before decoding when over a limit; `what` names it in errors. */
export async function decodeImageRgb(path: string, what = `image ${path}`): Promise<RawImage> {
  const { bytes, header } = readCheckedImage(path, what);
  if (header.format === 'png' && header.colorType === 4) return greyAlphaToRgb(bytes, header, what);
  try {
    return (await RawImage.fromBlob(new Blob([new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)]))).rgb();
  } catch (e) {
    throw new LoupeError('bad-input', `cannot decode ${what}: ${(e as Error).message} (truncated or unsupported?)`);
  }
}

/** A PNG's first channel (16-bit samples kept) as instance ids, refused before decoding when over a limit. */
export function decodeMaskPng(bytes: Uint8Array, what: string): { width: number; height: number; values: Uint8Array | Int32Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = imageHeaderOf(buf, what);
  if (header.format !== 'png') throw new LoupeError('bad-input', `${what} is a ${header.format.toUpperCase()}, not a PNG`);
  checkDecodeCost(header, buf.length, what, 'maskPixels');
  let png: PNG;
  try {
    png = PNG.sync.read(buf, { skipRescale: true });
  } catch (e) {
    throw new LoupeError('bad-input', `${what} is not a readable PNG: ${(e as Error).message}`);
  }
  const n = png.width * png.height;
  const data = png.data as unknown as ArrayLike<number>;
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, data[i * 4]!);
  const values = max > 255 ? new Int32Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) values[i] = data[i * 4]!;
  return { width: png.width, height: png.height, values };
}
