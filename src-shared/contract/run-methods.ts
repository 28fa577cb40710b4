/**
 * Contract methods of the run workbench (issue 24): one item of a run drilled into, run
 * management (annotate, delete with undo, purge, a cheap change version for live refresh)
 * and the paired comparison of runs against a chosen baseline. Spread into `methods.ts`.
 */
import { z } from 'zod';
import { Label } from '../dataset/format.ts';
import { Id, RunInfo, RunResult } from './domain.ts';

const StoredLabelLite = z.object({ id: z.number().int().positive(), label: Label });
const RunIds = z.array(Id).min(1).max(200);

/** A run with what the user added to it: tags, notes, and its sweep (null when standalone). */
export const RunEntry = z.object({ run: RunInfo, tags: z.array(z.string()), notes: z.string(), sweepId: z.string().nullable() });
export type RunEntry = z.infer<typeof RunEntry>;

/** One item of a run in the item list: its outcome flags (null where the run kind has none). */
export const RunItemRow = z.object({
  itemId: z.string(),
  ord: z.number().int(),
  status: z.enum(['pending', 'done', 'failed']),
  /** The VLM's answer was right (metric `correct`). */
  correct: z.boolean().nullable(),
  /** Readout runs: some stage read the answer out while the VLM got it wrong ("present but not surfaced"). */
  presentNotSurfaced: z.boolean().nullable(),
  /** Readout runs: each stage's readout right (true) or wrong (false) on this item. */
  stages: z.record(z.string(), z.boolean()).nullable(),
  /** Class values and label kinds/names on the item, for filtering by label. */
  labels: z.array(z.string()),
});
export type RunItemRow = z.infer<typeof RunItemRow>;

const Delta = z.object({ estimate: z.number(), low: z.number(), high: z.number() });
const McNemar = z.object({ b: z.number().int(), c: z.number().int(), statistic: z.number(), pValue: z.number(), test: z.enum(['exact-binomial', 'chi-square-corrected']) });

export const runMethods = {
  /** Every run not deleted, with tags, notes and sweep. */
  'runs/catalog': { params: z.object({}).strict(), result: z.array(RunEntry) },
  /**
   * A string that changes whenever any run is created, changes state or progress, is renamed,
   * tagged or deleted — by this engine or anything else writing the database. Polled by views.
   */
  'runs/version': { params: z.object({}).strict(), result: z.object({ version: z.string() }) },
  /** Renames a run and/or replaces its tags and notes. */
  'runs/annotate': {
    params: z
      .object({
        runId: Id,
        name: z.string().trim().min(1).max(200).optional(),
        tags: z.array(z.string().trim().min(1).max(40)).max(32).optional(),
        notes: z.string().max(20000).optional(),
      })
      .strict(),
    result: RunEntry,
  },
  /**
   * Deletes runs softly: they leave every list at once and are purged (rows and the blobs no
   * other run uses) `purgeAfterMs` later or at the engine's next start; `runs/undelete` restores them until then.
   */
  'runs/delete': { params: z.object({ runIds: RunIds }).strict(), result: z.object({ deleted: z.array(Id), purgeAfterMs: z.number().int() }) },
  'runs/undelete': { params: z.object({ runIds: RunIds }).strict(), result: z.object({ restored: z.array(RunInfo) }) },
  /** Purges deleted runs now (all deleted ones, or those listed): their rows, and blob files no remaining run references. */
  'runs/purge': {
    params: z.object({ runIds: RunIds.optional() }).strict(),
    result: z.object({ runs: z.array(Id), blobsRemoved: z.array(z.string()), blobsKept: z.number().int() }),
  },
  /** The items of a run with their outcome flags, in run order (for the filterable item list). */
  'runs/items': {
    params: z.object({ runId: Id }).strict(),
    result: z.object({ run: RunInfo, items: z.array(RunItemRow), presentNotSurfacedNote: z.string().nullable() }),
  },
  /** One item of a run: the dataset item, its labels, the run's result for it and each readout stage's outcome. */
  'runs/item': {
    params: z.object({ runId: Id, itemId: z.string().min(1) }).strict(),
    result: z.object({
      run: RunInfo,
      item: z.object({ id: z.string(), images: z.array(z.string()), prompt: z.string().nullable(), choices: z.array(z.string()).nullable(), answer: z.string().nullable(), labels: z.array(StoredLabelLite) }),
      /** Position in the run's item order, and the neighbours (null at the ends). */
      index: z.number().int(),
      total: z.number().int(),
      prev: z.string().nullable(),
      next: z.string().nullable(),
      status: z.enum(['pending', 'done', 'failed']),
      error: z.string().nullable(),
      result: RunResult.nullable(),
      /** Readout runs: per stage (and answer/blind), whether its readout got this item right. */
      stages: z.array(z.object({ stage: z.string(), correct: z.boolean() })).nullable(),
      presentNotSurfaced: z.boolean().nullable(),
      /** Why `stages` is null for a readout run (e.g. fewer than 5 finished items). */
      stagesNote: z.string().nullable(),
    }),
  },
  /** The item's prompt as the run's model tokenizes it (chat template included; each image placeholder is one token here). */
  'runs/prompt-tokens': {
    params: z.object({ runId: Id, itemId: z.string().min(1) }).strict(),
    result: z.object({ prompt: z.string(), tokens: z.array(z.object({ id: z.number().int(), piece: z.string(), special: z.boolean() })), imageToken: z.string().nullable() }),
  },
  /** Runs against a chosen baseline: Δ (run − baseline) with paired bootstrap intervals, McNemar, spec diff, agreement matrix. */
  'runs/compare-paired': {
    params: z.object({ runIds: z.array(Id).min(2).max(8), baselineId: Id.optional() }).strict(),
    result: z.object({
      runs: z.array(RunInfo),
      baselineId: Id,
      sharedItems: z.number().int(),
      metrics: z.array(
        z.object({
          name: z.string(),
          binary: z.boolean(),
          perRun: z.array(z.object({ runId: Id, n: z.number().int(), mean: z.number(), baseMean: z.number(), delta: Delta.nullable(), mcnemar: McNemar.nullable() }).nullable()),
        }),
      ),
      specDiff: z.array(z.object({ key: z.string(), values: z.array(z.string().nullable()) })),
      agreement: z.object({ metric: z.string(), matrix: z.array(z.array(z.number().nullable())), items: z.array(z.object({ itemId: z.string(), outcomes: z.array(z.number().nullable()) })) }).nullable(),
    }),
  },
} as const;
