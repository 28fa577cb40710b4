/** The engine's handle on the compute worker: typed calls, transferable tensors, crash detection. */
import { Worker } from 'node:worker_threads';
import type { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { ComputeRequest, ComputeResponse, SessionInfo } from './protocol.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class ComputeClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  provider: ExecutionProvider = 'cpu';
  available: ExecutionProvider[] = ['cpu'];

  /** `workerUrl` lets a bundled build (Electron) point at its compiled worker file. */
  constructor(workerUrl: URL = new URL('./worker.ts', import.meta.url)) {
    this.worker = new Worker(workerUrl);
    this.worker.on('message', (m: ComputeResponse) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new LoupeError('internal', m.error.message));
    });
    this.worker.on('error', (e) => this.failAll(`compute worker crashed: ${e.message}`));
    this.worker.on('exit', (code) => this.failAll(`compute worker exited with code ${code}`));
  }

  async init(override?: ExecutionProvider): Promise<void> {
    const r = (await this.send(override ? { op: 'init', override } : { op: 'init' })) as { provider: ExecutionProvider; available: ExecutionProvider[] };
    this.provider = r.provider;
    this.available = r.available;
  }

  load(key: string, path: string): Promise<SessionInfo> {
    return this.send({ op: 'load', key, path }) as Promise<SessionInfo>;
  }

  run(key: string, feeds: Record<string, HostTensor>, fetches?: string[]): Promise<Record<string, HostTensor>> {
    // Feeds are transferred, not copied: callers must not reuse their buffers afterwards.
    const transfer = Object.values(feeds).map((t) => t.data.buffer as ArrayBuffer);
    return this.send(fetches ? { op: 'run', key, feeds, fetches } : { op: 'run', key, feeds }, transfer) as Promise<Record<string, HostTensor>>;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
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
