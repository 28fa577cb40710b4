/**
 * The one contract between the renderer (or CLI, or a browser) and the engine.
 * Each method is `'domain/verb'` → params schema + result schema. Both ends import this
 * map: the engine validates params on receipt, the client is typed from it.
 */
import { z } from 'zod';
import { DatasetInfo, ExecutionProvider, Id, JobKind, ModelInfo, RunInfo, RunResult, RunStatus, TensorMeta } from './domain.ts';

const none = z.object({}).strict();

export const EncodeImagesSpec = z
  .object({
    /** Keep the captured tensors in fp16 (half the disk) or fp32 (exact). */
    storeDtype: z.enum(['float32', 'float16']).default('float16'),
    /** Store per-item image features as tensors (otherwise only summary metrics). */
    storeFeatures: z.boolean().default(true),
    /** Limit to the first N items (0 = all). */
    limit: z.number().int().nonnegative().default(0),
  })
  .strict();
export type EncodeImagesSpec = z.infer<typeof EncodeImagesSpec>;

export const methods = {
  'app/info': {
    params: none,
    result: z.object({
      version: z.string(),
      executionProvider: ExecutionProvider,
      availableProviders: z.array(ExecutionProvider),
      dataDir: z.string(),
      host: z.enum(['electron', 'server']),
    }),
  },
  'models/list': { params: none, result: z.array(ModelInfo) },
  'datasets/list': { params: none, result: z.array(DatasetInfo) },
  'datasets/items': {
    params: z.object({ datasetId: Id, offset: z.number().int().nonnegative().default(0), limit: z.number().int().positive().max(1000).default(100) }).strict(),
    result: z.object({
      total: z.number().int().nonnegative(),
      items: z.array(z.object({ id: z.string(), prompt: z.string().nullable(), answer: z.string().nullable(), images: z.array(z.string()) })),
    }),
  },
  'datasets/import': { params: z.object({ path: z.string().min(1) }).strict(), result: DatasetInfo },
  'jobs/start': {
    params: z.object({ kind: JobKind, modelId: Id, datasetId: Id, name: z.string().max(200).optional(), spec: EncodeImagesSpec.default(EncodeImagesSpec.parse({})) }).strict(),
    result: RunInfo,
  },
  'jobs/cancel': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  'jobs/resume': { params: z.object({ runId: Id }).strict(), result: RunInfo },
  'runs/list': { params: z.object({ status: RunStatus.optional() }).strict().default({}), result: z.array(RunInfo) },
  'runs/get': { params: z.object({ runId: Id }).strict(), result: z.object({ run: RunInfo, results: z.array(RunResult) }) },
  /** Result is streamed as one binary tensor frame with the same request id; the JSON result is its metadata. */
  'tensors/get': { params: z.object({ tensorId: Id }).strict(), result: TensorMeta },
} as const;

export type Methods = typeof methods;
export type MethodName = keyof Methods;
export type ParamsOf<M extends MethodName> = z.input<Methods[M]['params']>;
export type ParsedParamsOf<M extends MethodName> = z.output<Methods[M]['params']>;
export type ResultOf<M extends MethodName> = z.output<Methods[M]['result']>;

export function isMethodName(name: string): name is MethodName {
  return Object.hasOwn(methods, name);
}
