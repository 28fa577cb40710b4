/**
 * The engine's handle on the compute worker: typed calls, transferable tensors, and
 * supervision — if the worker dies (a native crash in ORT, out of memory), pending calls
 * fail with `engine-crashed`, a fresh worker is started with the same provider and
 * sessions, and `onRestart` tells the engine (which tells the UI).
 */
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { ComputeRequest, ComputeResponse, SessionInfo } from './protocol.ts';
import type { VlmOpenRequest, VlmRunRequest, VlmRunResult } from './vlm/types.ts';
import type { StreamFlushResult } from './capture/stream-stats.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class ComputeClient {
  private worker!: Worker;
  private ready: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, Pending>();
  /** Sessions to reload into a restarted worker. */
  private readonly sessions = new Map<string, string>();
  private readonly vlms = new Map<string, VlmOpenRequest>();
  private readonly workerUrl: URL;
  private nextId = 1;
  private closing = false;
  private override: ExecutionProvider | undefined;
  restarts = 0;
  provider: ExecutionProvider = 'cpu';
  available: ExecutionProvider[] = ['cpu'];
  onRestart: (reason: string, restarts: number) => void = () => {};

  /** `workerUrl` lets a bundled build (Electron) point at its compiled worker file. */
  constructor(workerUrl: URL = new URL('./worker.ts', import.meta.url)) {
    this.workerUrl = workerUrl;
    this.spawn();
  }

  async init(override?: ExecutionProvider): Promise<void> {
    this.override = override;
    const r = (await this.send(override ? { op: 'init', override } : { op: 'init' })) as { provider: ExecutionProvider; available: ExecutionProvider[] };
    this.provider = r.provider;
    this.available = r.available;
  }

  async load(key: string, path: string): Promise<SessionInfo> {
    await this.ready;
    const info = (await this.send({ op: 'load', key, path })) as SessionInfo;
    this.sessions.set(key, path);
    return info;
  }

  async run(key: string, feeds: Record<string, HostTensor>, fetches?: string[]): Promise<Record<string, HostTensor>> {
    await this.ready;
    // Feeds are transferred, not copied: callers must not reuse their buffers afterwards.
    const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
    return this.send(fetches ? { op: 'run', key, feeds, fetches } : { op: 'run', key, feeds }, transfer) as Promise<Record<string, HostTensor>>;
  }

  async openVlm(open: VlmOpenRequest): Promise<void> {
    await this.ready;
    await this.send({ op: 'vlm-open', ...open });
    this.vlms.set(open.key, open);
  }

  /** Writes a run's streamed statistics (kept in the worker while its items ran) to `out`; null when the worker holds none. */
  async flushStream(streamId: string, out: string, final: boolean): Promise<StreamFlushResult | null> {
    await this.ready;
    return this.send({ op: 'stream-flush', streamId, out, final }) as Promise<StreamFlushResult | null>;
  }

  async runVlm(request: VlmRunRequest): Promise<VlmRunResult> {
    await this.ready;
    const transfer = [request.inputIds.data.buffer as ArrayBuffer, ...(request.pixelValues ? [request.pixelValues.data.buffer as ArrayBuffer] : [])];
    return this.send({ op: 'vlm-run', ...request }, transfer) as Promise<VlmRunResult>;
  }

  /** Makes `provider` the override and restarts the worker on it (sessions are reloaded there). */
  async useProvider(provider: ExecutionProvider): Promise<void> {
    this.override = provider;
    await this.restart();
  }

  /** Replaces the worker (also what happens after a crash); sessions are reloaded. */
  async restart(): Promise<void> {
    const exited = new Promise<void>((r) => this.worker.once('exit', () => r()));
    await this.worker.terminate();
    await exited;
    await this.ready;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }

  private spawn(): void {
    const worker = new Worker(this.workerUrl);
    worker.on('message', (m: ComputeResponse) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new LoupeError(m.error.code === 'storage' || m.error.code === 'bad-input' ? m.error.code : 'internal', m.error.message));
    });
    worker.on('error', (e) => this.failAll(`compute worker crashed: ${e.message}`));
    worker.on('exit', (code) => {
      this.failAll(`compute worker exited with code ${code}`);
      if (this.closing) return;
      this.restarts++;
      this.spawn();
      this.ready = this.revive().then(() => this.onRestart(`compute worker exited with code ${code}`, this.restarts));
    });
    this.worker = worker;
  }

  private async revive(): Promise<void> {
    await this.init(this.override);
    for (const [key, path] of this.sessions) await this.send({ op: 'load', key, path });
    for (const open of this.vlms.values()) await this.send({ op: 'vlm-open', ...open });
  }

  private send(req: DistributiveOmit<ComputeRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...req, id }, transfer);
    });
  }

  private failAll(message: string): void {
    for (const p of this.pending.values()) p.reject(new LoupeError('engine-crashed', message));
    this.pending.clear();
  }
}
