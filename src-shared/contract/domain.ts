/** Domain records the engine returns: models, datasets, runs, tensors. Plain data, schema-checked. */
import { z } from 'zod';

export const Id = z.string().min(1).max(200);

export const ExecutionProvider = z.enum(['cuda', 'webgpu', 'dml', 'coreml', 'cpu']);
export type ExecutionProvider = z.infer<typeof ExecutionProvider>;

export const ModelInfo = z.object({
  id: Id,
  name: z.string(),
  family: z.string(),
  path: z.string(),
  /** Content hash of the model files, recorded with every run for reproducibility. */
  hash: z.string(),
  bundled: z.boolean(),
  addedAt: z.string(),
  config: z.record(z.string(), z.unknown()),
  /**
   * What the user should know about how Loupe runs this model (e.g. that its folder has no chat
   * template and the family's published one stands in). Absent or empty = nothing to say.
   */
  notes: z.array(z.string()).optional(),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const DatasetInfo = z.object({
  id: Id,
  name: z.string(),
  task: z.string(),
  description: z.string(),
  path: z.string(),
  hash: z.string(),
  itemCount: z.number().int().nonnegative(),
  bundled: z.boolean(),
  addedAt: z.string(),
});
export type DatasetInfo = z.infer<typeof DatasetInfo>;

/**
 * A finished run is `done` (every item ok), `partial` (some items failed) or `failed` (every item
 * failed, or the run itself stopped on an error such as a full disk); `error` then says why.
 */
export const RunStatus = z.enum(['queued', 'running', 'paused', 'cancelled', 'failed', 'partial', 'done']);
export type RunStatus = z.infer<typeof RunStatus>;

export const JobKind = z.enum(['encode-images', 'vlm-forward', 'readout']);
export type JobKind = z.infer<typeof JobKind>;

export const RunInfo = z.object({
  id: Id,
  kind: JobKind,
  name: z.string(),
  status: RunStatus,
  modelId: Id,
  datasetId: Id,
  spec: z.record(z.string(), z.unknown()),
  /**
   * What reproduces the run: model and dataset hashes, provider, app version, and the ONNX file
   * each session loads (relative to the model folder, e.g. `onnx/decoder_model_merged_q4.onnx`;
   * absent in runs created before variants).
   */
  provenance: z.object({
    modelHash: z.string(),
    datasetHash: z.string(),
    executionProvider: z.string(),
    appVersion: z.string(),
    sessionFiles: z.record(z.string(), z.string()).optional(),
    /** Runs computed on a cluster queue (src-main/cluster): the queue, the result store, and per worker its EP, model hash and item count. */
    cluster: z
      .object({ queue: z.string(), store: z.string(), workers: z.array(z.object({ worker: z.string(), ep: z.string(), modelHash: z.string(), items: z.number().int() })) })
      .optional(),
  }),
  total: z.number().int().nonnegative(),
  done: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  error: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type RunInfo = z.infer<typeof RunInfo>;

/** One failed item of a run and why it failed. */
export const RunFailure = z.object({ itemId: z.string(), error: z.string(), attempts: z.number().int().nonnegative() });
export type RunFailure = z.infer<typeof RunFailure>;

export const TensorMeta = z.object({
  id: Id,
  runId: Id.nullable(),
  itemId: z.string().nullable(),
  name: z.string(),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'uint8', 'bool']),
  shape: z.array(z.number().int().nonnegative()),
  /** sha256 of the safetensors blob that holds it. */
  blob: z.string(),
});
export type TensorMeta = z.infer<typeof TensorMeta>;

export const RunResult = z.object({
  itemId: z.string(),
  metrics: z.record(z.string(), z.number()),
  values: z.record(z.string(), z.unknown()),
  tensors: z.array(TensorMeta),
});
export type RunResult = z.infer<typeof RunResult>;
