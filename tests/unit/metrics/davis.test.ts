import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type PixelImage, davisBoundary, davisBoundaryRadius, davisJ, davisSequence, davisStatistics, davisSummary, seg2bmap } from '../../../src-shared/metrics/davis.ts';

// Values computed by the official davis2017-evaluation code (tools/metric-references/davis_reference.py).
interface FrameCase { name: string; height: number; width: number; truth: number[]; predicted: number[]; void?: number[]; j: number; f: Record<string, number> }
interface SequenceCase { name: string; height: number; width: number; truth: number[][]; predicted: number[][] }
interface ObjectRef { sequence: string; id: number; jMean: number; jRecall: number; jDecay: number; fMean: number; fRecall: number; fDecay: number }
const ref = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/metric-references/davis.json'), 'utf8')) as {
  frames: FrameCase[];
  sequences: SequenceCase[];
  objects: ObjectRef[];
  summary: Record<string, number>;
};

function binary(rle: number[], width: number, height: number): PixelImage {
  const data = new Uint8Array(width * height);
  let at = 0;
  rle.forEach((run, k) => {
    if (k % 2 === 1) data.fill(1, at, at + run);
    at += run;
  });
  expect(at).toBe(width * height);
  return { width, height, data };
}

function ids(rle: number[], width: number, height: number): PixelImage {
  const data = new Uint8Array(width * height);
  let at = 0;
  for (let k = 0; k < rle.length; k += 2) {
    data.fill(rle[k]!, at, at + rle[k + 1]!);
    at += rle[k + 1]!;
  }
  expect(at).toBe(width * height);
  return { width, height, data };
}

const img = (rows: string[]): PixelImage => ({ width: rows[0]!.length, height: rows.length, data: rows.join('').split('').map(Number) });

describe('DAVIS J and F (hand-computed)', () => {
  it('J is the IoU, 1 when both masks are empty, void pixels ignored', () => {
    expect(davisJ(img(['110', '000']), img(['011', '000']))).toBeCloseTo(1 / 3, 15);
    expect(davisJ(img(['000']), img(['000']))).toBe(1);
    expect(davisJ(img(['110']), img(['011']), img(['001']))).toBe(0.5);
  });

  it('seg2bmap marks the pixel before each change, never the image border', () => {
    // A 2×2 square in a 4×4 image: boundary pixels are those whose E, S or SE neighbour differs.
    const b = seg2bmap(img(['0000', '0110', '0110', '0000']));
    expect(Array.from(b).join('')).toBe(['1110', '1010', '1110', '0000'].join(''));
    // All foreground: no boundary at all (the image edge is not a boundary).
    expect(Array.from(seg2bmap(img(['11', '11']))).join('')).toBe('0000');
  });

  it('radius is ceil(0.008 · diagonal): 8 pixels at 480p', () => {
    expect(davisBoundaryRadius(854, 480)).toBe(8);
    expect(davisBoundaryRadius(40, 30)).toBe(1);
    expect(davisBoundaryRadius(40, 30, 3)).toBe(3);
    expect(() => davisBoundaryRadius(40, 30, 1.5)).toThrow(/integer/);
  });

  it('F of identical masks is 1; of an empty prediction is 0', () => {
    const m = img(['0000', '0110', '0110', '0000']);
    expect(davisBoundary(m, m).f).toBe(1);
    expect(davisBoundary(m, img(['0000', '0000', '0000', '0000'])).f).toBe(0);
  });

  it('statistics: mean, recall (> 0.5) and decay over four overlapping bins', () => {
    // 9 frames: bin edges round(linspace(1, 9, 5)) − 1 = [0, 2, 4, 6, 8]; first bin frames 0..2, last 6..8.
    const v = [1, 1, 1, 0.6, 0.5, 0.4, 0.2, 0.2, 0.2];
    const s = davisStatistics(v);
    expect(s.mean).toBeCloseTo(5.1 / 9, 15);
    expect(s.recall).toBeCloseTo(4 / 9, 15);
    expect(s.decay).toBeCloseTo(1 - 0.2, 15);
  });
});

describe('DAVIS against the official davis2017-evaluation output', () => {
  it.each(ref.frames.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const gt = binary(c.truth, c.width, c.height);
    const pr = binary(c.predicted, c.width, c.height);
    const voidMask = c.void ? binary(c.void, c.width, c.height) : undefined;
    expect(Math.abs(davisJ(gt, pr, voidMask) - c.j)).toBeLessThanOrEqual(1e-12);
    for (const [th, f] of Object.entries(c.f)) expect(Math.abs(davisBoundary(gt, pr, { boundTh: Number(th), voidMask }).f - f)).toBeLessThanOrEqual(1e-9);
  });

  it('per-object mean/recall/decay and J&F-Mean of whole sequences', () => {
    const objects = ref.sequences.flatMap((s) =>
      davisSequence(
        s.truth.map((r) => ids(r, s.width, s.height)),
        s.predicted.map((r) => ids(r, s.width, s.height)),
      ).map((o) => ({ sequence: s.name, o })),
    );
    expect(objects.map((x) => `${x.sequence}_${x.o.id}`)).toEqual(ref.objects.map((o) => `${o.sequence}_${o.id}`));
    objects.forEach(({ o }, k) => {
      const r = ref.objects[k]!;
      const got = [o.jStats.mean, o.jStats.recall, o.jStats.decay, o.fStats.mean, o.fStats.recall, o.fStats.decay];
      const want = [r.jMean, r.jRecall, r.jDecay, r.fMean, r.fRecall, r.fDecay];
      got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThanOrEqual(1e-9));
    });
    const sum = davisSummary(objects.map((x) => x.o));
    for (const key of ['jMean', 'jRecall', 'jDecay', 'fMean', 'fRecall', 'fDecay', 'jAndFMean'] as const) expect(Math.abs(sum[key] - ref.summary[key]!)).toBeLessThanOrEqual(1e-9);
  });

  it('refuses a predicted id the first annotation does not have', () => {
    const t = img(['110', '000']);
    const p = img(['220', '000']);
    expect(() => davisSequence([t, t, t], [t, p, t])).toThrow(/predicted object id 2/);
  });
});
