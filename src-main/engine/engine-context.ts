/**
 * What handlers and experiments may use of the engine. They depend on this interface, not on the
 * `Engine` class, so `engine.ts → handlers.ts → experiments/*` is a one-way chain (the engine
 * composes them; nothing they import leads back to it).
 */
import type { DatasetInfo, ExecutionProvider, ModelInfo } from '../../src-shared/contract/domain.ts';
import type { EventName, EventPayload } from '../../src-shared/contract/events.ts';
import type { ComputeClient } from '../compute/compute-client.ts';
import type { JobQueue } from '../jobs/queue.ts';
import type { Store } from '../store/store.ts';

export interface EngineOptions {
  dataDir: string;
  /** Folder with `models/` and `datasets/` shipped with the app. */
  resourcesDir: string;
  host: 'electron' | 'server';
  version: string;
  provider?: ExecutionProvider;
  /** Compiled worker location for bundled builds; defaults to the TS source. */
  workerUrl?: URL;
}

export interface EngineContext {
  readonly store: Store;
  readonly compute: ComputeClient;
  readonly queue: JobQueue;
  readonly options: EngineOptions;
  emit<E extends EventName>(name: E, payload: EventPayload<E>): void;
  importModel(path: string, bundled?: boolean): ModelInfo;
  importDataset(path: string, bundled?: boolean): DatasetInfo;
}
