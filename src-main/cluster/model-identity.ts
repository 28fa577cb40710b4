/**
 * Which of this worker's models and datasets a shard means — by content, not by name or path:
 * the same path on another box may hold another file. The folder is fingerprinted here, now
 * (util/hash.ts, as `import-model` does), so a model edited since it was registered is caught too.
 */
import { existsSync } from 'node:fs';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { EngineContext } from '../engine/engine-context.ts';
import { isLoupeArtifact } from '../engine/vlm/overlay.ts';
import { fingerprintFolder } from '../util/hash.ts';
import type { ShardData } from './shard.ts';

const hashCache = new Map<string, string>();
const fingerprint = (path: string, kind: 'model' | 'dataset'): string => {
  const key = `${kind}:${path}`;
  let h = hashCache.get(key);
  if (!h) {
    h = kind === 'model' ? fingerprintFolder(path, (rel) => !isLoupeArtifact(rel)) : fingerprintFolder(path);
    hashCache.set(key, h);
  }
  return h;
};

/** Forget cached fingerprints (a new run may follow an edit of the folder). */
export const forgetFingerprints = () => hashCache.clear();

/**
 * This worker's model id for the shard's model: a registered model, or the run's model path on
 * this box, whose folder hashes to the run's model hash. Anything else is refused, naming both hashes.
 */
export function resolveModel(engine: EngineContext, shard: ShardData, worker: string): string {
  const want = shard.model;
  const seen: string[] = [];
  const candidates = [...engine.store.models.list().filter((m) => m.hash === want.hash).map((m) => m.path), want.path];
  for (const path of new Set(candidates)) {
    if (!existsSync(path)) continue;
    const got = fingerprint(path, 'model');
    if (got === want.hash) return localModelId(engine, path, got);
    seen.push(`${path} hashes to ${got.slice(0, 12)}…`);
  }
  throw new LoupeError(
    'conflict',
    `worker ${worker} refuses shard of run ${shard.runId}: model ${want.name} must have content hash ${want.hash.slice(0, 12)}…, but ${seen.length ? seen.join('; ') : `${want.path} does not exist here and no registered model has that hash`}. ` +
      `Copy the run's model folder to this worker unchanged and \`loupe import-model\` it (or mount it at ${want.path}).`,
    { runId: shard.runId, modelHash: want.hash, worker },
  );
}

/** The registered id of the model folder at `path` (registering it if new). */
function localModelId(engine: EngineContext, path: string, hash: string): string {
  const known = engine.store.models.list().find((m) => m.path === path && m.hash === hash);
  return known ? known.id : engine.importModel(path).id;
}

/** The same for the dataset: a registered dataset or the run's dataset path, with the run's content hash. */
export function resolveDataset(engine: EngineContext, shard: ShardData, worker: string): string {
  const want = shard.dataset;
  const seen: string[] = [];
  const registered = engine.store.datasets.list().filter((d) => d.hash === want.hash);
  for (const d of registered) if (existsSync(d.path) && fingerprint(d.path, 'dataset') === want.hash) return d.id;
  if (existsSync(want.path)) {
    const got = fingerprint(want.path, 'dataset');
    if (got === want.hash) return engine.importDataset(want.path).id;
    seen.push(`${want.path} hashes to ${got.slice(0, 12)}…`);
  }
  throw new LoupeError(
    'conflict',
    `worker ${worker} refuses shard of run ${shard.runId}: dataset ${want.name} must have content hash ${want.hash.slice(0, 12)}…, but ${seen.length ? seen.join('; ') : `${want.path} does not exist here and no registered dataset has that hash`}. Copy the dataset folder to this worker unchanged and \`loupe import-dataset\` it.`,
    { runId: shard.runId, datasetHash: want.hash, worker },
  );
}
