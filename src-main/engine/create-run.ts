/** A run row for a job, with the provenance that makes it reproducible. */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
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
  if (job.kind === 'vlm-forward' && job.spec.textPrefix) refuseSpecialTokens(folder.path, job.spec.textPrefix);
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

/**
 * A text prefix is words placed before the image; a special token in it (`<image>`, `<|vision_start|>`,
 * `<s>` …) would add an image slot or a turn the model never sees in the papers' control. Refused
 * when the run is started, naming the token, rather than failing every item later.
 */
function refuseSpecialTokens(modelPath: string, prefix: string): void {
  const file = join(modelPath, 'tokenizer.json');
  if (!existsSync(file)) return;
  const added = (JSON.parse(readFileSync(file, 'utf8')) as { added_tokens?: { content: string; special?: boolean }[] }).added_tokens ?? [];
  const hit = added.find((t) => t.special && t.content && prefix.includes(t.content));
  if (hit) throw new LoupeError('bad-input', `textPrefix contains the model's special token ${hit.content} (the image placeholder or a chat marker); a text prefix must be plain words`);
}
