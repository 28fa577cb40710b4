/** Image sizes (from file headers, no decode) and instance masks for the K/V probes. */
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { Size } from '../../../src-shared/metrics/correspondence.ts';

/** Width and height of a PNG, JPEG or WebP from its header. */
export function imageSize(path: string): Size {
  const b = readFileSync(path);
  // PNG: IHDR is the first chunk.
  if (b.length >= 24 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(12) === 0x49484452) return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  // JPEG: walk the segments to the first start-of-frame (SOF0–SOF15 except DHT/JPG/DAC).
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) {
        i++;
        continue;
      }
      const marker = b[i + 1]!;
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return { width: b.readUInt16BE(i + 7), height: b.readUInt16BE(i + 5) };
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) {
        i += marker === 0xff ? 1 : 2;
        continue;
      }
      i += 2 + b.readUInt16BE(i + 2);
    }
  }
  // WebP: RIFF....WEBP then VP8 / VP8L / VP8X.
  if (b.length >= 30 && b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WEBP') {
    const chunk = b.toString('ascii', 12, 16);
    if (chunk === 'VP8 ') return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = b.readUInt32LE(21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  }
  throw new LoupeError('bad-input', `cannot read the size of ${path} (PNG, JPEG or WebP expected)`);
}

export interface InstanceMask extends Size {
  /** Instance id per pixel, row-major (0 = background). */
  ids: Uint8Array;
}

/** An instance-id mask PNG (ids in the first channel, as the world and the Label view write them). */
export function readMask(path: string): InstanceMask {
  const png = PNG.sync.read(readFileSync(path));
  const ids = new Uint8Array(png.width * png.height);
  for (let i = 0; i < ids.length; i++) ids[i] = png.data[i * 4]!;
  return { width: png.width, height: png.height, ids };
}

/** The instance id under a pixel coordinate (0 outside the mask). */
export function idAt(mask: InstanceMask, at: readonly [number, number]): number {
  const x = Math.floor(at[0]);
  const y = Math.floor(at[1]);
  if (x < 0 || y < 0 || x >= mask.width || y >= mask.height) return 0;
  return mask.ids[y * mask.width + x]!;
}
