/** A run row for a job, with the provenance that makes it reproducible. */
import { relative, sep } from 'node:path';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import type { ParsedParamsOf } from '../../src-shared/contract/methods.ts';
import type { EngineContext } from './engine-context.ts';
import { SESSION_NAMES, openModelFolder } from './model-folder.ts';

/** Creates a queued-to-be run with its provenance (model/dataset hashes, provider, version). */
export function createRun(engine: EngineContext, job: ParsedParamsOf<'jobs/start'>, sweepId: string | null = null): RunInfo {
  const { store } = engine;
  const model = store.models.get(job.modelId);
  const dataset = store.datasets.get(job.datasetId);
  const ids = store.datasets.items(job.datasetId, 0, job.spec.limit || dataset.itemCount || 1).map((i) => i.id);
  // The file each session will load: checks the variant now (a missing file is named before anything
  // is queued) and records what ran.
  const folder = openModelFolder(model.path, job.spec.variant);
  const sessionFiles = Object.fromEntries(SESSION_NAMES.map((n) => [n, relative(folder.path, folder.files[n]).split(sep).join('/')]));
  return store.runs.create(
    {
      kind: job.kind,
      name: job.name ?? `${job.kind} · ${model.name} · ${dataset.name}`,
      modelId: job.modelId,
      datasetId: job.datasetId,
      spec: job.spec,
      provenance: { modelHash: model.hash, datasetHash: dataset.hash, executionProvider: engine.compute.provider, appVersion: engine.options.version, sessionFiles },
    },
    ids,
    sweepId,
  );
}
