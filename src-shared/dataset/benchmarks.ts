/**
 * The published benchmark formats Loupe imports (a user points at a downloaded folder; nothing
 * is fetched). Shared by the contract, the CLI and the Datasets view so they offer one list.
 */
import { z } from 'zod';

export const BENCHMARK_FORMATS = ['blink', 'cv-bench', 'spair-71k', 'davis-2017', 'refcoco', 'pascal-part', 'coco', 'imagenet-s'] as const;
export const BenchmarkFormat = z.enum(BENCHMARK_FORMATS);
export type BenchmarkFormat = z.infer<typeof BenchmarkFormat>;

/** What each format expects the user to point at, shown in the CLI help and the import form. */
export const BENCHMARK_SOURCES: Record<BenchmarkFormat, string> = {
  blink: 'a BLINK download (the Hugging Face dataset folder: <subtask>/<split>-*.parquet)',
  'cv-bench': 'a CV-Bench download (the Hugging Face dataset folder: test_2d.parquet / test_3d.parquet or data/*.parquet)',
  'spair-71k': 'the SPair-71k folder (PairAnnotation/, ImageAnnotation/, JPEGImages/, Layout/)',
  'davis-2017': 'the DAVIS-2017 folder (JPEGImages/480p/, Annotations/480p/ palette PNGs, ImageSets/2017/)',
  refcoco: 'a RefCOCO/RefCOCO+/RefCOCOg download from the Hugging Face hub (parquet or refs JSON) beside the COCO train2014 images',
  'pascal-part': 'the PASCAL-Part folder (Annotations_Part/*.mat) beside VOC2010 JPEGImages/',
  coco: 'a COCO annotation JSON (instances_* / person_keypoints_*) and its image folder',
  'imagenet-s': 'an ImageNet-S folder as the LUSSeg toolbox prepares it (ImageNetS50|300|919/ with validation/<wnid>/*.JPEG and validation-segmentation/<wnid>/*.png), or the folder holding those',
};

/** Options every importer understands; each importer documents what `subset` selects. */
export const BenchmarkImportOptions = z
  .object({
    /** A split as the benchmark names it (val, test, train …). */
    split: z.string().min(1).max(40).optional(),
    /** Subtasks / categories / variants to keep (BLINK subtask names, RefCOCO variant, SPair categories …). */
    subset: z.array(z.string().min(1).max(80)).max(200).optional(),
    /** Keep at most this many items (0 = all). */
    limit: z.number().int().nonnegative().max(10_000_000).default(0),
  })
  .strict();
export type BenchmarkImportOptions = z.output<typeof BenchmarkImportOptions>;
