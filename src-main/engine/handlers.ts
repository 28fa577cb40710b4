/** One handler per contract method, typed from `src-shared/contract/methods.ts`. */
import type { MethodName, ParsedParamsOf, ResultOf } from '../../src-shared/contract/methods.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { join } from 'node:path';
import { compareRuns } from '../../src-shared/metrics/summary.ts';
import type { Engine } from './engine.ts';
import { addImages, createDataset, exportDataset, itemImage } from './dataset-edit.ts';
import { exportRunTensors } from './export.ts';
import { readoutSummary } from './readout-summary.ts';

/** A handler may attach a tensor; the transport sends it as a binary frame before the JSON result. */
export interface WithTensor<R> {
  result: R;
  tensor: HostTensor;
}

export type Handlers = {
  [M in MethodName]: (params: ParsedParamsOf<M>) => Promise<ResultOf<M> | WithTensor<ResultOf<M>>>;
};

export function createHandlers(engine: Engine): Handlers {
  const { store, queue } = engine;
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
    'models/list': async () => store.models.list(),
    'datasets/list': async () => store.datasets.list(),
    'datasets/items': async ({ datasetId, offset, limit }) => {
      const info = store.datasets.get(datasetId);
      const items = store.datasets.items(datasetId, offset, limit);
      return { total: info.itemCount, items: items.map((i) => ({ id: i.id, prompt: i.prompt ?? null, answer: i.answer ?? null, images: i.images })) };
    },
    'datasets/import': async ({ path }) => engine.importDataset(path),
    'datasets/create': async ({ name, task }) => createDataset(store, engine.options.dataDir, name, task),
    'datasets/add-images': async ({ datasetId, folder }) => addImages(store, datasetId, folder),
    'datasets/export': async ({ datasetId, format }) => exportDataset(store, datasetId, format),
    'datasets/image': async ({ datasetId, itemId, index }) => {
      const tensor = await itemImage(store, datasetId, itemId, index);
      return { result: { id: `${datasetId}/${itemId}/${index}`, runId: null, itemId, name: 'image', dtype: 'uint8', shape: tensor.shape, blob: '' }, tensor };
    },
    'labels/list': async ({ datasetId, itemId }) => store.labels.list(datasetId, itemId),
    'labels/put': async ({ datasetId, itemId, id, label }) => store.labels.put(datasetId, itemId, label, id),
    'labels/delete': async ({ id }) => ({ deleted: store.labels.delete(id) }),
    'jobs/start': async ({ kind, modelId, datasetId, name, spec }) => {
      const model = store.models.get(modelId);
      const dataset = store.datasets.get(datasetId);
      const ids = store.datasets.items(datasetId, 0, spec.limit || dataset.itemCount || 1).map((i) => i.id);
      const run = store.runs.create(
        {
          kind,
          name: name ?? `${kind} · ${model.name} · ${dataset.name}`,
          modelId,
          datasetId,
          spec,
          provenance: { modelHash: model.hash, datasetHash: dataset.hash, executionProvider: engine.compute.provider, appVersion: engine.options.version },
        },
        ids,
      );
      return queue.enqueue(run.id);
    },
    'jobs/cancel': async ({ runId }) => queue.cancel(runId),
    'jobs/resume': async ({ runId }) => queue.enqueue(store.runs.get(runId).id),
    'runs/list': async ({ status }) => store.runs.list(status),
    'runs/get': async ({ runId }) => ({ run: store.runs.get(runId), results: store.runs.results(runId) }),
    'runs/compare': async ({ runIds }) => {
      const runs = runIds.map((id) => store.runs.get(id));
      return { runs, ...compareRuns(runIds.map((id) => store.runs.results(id))) };
    },
    'readout/summary': async ({ runId }) => readoutSummary(store, runId),
    'runs/export-tensors': async ({ runId }) => exportRunTensors(store, runId, join(engine.options.dataDir, 'exports')),
    'tensors/get': async ({ tensorId }) => {
      const meta = store.runs.tensor(tensorId);
      const tensor = store.blobs.getTensors(meta.blob)[meta.name];
      if (!tensor) throw new Error(`blob ${meta.blob} lacks tensor ${meta.name}`);
      return { result: meta, tensor };
    },
  };
}
