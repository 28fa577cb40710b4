/**
 * object-parts: every part is its own instance with a `<object>/<part>` mask label, parts touch
 * top to bottom in the listed order, the answer is the top part's shape, and every word the
 * experiment ranks (the part names) is in the world vocabulary the micro-VLM's tokenizer knows.
 */
import { describe, expect, it } from 'vitest';
import { generateItem, toDatasetItem } from '../../../src-shared/world/dataset.ts';
import { PART_OBJECTS, objectParts } from '../../../src-shared/world/tasks/object-parts.ts';
import { VOCABULARY, unknownWords } from '../../../src-shared/world/vocabulary.ts';

describe('world object-parts task', () => {
  it('part names are vocabulary words, distinct within an object', () => {
    for (const o of PART_OBJECTS) {
      expect(new Set(o.parts).size).toBe(o.parts.length);
      for (const p of o.parts) expect(VOCABULARY).toContain(p);
    }
    expect(unknownWords('what shape is the object above ?')).toEqual([]);
  });

  it('each part has its own mask label over its own pixels, stacked in order, answer = top part', () => {
    for (let i = 0; i < 24; i++) {
      const g = generateItem(objectParts, 3, 'test', i);
      const item = toDatasetItem(objectParts, g);
      const meta = g.item.meta as { object: string; parts: string[] };
      const parts = item.labels.filter((l) => l.kind === 'mask' && l.name !== undefined);
      expect(parts.map((l) => (l.kind === 'mask' ? l.name : ''))).toEqual(meta.parts.map((p) => `${meta.object}/${p}`));
      expect(item.answer).toBe(meta.parts[0]);
      const mask = g.item.images[0]!.mask;
      // Rows each part occupies: non-empty, and part k lies above part k+1 (mean row increases).
      const meanRow = parts.map((l) => {
        const id = l.kind === 'mask' ? l.ids![0]! : -1;
        let n = 0;
        let sum = 0;
        for (let p = 0; p < mask.length; p++) {
          if (mask[p] !== id) continue;
          n++;
          sum += Math.floor(p / 64);
        }
        expect(n).toBeGreaterThan(20);
        return sum / n;
      });
      for (let k = 1; k < meanRow.length; k++) expect(meanRow[k]!).toBeGreaterThan(meanRow[k - 1]!);
      // Nothing but the parts is drawn.
      expect(new Set([...mask].filter((v) => v > 0)).size).toBe(parts.length);
    }
  });
});
