/**
 * What a probe task is: a fixed choice list (so chance is 1/K and answers can be balanced) and a
 * generator that, given its own RNG and the answer it must produce, builds one item's images and
 * ground truth. File names are not a task's concern — `dataset.ts` assigns them.
 */
import type { Label } from '../../dataset/format.ts';
import type { Raster } from '../raster.ts';
import type { Rng } from '../rng.ts';

export interface TaskContext {
  rng: Rng;
  /** The answer this item must have (chosen by the balancer). */
  answer: string;
}

/** One generated item before it is written to disk. */
export interface TaskItem {
  prompt: string;
  answer: string;
  /** Images as shown to the model (markers drawn); masks describe the objects only. */
  images: Raster[];
  /** Labels other than masks; `image` indexes `images`. */
  labels: Label[];
  /** Per image: instance ids the mask label refers to (all ids when undefined). */
  maskIds?: (number[] | undefined)[];
  /** Named mask labels over the same mask files (e.g. object parts `<object>/<part>`), beside the per-image one. */
  partMasks?: { image: number; ids: number[]; name: string }[];
  meta: Record<string, unknown>;
}

export interface TaskDef {
  name: string;
  description: string;
  choices: readonly string[];
  imagesPerItem: number;
  generate(ctx: TaskContext): TaskItem;
}
