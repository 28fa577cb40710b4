/**
 * The committed probe sets in resources/datasets must parse, reference existing files, and be
 * exactly what the generator produces today (so a generator change forces a regeneration).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetManifest } from '../../../src-shared/dataset/format.ts';
import { generateItem } from '../../../src-shared/world/dataset.ts';
import { TASKS } from '../../../src-shared/world/tasks/index.ts';
import { VOCABULARY } from '../../../src-shared/world/vocabulary.ts';
import { decodePng, encodeMaskPng, encodeRgbPng } from '../../../tools/world/png.ts';

const ROOT = join(import.meta.dirname, '../../../resources/datasets');

describe('shipped world probe sets', () => {
  it('PNG encoding round-trips images and masks exactly', () => {
    const g = generateItem(TASKS[0]!, 5, 'test', 0);
    const r = g.item.images[0]!;
    expect(Buffer.from(decodePng(encodeRgbPng(64, 64, r.rgb), 3).data).equals(Buffer.from(r.rgb))).toBe(true);
    expect(Buffer.from(decodePng(encodeMaskPng(64, 64, r.mask), 1).data).equals(Buffer.from(r.mask))).toBe(true);
  });

  it('vocabulary.json matches the exported vocabulary', () => {
    const v = JSON.parse(readFileSync(join(ROOT, 'vocabulary.json'), 'utf8')) as { words: string[] };
    expect(v.words).toEqual(VOCABULARY);
  });

  for (const task of TASKS) {
    it(`${task.name}: manifest parses, files exist, items match the generator`, () => {
      const manifest = DatasetManifest.parse(JSON.parse(readFileSync(join(ROOT, task.name, 'dataset.json'), 'utf8')));
      expect(manifest.task).toBe(task.name);
      expect(manifest.items.length).toBeGreaterThanOrEqual(60);
      const seed = manifest.source!.seed as number;
      for (const item of manifest.items) {
        for (const f of item.images) expect(existsSync(join(ROOT, task.name, f))).toBe(true);
        for (const l of item.labels) if (l.kind === 'mask') expect(existsSync(join(ROOT, task.name, l.file))).toBe(true);
      }
      for (const index of [0, manifest.items.length - 1]) {
        const g = generateItem(task, seed, 'test', index);
        const item = manifest.items[index]!;
        expect(item.id).toBe(g.id);
        expect(item.answer).toBe(g.item.answer);
        g.item.images.forEach((r, k) => {
          const png = decodePng(readFileSync(join(ROOT, task.name, item.images[k]!)), 3);
          expect(Buffer.from(png.data).equals(Buffer.from(r.rgb))).toBe(true);
        });
      }
    });
  }
});
