/** Generated item sets shared by the world tests (module cache: each task is generated once per file). */
import { generateItem, type GeneratedItem } from '../../../src-shared/world/dataset.ts';
import { taskByName } from '../../../src-shared/world/tasks/index.ts';

export const SEED = 11;
const cache = new Map<string, GeneratedItem[]>();

export function itemsOf(task: string, n = 60, seed = SEED): GeneratedItem[] {
  const key = `${task}/${n}/${seed}`;
  let items = cache.get(key);
  if (!items) {
    const def = taskByName(task);
    items = Array.from({ length: n }, (_, i) => generateItem(def, seed, 'test', i));
    cache.set(key, items);
  }
  return items;
}

export function at(mask: Uint8Array, width: number, p: readonly [number, number] | readonly number[]): number {
  return mask[p[1]! * width + p[0]!]!;
}

export interface ObjMeta {
  id: number;
  shape: string;
  colour: string;
  style: string;
  z: number;
  centre: [number, number];
  radius: number;
  visibleArea: number;
  box: [number, number, number, number] | null;
}

export function objectsOf(g: GeneratedItem, key = 'objects'): ObjMeta[] {
  return g.item.meta[key] as ObjMeta[];
}

export function pointsOf(g: GeneratedItem): Map<string, { image: number; at: [number, number] }> {
  const out = new Map<string, { image: number; at: [number, number] }>();
  for (const l of g.item.labels) if (l.kind === 'point') out.set(l.name ?? '', { image: l.image, at: l.at });
  return out;
}
