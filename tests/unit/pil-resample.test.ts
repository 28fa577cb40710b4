/**
 * src-shared/image/pil-resample.ts against Pillow itself (tests/fixtures/pil-resize, written by
 * tools/hf-fixtures/build_pil_resize.py with Pillow's Image.resize, reducing_gap=None — what the
 * Hugging Face image processors call): every filter, down- and up-sampling, odd ratios.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PilFilter, pilResize } from '../../src-shared/image/pil-resample.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';

const DIR = join(REPO_ROOT, 'tests', 'fixtures', 'pil-resize');
interface Resized { width: number; height: number; filter: PilFilter; offset: number }
interface Case { width: number; height: number; channels: number; offset: number; resized: Resized[] }
const index = JSON.parse(readFileSync(join(DIR, 'cases.json'), 'utf8')) as { pillow: string; images: Case[] };
const blob = readFileSync(join(DIR, 'cases.bin'));

describe(`pilResize = Pillow ${index.pillow} Image.resize`, () => {
  for (const img of index.images) {
    const input = blob.subarray(img.offset, img.offset + img.width * img.height * img.channels);
    for (const r of img.resized) {
      it(`${img.width}×${img.height}×${img.channels} → ${r.width}×${r.height} ${r.filter}: every value equal`, () => {
        const expected = blob.subarray(r.offset, r.offset + r.width * r.height * img.channels);
        const actual = pilResize(input, img.width, img.height, img.channels, r.width, r.height, r.filter);
        let mismatches = 0;
        for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) mismatches++;
        expect(mismatches).toBe(0);
      });
    }
  }

  it('a point-sampling resize (what sharp affine does when downscaling) is caught', () => {
    const img = index.images[0]!;
    const r = img.resized.find((x) => x.filter === 'bicubic' && x.width < img.width)!;
    const input = blob.subarray(img.offset, img.offset + img.width * img.height * img.channels);
    const expected = blob.subarray(r.offset, r.offset + r.width * r.height * img.channels);
    const pointSampled = pilResize(input, img.width, img.height, img.channels, r.width, r.height, 'nearest');
    expect(pointSampled.some((v, i) => v !== expected[i])).toBe(true);
  });
});
