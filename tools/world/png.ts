/**
 * PNG encoding for world rasters with pngjs: RGB images as 8-bit truecolour, masks as 8-bit
 * greyscale whose value is the instance id. Both are lossless, so decoded files are byte-equal
 * to the generator's arrays.
 */
import { PNG } from 'pngjs';

function encode(width: number, height: number, data: Uint8Array, channels: 1 | 3): Buffer {
  const png = new PNG({ width, height, colorType: channels === 3 ? 2 : 0, inputColorType: channels === 3 ? 2 : 0, inputHasAlpha: false, bitDepth: 8 });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return PNG.sync.write(png, { colorType: channels === 3 ? 2 : 0, inputColorType: channels === 3 ? 2 : 0, inputHasAlpha: false, bitDepth: 8 });
}

export function encodeRgbPng(width: number, height: number, rgb: Uint8Array): Buffer {
  return encode(width, height, rgb, 3);
}

export function encodeMaskPng(width: number, height: number, mask: Uint8Array): Buffer {
  return encode(width, height, mask, 1);
}

/** Decoded pixels as RGB (3 channels) or grey (1 channel), for round-trip checks. */
export function decodePng(buf: Buffer, channels: 1 | 3): { width: number; height: number; data: Uint8Array } {
  const png = PNG.sync.read(buf);
  const out = new Uint8Array(png.width * png.height * channels);
  for (let i = 0; i < png.width * png.height; i++) {
    for (let c = 0; c < channels; c++) out[i * channels + c] = png.data[i * 4 + c]!;
  }
  return { width: png.width, height: png.height, data: out };
}
