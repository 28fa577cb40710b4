import { describe, expect, it } from 'vitest';
import { generateItem, toDatasetItem } from '../../../src-shared/world/dataset.ts';
import { TASKS } from '../../../src-shared/world/tasks/index.ts';
import { DatasetItem } from '../../../src-shared/dataset/format.ts';

const bytes = (g: ReturnType<typeof generateItem>): Buffer =>
  Buffer.concat(g.item.images.flatMap((r) => [Buffer.from(r.rgb), Buffer.from(r.mask)]));

describe('world determinism', () => {
  for (const task of TASKS) {
    it(`${task.name}: same seed → identical bytes and ground truth; other seeds differ`, () => {
      for (const i of [0, 5]) {
        const a = generateItem(task, 42, 'test', i);
        const b = generateItem(task, 42, 'test', i);
        expect(bytes(a).equals(bytes(b))).toBe(true);
        expect(JSON.stringify(toDatasetItem(task, a))).toBe(JSON.stringify(toDatasetItem(task, b)));
        const c = generateItem(task, 43, 'test', i);
        expect(bytes(a).equals(bytes(c))).toBe(false);
        const d = generateItem(task, 42, 'train', i);
        expect(bytes(a).equals(bytes(d))).toBe(false);
      }
    });
  }

  it('items validate against the dataset schema and have the declared image count', () => {
    for (const task of TASKS) {
      const g = generateItem(task, 42, 'test', 1);
      const item = DatasetItem.parse(toDatasetItem(task, g));
      expect(item.images).toHaveLength(task.imagesPerItem);
      expect(task.choices).toContain(item.answer);
      for (const r of g.item.images) {
        expect(r.rgb).toHaveLength(64 * 64 * 3);
        expect(r.mask).toHaveLength(64 * 64);
      }
      // One mask label per image; named ones (object parts `<object>/<part>`) are extra views of the same files.
      expect(item.labels.filter((l) => l.kind === 'mask' && l.name === undefined)).toHaveLength(task.imagesPerItem);
    }
  });
});
