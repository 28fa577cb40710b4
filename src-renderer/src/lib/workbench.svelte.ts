/**
 * Renderer state: what the engine has told us, kept current by its events.
 * A class with runes (`$state`) so views read fields directly and re-render on change.
 */
import type { EngineClient } from '../../../src-shared/contract/client.ts';
import type { DatasetInfo, ExecutionProvider, ModelInfo, RunInfo } from '../../../src-shared/contract/domain.ts';
import type { EventPayload } from '../../../src-shared/contract/events.ts';
import type { ResultOf } from '../../../src-shared/contract/methods.ts';

export type Progress = EventPayload<'job/progress'>;

export class Workbench {
  info = $state<ResultOf<'app/info'> | null>(null);
  models = $state<ModelInfo[]>([]);
  datasets = $state<DatasetInfo[]>([]);
  runs = $state<RunInfo[]>([]);
  progress = $state<Record<string, Progress>>({});
  /** Counts every progress event received: the e2e test checks events really stream. */
  progressEvents = $state(0);
  error = $state<string | null>(null);
  connected = $state(false);
  readonly client: EngineClient;

  constructor(client: EngineClient) {
    this.client = client;
    client.on('job/progress', (p) => {
      this.progress[p.runId] = p;
      this.progressEvents++;
    });
    client.on('job/state', (run) => this.upsertRun(run));
    client.on('engine/restarted', (r) => (this.error = `engine-crashed: ${r.reason}; restarted (${r.restarts}×), interrupted items are retried`));
  }

  get running(): RunInfo[] {
    return this.runs.filter((r) => r.status === 'running');
  }

  get queued(): RunInfo[] {
    return this.runs.filter((r) => r.status === 'queued');
  }

  async load(): Promise<void> {
    const [info, models, datasets, runs] = await Promise.all([
      this.client.call('app/info', {}),
      this.client.call('models/list', {}),
      this.client.call('datasets/list', {}),
      this.client.call('runs/list', {}),
    ]);
    this.info = info;
    this.models = models;
    this.datasets = datasets;
    this.runs = runs;
    this.connected = true;
  }

  async refreshDatasets(): Promise<void> {
    this.datasets = await this.client.call('datasets/list', {});
  }

  async setProvider(provider: ExecutionProvider): Promise<void> {
    const r = await this.attempt(() => this.client.call('app/set-provider', { provider }));
    if (r && this.info) this.info = { ...this.info, ...r };
  }

  /** Runs an engine call, turning its typed error into the banner message. */
  async attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      this.error = null;
      return await fn();
    } catch (e) {
      const err = e as { code?: string; message: string };
      this.error = err.code ? `${err.code}: ${err.message}` : err.message;
      return undefined;
    }
  }

  private upsertRun(run: RunInfo): void {
    const i = this.runs.findIndex((r) => r.id === run.id);
    if (i >= 0) this.runs[i] = run;
    else this.runs = [run, ...this.runs];
  }
}
