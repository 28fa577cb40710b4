/**
 * Width and height (and, for PNG, colour type and bit depth) of a PNG, JPEG or WebP file from its
 * header, without decoding: limits are checked on these before any decoder allocates pixels.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LoupeError } from '../../src-shared/contract/errors.ts';

export interface ImageHeader {
  format: 'png' | 'jpeg' | 'webp';
  width: number;
  height: number;
  /** PNG only: IHDR colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA) and bit depth. */
  colorType?: number;
  bitDepth?: number;
}

/** The header of `b` (the file's first bytes, or all of them), or null when it is not (yet) readable. */
export function parseImageHeader(b: Buffer): ImageHeader | null {
  // PNG: the signature, then IHDR as the first chunk.
  if (b.length >= 26 && b.readUInt32BE(0) === 0x89504e47 && b.readUInt32BE(4) === 0x0d0a1a0a && b.readUInt32BE(12) === 0x49484452) {
    return { format: 'png', width: b.readUInt32BE(16), height: b.readUInt32BE(20), bitDepth: b[24]!, colorType: b[25]! };
  }
  // JPEG: walk the segments to the first start-of-frame (SOF0–SOF15 except DHT, JPG, DAC).
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) {
        i++;
        continue;
      }
      const marker = b[i + 1]!;
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return { format: 'jpeg', width: b.readUInt16BE(i + 7), height: b.readUInt16BE(i + 5) };
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) {
        i += marker === 0xff ? 1 : 2;
        continue;
      }
      i += 2 + b.readUInt16BE(i + 2);
    }
    return null;
  }
  // WebP: RIFF....WEBP then VP8 / VP8L / VP8X.
  if (b.length >= 30 && b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WEBP') {
    const chunk = b.toString('ascii', 12, 16);
    if (chunk === 'VP8 ') return { format: 'webp', width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const bits = b.readUInt32LE(21);
      return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    if (chunk === 'VP8X') return { format: 'webp', width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  }
  return null;
}

/** The header of `bytes`, or a bad-input error naming `what`. */
export function imageHeaderOf(bytes: Buffer, what: string): ImageHeader {
  const h = parseImageHeader(bytes);
  if (!h) throw new LoupeError('bad-input', `cannot read the size of ${what} (PNG, JPEG or WebP expected, or the header is truncated)`);
  if (h.width <= 0 || h.height <= 0) throw new LoupeError('bad-input', `${what} says it is ${h.width}×${h.height} pixels`);
  return h;
}

/**
 * The header of the file at `path`, reading only its start (64 KiB; more only for a JPEG whose
 * frame header comes after large metadata segments), and the file's size.
 */
export function readImageHeader(path: string, what = path): { header: ImageHeader; fileBytes: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new LoupeError('not-found', `cannot open ${what}: ${(e as Error).message}`);
  }
  try {
    const fileBytes = fstatSync(fd).size;
    for (let want = 64 * 1024; ; want *= 4) {
      const n = Math.min(want, fileBytes);
      const buf = Buffer.alloc(n);
      readSync(fd, buf, 0, n, 0);
      const h = parseImageHeader(buf);
      if (h || n >= fileBytes) return { header: imageHeaderOf(buf, what), fileBytes };
    }
  } finally {
    closeSync(fd);
  }
}
