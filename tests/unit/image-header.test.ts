/** Image headers read without decoding, against sizes Pillow reports (tests/fixtures/input-limits/expected.json). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseImageHeader, readImageHeader } from '../../src-main/engine/image-header.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';

const FIX = join(REPO_ROOT, 'tests', 'fixtures', 'input-limits');
const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8')) as Record<string, { width: number; height: number }>;

describe('image headers', () => {
  it.each(Object.keys(expected))('%s: the size Pillow reports', (rel) => {
    const { header } = readImageHeader(join(FIX, rel));
    expect([header.width, header.height]).toEqual([expected[rel]!.width, expected[rel]!.height]);
  });

  it('reads PNG colour type and bit depth (grey+alpha is 4; the 16-bit fixture is 16)', () => {
    expect(readImageHeader(join(FIX, 'la8.png')).header).toMatchObject({ format: 'png', colorType: 4, bitDepth: 8 });
    expect(readImageHeader(join(FIX, 'la16.png')).header).toMatchObject({ format: 'png', colorType: 4, bitDepth: 16 });
    expect(readImageHeader(join(FIX, 'bomb-pixels.png')).header).toMatchObject({ width: 23170, height: 23170, colorType: 0, bitDepth: 1 });
  });

  it('returns null for what is not (yet) an image header', () => {
    expect(parseImageHeader(Buffer.from('hello'))).toBeNull();
    expect(parseImageHeader(Buffer.from([0xff, 0xd8, 0xff, 0xd9]))).toBeNull();
    expect(parseImageHeader(readFileSync(join(FIX, 'la8.png')).subarray(0, 20))).toBeNull();
  });
});
