/**
 * The on-disk dataset format: one `dataset.json` manifest beside its images.
 *
 * Every dataset — a user's labelled folder, an imported COCO file after conversion,
 * or a probe set generated from the synthetic world — is written in this format, so
 * the Datasets view, the store and the experiment pipelines read one shape.
 * Coordinates are in image pixels of the referenced file (x right, y down).
 */
import { z } from 'zod';
import { MAX_ID_CHARS, MAX_NAME_CHARS, MAX_PATH_CHARS, MAX_POLYGONS, MAX_POLYGON_POINTS, MAX_TEXT_CHARS } from './limits.ts';

export const DATASET_FORMAT = 'loupe-dataset';
export const DATASET_FORMAT_VERSION = 1;

const Point = z.tuple([z.number(), z.number()]);
const Name = z.string().max(MAX_NAME_CHARS);
const Text = z.string().max(MAX_TEXT_CHARS);

/** A label attached to an item. `image` indexes into the item's `images`. */
export const Label = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('point'), image: z.number().int().nonnegative(), at: Point, name: Name.optional() }),
  z.object({
    kind: z.literal('pointPair'),
    a: z.object({ image: z.number().int().nonnegative(), at: Point }),
    b: z.object({ image: z.number().int().nonnegative(), at: Point }),
    name: Name.optional(),
  }),
  z.object({
    kind: z.literal('box'),
    image: z.number().int().nonnegative(),
    /** [x0, y0, x1, y1], x1/y1 exclusive. */
    box: z.tuple([z.number(), z.number(), z.number(), z.number()]),
    text: Text.optional(),
  }),
  z.object({
    kind: z.literal('mask'),
    image: z.number().int().nonnegative(),
    /** Path (relative to the manifest) of a PNG whose pixel values are instance ids (0 = background). */
    file: z.string().min(1).max(MAX_PATH_CHARS),
    /** Instance ids this label refers to; all non-zero ids when absent. */
    ids: z.array(z.number().int().positive()).optional(),
    /**
     * Ids of pixels that are not scored either way (the benchmark's "ignore": ImageNet-S 1000):
     * metrics leave them out of intersection and union, as the benchmark's evaluator does.
     */
    ignoreIds: z.array(z.number().int().positive()).max(16).optional(),
    /** The object this mask outlines (a category name in COCO exports). */
    name: Name.optional(),
    /**
     * Closed polygons (image pixels) the mask was filled from, when it was made only of polygons;
     * kept so COCO exports write polygons as polygons. Absent once a brush or eraser touched it.
     */
    polygons: z.array(z.array(Point).min(3).max(MAX_POLYGON_POINTS)).max(MAX_POLYGONS).optional(),
  }),
  z.object({ kind: z.literal('class'), value: Name }),
]);
export type Label = z.infer<typeof Label>;

export const DatasetItem = z.object({
  /** Stable within the dataset; used to resume runs and to compare runs item by item. */
  id: z.string().min(1).max(MAX_ID_CHARS),
  /** Image files relative to the manifest (one for most tasks, two for correspondence, N frames for video). */
  images: z.array(z.string().min(1).max(MAX_PATH_CHARS)),
  /** Question put to the VLM (without chat template). */
  prompt: Text.optional(),
  /** Multiple-choice answers; `answer` is then one of them. */
  choices: z.array(z.string()).optional(),
  answer: z.string().optional(),
  split: z.enum(['train', 'test']).optional(),
  labels: z.array(Label).default([]),
  /** Task-specific ground truth that does not fit a label (depth order, counts, scene ids …). */
  meta: z.record(z.string(), z.unknown()).optional(),
});
export type DatasetItem = z.infer<typeof DatasetItem>;

export const DatasetManifest = z.object({
  format: z.literal(DATASET_FORMAT),
  version: z.literal(DATASET_FORMAT_VERSION),
  name: z.string().min(1),
  description: z.string().default(''),
  /** Task identifier, e.g. `colour-at-point`, `relative-depth`, `correspondence`. */
  task: z.string().min(1),
  /** How the set was made (generator and seed, or "labelled by hand"). */
  source: z.record(z.string(), z.unknown()).optional(),
  items: z.array(DatasetItem),
});
export type DatasetManifest = z.infer<typeof DatasetManifest>;
