/**
 * From task generators to the dataset format: seeds each item, balances its answer, names its
 * files and adds one mask label per image. Pure — the Node build script only encodes and writes.
 */
import { DATASET_FORMAT, DATASET_FORMAT_VERSION, type DatasetItem, type DatasetManifest, type Label } from '../dataset/format.ts';
import { balancedIndex } from './balance.ts';
import { createRng } from './rng.ts';
import type { TaskDef, TaskItem } from './tasks/types.ts';

export type Split = 'train' | 'test';

export const GENERATOR = 'loupe-world';
export const GENERATOR_VERSION = 1;

export interface GeneratedItem {
  id: string;
  task: string;
  split: Split;
  index: number;
  answerIndex: number;
  item: TaskItem;
}

export function itemId(task: string, split: Split, index: number): string {
  return `${task}-${split}-${String(index).padStart(6, '0')}`;
}

/** Item `index` of a split: a pure function of (seed, task, split, index). */
export function generateItem(task: TaskDef, seed: number, split: Split, index: number): GeneratedItem {
  const answerIndex = balancedIndex(seed, task.name, split, index, task.choices.length);
  const answer = task.choices[answerIndex]!;
  const rng = createRng(GENERATOR, GENERATOR_VERSION, seed, task.name, split, index);
  const item = task.generate({ rng, answer });
  if (item.answer !== answer) throw new Error(`${task.name} produced answer ${item.answer}, wanted ${answer}`);
  return { id: itemId(task.name, split, index), task: task.name, split, index, answerIndex, item };
}

export function imageFile(id: string, k: number): string {
  return `images/${id}_${k}.png`;
}

export function maskFile(id: string, k: number): string {
  return `masks/${id}_${k}.png`;
}

export function toDatasetItem(task: TaskDef, g: GeneratedItem): DatasetItem {
  const masks: Label[] = g.item.images.map((_, k) => {
    const ids = g.item.maskIds?.[k];
    return ids === undefined ? { kind: 'mask', image: k, file: maskFile(g.id, k) } : { kind: 'mask', image: k, file: maskFile(g.id, k), ids };
  });
  return {
    id: g.id,
    images: g.item.images.map((_, k) => imageFile(g.id, k)),
    prompt: g.item.prompt,
    choices: [...task.choices],
    answer: g.item.answer,
    split: g.split,
    labels: [...g.item.labels, ...masks, ...(g.item.partMasks ?? []).map((m): Label => ({ kind: 'mask', image: m.image, file: maskFile(g.id, m.image), ids: m.ids, name: m.name }))],
    meta: { ...g.item.meta, answerIndex: g.answerIndex },
  };
}

export function buildManifest(task: TaskDef, items: DatasetItem[], source: Record<string, unknown>): DatasetManifest {
  return {
    format: DATASET_FORMAT,
    version: DATASET_FORMAT_VERSION,
    name: `world/${task.name}`,
    description: `${task.description} Chance ${(100 / task.choices.length).toFixed(1)} % (uniform over ${task.choices.length} choices).`,
    task: task.name,
    source: { generator: GENERATOR, generatorVersion: GENERATOR_VERSION, chance: 1 / task.choices.length, ...source },
    items,
  };
}
