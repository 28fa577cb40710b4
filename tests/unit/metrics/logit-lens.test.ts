/** Object-part LogitLens ranks and their aggregation, on cases computed by hand. */
import { describe, expect, it } from 'vitest';
import { bootstrapDistribution, percentileInterval } from '../../../src-shared/metrics/bootstrap.ts';
import { bestRank, bootstrapMedianCI, chanceHitRate, median, summarizeRanks, tokenRank } from '../../../src-shared/metrics/logit-lens.ts';
import { parsePartName, partSelected } from '../../../src-main/experiments/compensation/part-masks.ts';

describe('tokenRank', () => {
  it('counts the logits above the target, 1 = top', () => {
    const z = [0.5, 2, -1, 3, 1];
    // Sorted descending: 3 (id 3), 2 (id 1), 1 (id 4), 0.5 (id 0), -1 (id 2).
    expect([0, 1, 2, 3, 4].map((t) => tokenRank(z, t))).toEqual([4, 2, 5, 1, 3]);
  });

  it('breaks ties towards the lower token id (a stable descending sort)', () => {
    const z = [1, 2, 2, 0, 2];
    // 2 (id 1), 2 (id 2), 2 (id 4), 1 (id 0), 0 (id 3).
    expect([0, 1, 2, 3, 4].map((t) => tokenRank(z, t))).toEqual([4, 1, 2, 5, 3]);
  });

  it('reads one row of a flat [rows, vocab] buffer', () => {
    const logits = Float32Array.from([9, 8, 7, /* row 1 */ 1, 3, 2]);
    expect(tokenRank(logits, 0, 3, 3)).toBe(3);
    expect(tokenRank(logits, 2, 3, 3)).toBe(2);
    expect(() => tokenRank(logits, 3, 3, 0)).toThrow(/outside the vocabulary/);
  });
});

describe('aggregation', () => {
  it('best rank over a part’s tokens is the minimum', () => {
    expect(bestRank([7, 3, 12])).toBe(3);
    expect(() => bestRank([])).toThrow(/at least one token/);
  });

  it('median: the middle rank, or the mean of the two middle ranks', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 10])).toBe(3.5);
    expect(median([])).toBeNaN();
  });

  it('summary: n, median, mean, top-k hits and the Wilson interval', () => {
    const s = summarizeRanks([1, 2, 6, 40], 5);
    expect(s).toMatchObject({ n: 4, medianRank: 4, meanRank: 12.25, hits: 2, hitRate: 0.5 });
    // Wilson 95 % for 2 / 4: centre (0.5 + z²/8) / (1 + z²/4) = 0.5, half-width z·sqrt(1/16 + z²/64) / (1 + z²/4) = 0.3500.
    expect(s.hitLow).toBeCloseTo(0.1500, 4);
    expect(s.hitHigh).toBeCloseTo(0.8500, 4);
  });

  it('median interval: the percentile bootstrap of a sorted-resample median, draw for draw', () => {
    const ranks = [1, 2, 2, 3, 7, 9, 15, 40, 41, 90, 3];
    const o = { resamples: 500, seed: 7 };
    // The same resampling stream, the median taken the obvious way (sort each resample).
    const dist = bootstrapDistribution(ranks.length, (idx) => median(Array.from(idx, (i) => ranks[i]!)), o);
    const want = percentileInterval(median(ranks), dist, 0.95);
    expect(bootstrapMedianCI(ranks, o)).toEqual({ low: want.low, high: want.high });
    const even = ranks.slice(1);
    const distEven = bootstrapDistribution(even.length, (idx) => median(Array.from(idx, (i) => even[i]!)), o);
    const wantEven = percentileInterval(median(even), distEven, 0.95);
    expect(bootstrapMedianCI(even, o)).toEqual({ low: wantEven.low, high: wantEven.high });
    // No spread, no interval.
    expect(bootstrapMedianCI([4, 4, 4], o)).toEqual({ low: 4, high: 4 });
  });

  it('chance hit rate is k / vocab, capped at 1', () => {
    expect(chanceHitRate(5, 100)).toBe(0.05);
    expect(chanceHitRate(10, 4)).toBe(1);
  });
});

describe('part names', () => {
  it('reads <class>/<part>; the ranked text is the part, underscores as spaces', () => {
    expect(parsePartName('car/wheel')).toEqual({ name: 'car/wheel', text: 'wheel' });
    expect(parsePartName('person/left_hand')).toEqual({ name: 'person/left_hand', text: 'left hand' });
    expect(parsePartName('car')).toBeUndefined();
    expect(parsePartName('car/')).toBeUndefined();
    expect(parsePartName(undefined)).toBeUndefined();
  });

  it('PASCAL-Part abbreviations become the word ranked; instance suffixes go', () => {
    const text = (n: string) => parsePartName(n)!.text;
    expect(['car/fwheel', 'car/bwheel', 'car/window_1', 'person/lhand', 'cow/lfuleg', 'cat/rfpa', 'horse/lbho', 'car/fliplate', 'bus/leftside', 'aeroplane/engine_12', 'dog/head'].map(text)).toEqual([
      'wheel', 'wheel', 'window', 'hand', 'leg', 'paw', 'hoof', 'plate', 'side', 'engine', 'head',
    ]);
  });

  it('selects by full name or bare part name', () => {
    const p = parsePartName('car/wheel')!;
    expect(partSelected(p)).toBe(true);
    expect(partSelected(p, ['wheel'])).toBe(true);
    expect(partSelected(p, ['car/wheel'])).toBe(true);
    expect(partSelected(p, ['bus/wheel', 'door'])).toBe(false);
  });
});

describe('part masks', () => {
  it('reads 16-bit instance ids exactly (a PNG encoded here by hand, big-endian samples)', async () => {
    const { crc32, deflateSync } = await import('node:zlib');
    const { writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    // The reader part-masks.ts partTokens uses (engine/image-decode.ts decodeMaskPng behind the mask limits).
    const { readMask } = await import('../../../src-main/experiments/inside-the-llm/images.ts');
    const [w, h, ids] = [3, 2, [0, 300, 65535, 1, 2, 256]];
    const chunk = (type: string, body: Buffer) => {
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), body])));
      return Buffer.concat([head, Buffer.from(type, 'ascii'), body, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr.set([16, 0, 0, 0, 0], 8); // 16-bit greyscale
    const raw = Buffer.alloc(h * (1 + 2 * w));
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.writeUInt16BE(ids[y * w + x]!, y * (1 + 2 * w) + 1 + 2 * x);
    const file = join(tmpdir(), `loupe-mask16-${process.pid}.png`);
    writeFileSync(file, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]));
    const m = readMask(file);
    expect([m.width, m.height, ...m.ids]).toEqual([3, 2, ...ids]);
  });
});
