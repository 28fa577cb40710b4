/**
 * Fetching what the scenes show from a finished run, through the contract only: the run's
 * results (`runs/get`) and an item's tensors by name (`tensors/get`, streamed as binary).
 * Tensors are cached by id, so moving a slider over stages never fetches twice.
 */
import type { EngineClient } from '../../../src-shared/contract/client.ts';
import type { RunResult } from '../../../src-shared/contract/domain.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';

type TensorClient = Pick<EngineClient, 'tensor'>;

export class TensorCache {
  private readonly client: TensorClient;
  private readonly cache = new Map<string, Promise<HostTensor>>();
  constructor(client: TensorClient) {
    this.client = client;
  }

  /** The named tensor of a result (null when the run did not store it). */
  get(result: RunResult, name: string): Promise<HostTensor> | null {
    const meta = result.tensors.find((t) => t.name === name);
    if (!meta) return null;
    let p = this.cache.get(meta.id);
    if (!p) {
      p = this.client.tensor(meta.id);
      p.catch(() => this.cache.delete(meta.id));
      this.cache.set(meta.id, p);
    }
    return p;
  }

  /** Every tensor whose name matches `prefix<n>` (e.g. `text.attentions.`), ordered by n. */
  async series(result: RunResult, prefix: string): Promise<HostTensor[]> {
    const names = result.tensors
      .map((t) => t.name)
      .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
      .sort((a, b) => Number(a.slice(prefix.length)) - Number(b.slice(prefix.length)));
    return Promise.all(names.map((n) => this.get(result, n)!));
  }
}

/** Parameters after `?` in the location hash (`#/flow?run=…&item=…`). */
export function hashParams(hash: string): URLSearchParams {
  const i = hash.indexOf('?');
  return new URLSearchParams(i >= 0 ? hash.slice(i + 1) : '');
}
