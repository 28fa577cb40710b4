/** Image sizes from file headers, as readouts and K/V probes read them: PNG, JPEG (the benchmarks' format) and WebP. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageSize } from '../../src-main/experiments/inside-the-llm/images.ts';
import { tempDir } from '../helpers/fixtures.ts';

describe('imageSize', () => {
  for (const format of ['png', 'jpeg', 'webp'] as const) {
    it(`${format}: width and height of a non-square image`, async () => {
      const bytes = await sharp({ create: { width: 37, height: 21, channels: 3, background: { r: 200, g: 10, b: 10 } } })[format]().toBuffer();
      const path = join(tempDir(), `x.${format}`);
      writeFileSync(path, bytes);
      expect(imageSize(path)).toEqual({ width: 37, height: 21 });
    });
  }

  it('names a file that is none of them', () => {
    const path = join(tempDir(), 'x.txt');
    writeFileSync(path, 'not an image at all, not even close');
    expect(() => imageSize(path)).toThrow(/PNG, JPEG or WebP expected/);
  });
});
