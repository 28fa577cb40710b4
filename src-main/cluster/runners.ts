/** The job runners a worker runs shards with: the very classes the desktop's queue uses (engine.ts). */
import { join } from 'node:path';
import type { JobKind } from '../../src-shared/contract/domain.ts';
import type { EngineContext } from '../engine/engine-context.ts';
import { ReadoutRunner } from '../experiments/hidden-in-plain-sight/readout-runner.ts';
import { EncodeImagesRunner } from '../jobs/encode-images.ts';
import type { JobRunner } from '../jobs/job-runner.ts';
import { VlmForwardRunner } from '../jobs/vlm-forward.ts';

export function createRunners(engine: EngineContext): Record<JobKind, JobRunner> {
  // The worker's own graph cache (rewritten graphs are per box; model folders are never written).
  const graphCache = join(engine.options.dataDir, 'graph-cache');
  return {
    'encode-images': new EncodeImagesRunner(engine.store, engine.compute),
    'vlm-forward': new VlmForwardRunner(engine.store, engine.compute, graphCache),
    readout: new ReadoutRunner(engine.store, engine.compute, graphCache),
  };
}
