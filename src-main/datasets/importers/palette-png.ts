/**
 * Instance ids from an annotation PNG whose pixels are palette indices (DAVIS, PASCAL VOC and
 * SPair segmentation masks are indexed PNGs: the id is the index, the palette only colours it).
 *
 * pngjs 7 always expands an indexed PNG to RGBA through its palette (format-normaliser.js
 * `dePalette`, no option turns it off), and the colours of the DAVIS/VOC palette collide per
 * channel (id 1 = (128,0,0) and id 3 = (128,128,0) share red; id 1 and id 2 share blue), so no
 * channel of the expanded image is the id. Inverting the palette is no answer either: a palette
 * may repeat a colour. Instead the PLTE chunk is rewritten to the identity palette (entry i =
 * (i,i,i), same entry count, CRC recomputed) before pngjs decodes it: pngjs still does all the
 * real work (inflate, the five row filters, Adam7, 1/2/4/8-bit unpacking, its index-range check)
 * and the red channel it returns is then exactly the index.
 */
import { crc32 } from 'node:zlib';
import { PNG } from 'pngjs';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export interface IdMap {
  width: number;
  height: number;
  /** One id per pixel, row-major. */
  values: Uint8Array | Uint16Array;
  /** PNG colour type of the file: 3 = indexed, 0 = greyscale (read as ids directly). */
  colorType: 0 | 3;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The file's bytes with its PLTE entries replaced by (i, i, i); throws on a malformed chunk list. */
function withIdentityPalette(bytes: Buffer, what: string): Buffer {
  const out = Buffer.from(bytes);
  let at = 8;
  while (at + 12 <= out.length) {
    const length = out.readUInt32BE(at);
    const type = out.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > out.length) throw new LoupeError('bad-input', `${what}: PNG chunk ${type} runs past the end of the file`);
    if (type === 'PLTE') {
      if (length % 3 !== 0 || length === 0 || length > 768) throw new LoupeError('bad-input', `${what}: PLTE chunk of ${length} bytes (a multiple of 3, at most 768, expected)`);
      for (let i = 0; i < length / 3; i++) out.fill(i, at + 8 + i * 3, at + 8 + i * 3 + 3);
      out.writeUInt32BE(crc32(out.subarray(at + 4, at + 8 + length)), at + 8 + length);
      return out;
    }
    if (type === 'IEND') break;
    at += 12 + length;
  }
  throw new LoupeError('bad-input', `${what}: an indexed PNG without a PLTE chunk`);
}

/**
 * Decodes an annotation PNG to ids: indexed → the palette indices; 8/16-bit greyscale → the grey
 * values (a mask re-saved without its palette). Colour PNGs are refused: a colour is not an id.
 */
export function readIdPng(bytes: Uint8Array, what: string): IdMap {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 33 || !buf.subarray(0, 8).equals(SIGNATURE) || buf.toString('latin1', 12, 16) !== 'IHDR') throw new LoupeError('bad-input', `${what} is not a PNG`);
  const colorType = buf[25]!;
  if (colorType !== 3 && colorType !== 0) {
    const kind = { 2: 'RGB', 4: 'grey + alpha', 6: 'RGBA' }[colorType] ?? `colour type ${colorType}`;
    throw new LoupeError('bad-input', `${what} is an ${kind} PNG; an annotation must be an indexed (palette) or greyscale PNG whose values are the object ids`);
  }
  let png: PNG;
  try {
    png = PNG.sync.read(colorType === 3 ? withIdentityPalette(buf, what) : buf, { skipRescale: true });
  } catch (e) {
    if (e instanceof LoupeError) throw e;
    throw new LoupeError('bad-input', `${what} is not a readable PNG: ${(e as Error).message}`);
  }
  const n = png.width * png.height;
  // pngjs returns RGBA; with skipRescale a 16-bit greyscale file keeps its 16-bit samples.
  const data = png.data as unknown as ArrayLike<number>;
  let max = 0;
  for (let i = 0; i < n; i++) if (data[i * 4]! > max) max = data[i * 4]!;
  const values = max > 255 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) values[i] = data[i * 4]!;
  return { width: png.width, height: png.height, values, colorType: colorType as 0 | 3 };
}
