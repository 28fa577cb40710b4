/**
 * Mask PNGs as the PNG spec stores them, read back without pngjs: the IDAT stream inflated by
 * zlib, rows unfiltered per the PNG spec, samples big-endian. Catches byte-swapped 16-bit ids (300 → 11265).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { DatasetWriter } from '../../../src-main/datasets/importers/dataset-writer.ts';

function samples(png: Buffer): { bitDepth: number; rows: number[][] } {
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const bitDepth = png[24]!;
  const idat: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const len = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(png.subarray(at + 8, at + 8 + len));
    at += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bpp = bitDepth / 8; // greyscale: bytes per pixel = bytes per sample
  const stride = width * bpp;
  const out = Buffer.alloc(height * stride);
  // Undo the PNG row filters (spec §9: None, Sub, Up, Average, Paeth).
  for (let y = 0; y < height; y++) {
    const type = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= bpp ? out[y * stride + i - bpp]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, Math.floor((a + b) / 2), paeth][type]!;
      out[y * stride + i] = (x + predictor) & 0xff;
    }
  }
  const rows: number[][] = [];
  for (let y = 0; y < height; y++) rows.push(Array.from({ length: width }, (_, x) => (bpp === 2 ? out.readUInt16BE(y * stride + x * 2) : out[y * stride + x]!)));
  return { bitDepth, rows };
}

describe('DatasetWriter.writeMask', () => {
  const writer = () => new DatasetWriter(mkdtempSync(join(tmpdir(), 'loupe-mask-')), 'test');

  it('writes ids above 255 as 16-bit samples, big-endian as PNG stores them', () => {
    const w = writer();
    const rel = w.writeMask(Uint16Array.from([0, 1, 300, 65535]), 2, 2, 'm');
    const got = samples(readFileSync(join(w.staging, rel)));
    expect(got.bitDepth).toBe(16);
    expect(got.rows).toEqual([[0, 1], [300, 65535]]);
  });

  it('writes 8-bit masks when every id fits', () => {
    const w = writer();
    const rel = w.writeMask(Uint8Array.from([0, 7, 255, 3, 0, 1]), 3, 2, 'm');
    const got = samples(readFileSync(join(w.staging, rel)));
    expect(got.bitDepth).toBe(8);
    expect(got.rows).toEqual([[0, 7, 255], [3, 0, 1]]);
  });
});
