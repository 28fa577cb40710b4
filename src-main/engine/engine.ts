/**
 * The engine: store + compute worker + job queue behind the contract's handlers.
 * It is host-agnostic — the Electron utility process and `loupe serve` both construct it
 * and attach their transports to `dispatch` and `onEvent`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { EventName, EventPayload } from '../../src-shared/contract/events.ts';
import { ComputeClient } from '../compute/compute-client.ts';
import { EncodeImagesRunner } from '../jobs/encode-images.ts';
import { JobQueue } from '../jobs/queue.ts';
import { ReadoutRunner } from '../experiments/hidden-in-plain-sight/readout-runner.ts';
import { VlmForwardRunner } from '../jobs/vlm-forward.ts';
import { type DataCheckReport, checkDataFolder, describeDataCheck } from '../store/data-check.ts';
import { Store } from '../store/store.ts';
import { fingerprintFolder } from '../util/hash.ts';
import { DataLock, describeHolder } from './data-lock.ts';
import { readDatasetFolder } from './dataset-folder.ts';
import type { EngineContext, EngineOptions } from './engine-context.ts';
import { type Handlers, createHandlers } from './handlers.ts';
import { openModelFolder, withNotes } from './model-folder.ts';
import { isLoupeArtifact } from './vlm/overlay.ts';

type Listener = (name: EventName, payload: unknown) => void;

export type { EngineOptions } from './engine-context.ts';

export class Engine implements EngineContext {
  readonly store: Store;
  readonly compute: ComputeClient;
  readonly queue: JobQueue;
  readonly handlers: Handlers;
  readonly options: EngineOptions;
  private readonly listeners = new Set<Listener>();
  private lock: DataLock | null = null;
  /** What the start-up check of the data folder found (store/data-check.ts). */
  dataCheck: DataCheckReport | null = null;

  private constructor(options: EngineOptions) {
    this.options = options;
    this.store = new Store(options.dataDir);
    this.compute = new ComputeClient(options.workerUrl);
    // Rewritten (tapped/ablated) graphs are cached here, never in a model folder (engine/vlm/overlay.ts).
    const graphCache = join(options.dataDir, 'graph-cache');
    this.queue = new JobQueue(
      this.store,
      {
        'encode-images': new EncodeImagesRunner(this.store, this.compute),
        'vlm-forward': new VlmForwardRunner(this.store, this.compute, graphCache),
        readout: new ReadoutRunner(this.store, this.compute, graphCache),
      },
      (n, p) => this.emit(n, p),
    );
    this.handlers = createHandlers(this);
    this.compute.onRestart = (reason, restarts) => this.emit('engine/restarted', { reason, restarts });
  }

  static async start(options: EngineOptions): Promise<Engine> {
    // One engine per data folder (data-lock.ts): taken before the store opens or any run resumes;
    // a second engine fails here with a conflict naming the holder.
    const lock = DataLock.acquire(options.dataDir);
    if (lock.tookOverFrom) console.error(`loupe: took over ${options.dataDir} from an engine that did not release it (${describeHolder(lock.tookOverFrom)}; killed or crashed)`);
    let engine: Engine | undefined;
    try {
      engine = new Engine(options);
      engine.lock = lock;
      // Before anything resumes: clean temp files, and send items whose blobs do not match back to pending.
      engine.dataCheck = checkDataFolder(engine.store, options.dataDir);
      for (const line of describeDataCheck(engine.dataCheck, options.dataDir)) console.error(`loupe: ${line}`);
      await engine.compute.init(options.provider);
      engine.registerBundled();
      engine.queue.resumeInterrupted();
      return engine;
    } catch (e) {
      await engine?.close().catch(() => undefined);
      lock.release();
      throw e;
    }
  }

  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit<E extends EventName>(name: E, payload: EventPayload<E>): void {
    for (const l of this.listeners) l(name, payload);
  }

  /**
   * Registers a model folder. Its id is the folder name plus its content fingerprint, so
   * re-importing an unchanged folder gives the same id (Loupe never writes into it; tapped
   * copies that older versions left beside the originals are not counted).
   */
  importModel(path: string, bundled = false) {
    const folder = openModelFolder(resolve(path));
    const hash = fingerprintFolder(folder.path, (rel) => !isLoupeArtifact(rel));
    const id = bundled ? folder.name : `${folder.name}-${hash.slice(0, 8)}`;
    return withNotes(this.store.models.upsert({ id, name: folder.name, family: folder.family, path: folder.path, hash, bundled, config: folder.config }));
  }

  importDataset(path: string, bundled = false) {
    const { root, manifest } = readDatasetFolder(resolve(path));
    const hash = fingerprintFolder(root);
    const name = basename(root);
    const id = bundled ? name : `${name}-${hash.slice(0, 8)}`;
    return this.store.datasets.put(id, root, hash, bundled, manifest);
  }

  /** Registers shipped models and datasets; a broken one is reported and skipped, not fatal. */
  private registerBundled(): void {
    const scan = (dir: string, marker: string, add: (p: string) => void) => {
      if (!existsSync(dir)) return;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (!e.isDirectory() || !existsSync(join(dir, e.name, marker))) continue;
        try {
          add(join(dir, e.name));
        } catch (err) {
          console.error(`loupe: skipping bundled ${join(dir, e.name)}: ${(err as Error).message}`);
        }
      }
    };
    scan(join(this.options.resourcesDir, 'models'), 'config.json', (p) => this.importModel(p, true));
    scan(join(this.options.resourcesDir, 'datasets'), 'dataset.json', (p) => this.importDataset(p, true));
  }

  async close(): Promise<void> {
    try {
      await this.queue.stop();
      await this.compute.close();
      this.store.close();
    } finally {
      this.lock?.release();
    }
  }
}
