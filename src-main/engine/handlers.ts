/** One handler per contract method, typed from `src-shared/contract/methods.ts`. */
import type { MethodName, ParsedParamsOf, ResultOf } from '../../src-shared/contract/methods.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { join } from 'node:path';
import { compareRuns } from '../../src-shared/metrics/summary.ts';
import type { EngineContext } from './engine-context.ts';
import { createRun } from './create-run.ts';
import { addImages, createDataset, deleteLabel, exportDataset, importCoco, itemImage, labelMask, putLabel, putMask, setQuestion } from './dataset-edit.ts';
import { exportRunTensors } from './export.ts';
import { importBenchmark } from '../datasets/importers/registry.ts';
import { modelVariants, withNotes } from './model-folder.ts';
import { kvCompare } from '../experiments/inside-the-llm/compare.ts';
import { kvProbes, kvSegmentation } from '../experiments/inside-the-llm/index.ts';
import { keyTokens } from '../experiments/inside-the-llm/key-tokens.ts';
import { readoutSummary } from '../experiments/hidden-in-plain-sight/readout-summary.ts';
import { listSweeps, startSweep, sweepSummary } from '../experiments/compensation/sweeps.ts';
import { partsLogitLens } from '../experiments/compensation/parts-logit-lens.ts';
import { clusterOf } from '../cluster/coordinator.ts';
import { holdClusterRuns, releaseClusterRun } from '../cluster/run-provenance.ts';
import { createRunHandlers } from './run-handlers.ts';
import { estimateJob, refuseIfNoSpace } from '../jobs/capture-estimate.ts';

/** A handler may attach a tensor; the transport sends it as a binary frame before the JSON result. */
export interface WithTensor<R> {
  result: R;
  tensor: HostTensor;
}

export type Handlers = {
  [M in MethodName]: (params: ParsedParamsOf<M>) => Promise<ResultOf<M> | WithTensor<ResultOf<M>>>;
};

export function createHandlers(engine: EngineContext): Handlers {
  const { store, queue } = engine;
  // Before the engine resumes interrupted runs (Engine.start): runs that were on a cluster queue are held
  // `paused`, not re-run here (src-main/cluster/run-provenance.ts).
  holdClusterRuns(store);
  return {
    'app/info': async () => ({
      version: engine.options.version,
      executionProvider: engine.compute.provider,
      availableProviders: engine.compute.available,
      dataDir: engine.options.dataDir,
      host: engine.options.host,
    }),
    'app/set-provider': async ({ provider }) => {
      if (!engine.compute.available.includes(provider)) throw new LoupeError('bad-input', `execution provider ${provider} does not work on this machine (available: ${engine.compute.available.join(', ')})`);
      await engine.compute.useProvider(provider);
      return { executionProvider: engine.compute.provider, availableProviders: engine.compute.available };
    },
    'models/list': async () => store.models.list().map(withNotes),
    'models/variants': async ({ modelId }) => modelVariants(store.models.get(modelId)),
    'datasets/list': async () => store.datasets.list(),
    'datasets/items': async ({ datasetId, offset, limit }) => {
      const info = store.datasets.get(datasetId);
      const items = store.datasets.items(datasetId, offset, limit);
      return { total: info.itemCount, items: items.map((i) => ({ id: i.id, prompt: i.prompt ?? null, choices: i.choices ?? null, answer: i.answer ?? null, images: i.images })) };
    },
    'datasets/import': async ({ path }) => engine.importDataset(path),
    'datasets/create': async ({ name, task }) => createDataset(store, engine.options.dataDir, name, task),
    'datasets/add-images': async ({ datasetId, folder }) => addImages(store, datasetId, folder),
    'datasets/import-coco': async ({ path, imagesDir }) => importCoco(store, engine.options.dataDir, path, imagesDir),
    'datasets/import-benchmark': async ({ format, path, options }) => {
      const r = await importBenchmark(engine.options.dataDir, format, path, options, (p) => engine.emit('import/progress', p));
      return { dataset: engine.importDataset(r.root), items: r.items, labels: r.labels, warnings: r.warnings };
    },
    'datasets/export': async ({ datasetId, format }) => exportDataset(store, datasetId, format),
    'datasets/image': async ({ datasetId, itemId, index }) => {
      const tensor = await itemImage(store, datasetId, itemId, index);
      return { result: { id: `${datasetId}/${itemId}/${index}`, runId: null, itemId, name: 'image', dtype: 'uint8', shape: tensor.shape, blob: '' }, tensor };
    },
    'labels/list': async ({ datasetId, itemId }) => store.labels.list(datasetId, itemId),
    'labels/put': async (p) => putLabel(store, p),
    'labels/delete': async ({ id }) => ({ deleted: deleteLabel(store, id) }),
    'labels/put-mask': async (p) => putMask(store, p),
    'labels/mask': async ({ id }) => {
      const { label, tensor } = labelMask(store, id);
      return { result: { id: `label-${id}`, runId: null, itemId: label.itemId, name: 'mask', dtype: tensor.dtype, shape: tensor.shape, blob: '' }, tensor };
    },
    'datasets/set-question': async ({ datasetId, itemId, prompt, choices, answer }) => setQuestion(store, datasetId, itemId, { prompt, choices, answer }),
    // With `cluster`, the run goes to a Redis queue of workers (src-main/cluster) and is merged back here as it finishes.
    'jobs/start': async (job) => {
      // Refused before any row is written when the captures cannot fit in the data folder (names both numbers).
      if (!job.cluster) await refuseIfNoSpace(store, engine.options.dataDir, job);
      return job.cluster ? (await clusterOf(engine).submit(job.cluster, () => [createRun(engine, job).id]))[0]! : queue.enqueue(createRun(engine, job).id);
    },
    'jobs/estimate': async (job) => estimateJob(store, engine.options.dataDir, job),
    'sweeps/start': async (p) => {
      if (!p.cluster) return startSweep(engine, p);
      let started!: ReturnType<typeof startSweep>;
      await clusterOf(engine).submit(p.cluster, () => (started = startSweep(engine, p, () => undefined)).runIds);
      return started;
    },
    'cluster/status': async () => clusterOf(engine).status(),
    'cluster/cancel': async ({ runId }) => clusterOf(engine).cancel(runId),
    'cluster/attach': async ({ runId, cluster }) => clusterOf(engine).attach(runId, cluster),
    'sweeps/summary': async ({ sweepId, floor }) => sweepSummary(store, sweepId, floor),
    'sweeps/list': async () => listSweeps(store),
    'parts/logit-lens': async ({ runIds, parts, topK, perItem }) => partsLogitLens(engine, runIds, { topK, perItem, ...(parts && { parts }) }),
    'jobs/cancel': async ({ runId }) => (clusterOf(engine).owns(runId) ? clusterOf(engine).cancel(runId) : queue.cancel(runId)),
    'jobs/resume': async ({ runId }) => {
      // A run held after a restart while on a cluster, resumed here instead: it is this engine's again.
      releaseClusterRun(store, runId);
      return queue.enqueue(store.runs.get(runId).id);
    },
    'runs/list': async ({ status }) => store.runs.list(status),
    'runs/get': async ({ runId, failuresOffset, failuresLimit }) => ({ run: store.runs.get(runId), results: store.runs.results(runId), failures: store.runs.failures(runId, failuresOffset, failuresLimit) }),
    'runs/retry-failed': async ({ runId }) => queue.retryFailed(runId),
    'runs/compare': async ({ runIds }) => {
      const runs = runIds.map((id) => store.runs.get(id));
      return { runs, ...compareRuns(runIds.map((id) => store.runs.results(id))) };
    },
    'readout/summary': async ({ runId }) => readoutSummary(store, runId),
    'kv/segmentation': async ({ runId }) => kvSegmentation(store, runId),
    'kv/probes': async ({ runId, ...params }) => kvProbes(store, runId, params),
    'kv/key-tokens': async ({ runId, maxPerLayer, threshold, inputFloor }) => keyTokens(store, runId, { maxPerLayer, threshold, inputFloor }),
    'kv/compare': async ({ baseRunId, runId, ...params }) => kvCompare(store, baseRunId, runId, params),
    'runs/export-tensors': async ({ runId }) => exportRunTensors(store, runId, join(engine.options.dataDir, 'exports')),
    'tensors/get': async ({ tensorId }) => {
      const meta = store.runs.tensor(tensorId);
      const tensor = store.blobs.getTensors(meta.blob)[meta.name];
      if (!tensor) throw new Error(`blob ${meta.blob} lacks tensor ${meta.name}`);
      return { result: meta, tensor };
    },
    ...createRunHandlers(engine),
  };
}
