/** What a job kind provides: per-run setup, then one call per dataset item. */
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';

export interface ItemOutput {
  metrics: Record<string, number>;
  values: Record<string, unknown>;
  /** Captured tensors to persist (already in the dtype the spec asked for). */
  tensors: Record<string, HostTensor>;
  /** Captures the compute worker already wrote to a blob (streamed; recorded with BlobStore.adopt). */
  stored?: { sha: string; size: number; tensors: { name: string; dtype: HostTensor['dtype']; shape: number[] }[] };
}

export interface PreparedRun {
  processItem(itemId: string): Promise<ItemOutput>;
  dispose?(): Promise<void>;
}

export interface JobRunner {
  prepare(run: RunInfo): Promise<PreparedRun>;
}
