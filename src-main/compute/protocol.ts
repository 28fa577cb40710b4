/** Messages between the engine and its compute worker thread (ORT lives only there). */
import type { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import type { VlmOpenRequest, VlmRunRequest, VlmRunResult } from './vlm/types.ts';
import type { StreamFlushResult } from './capture/stream-stats.ts';

export type ComputeRequest =
  | { id: number; op: 'init'; override?: ExecutionProvider }
  | { id: number; op: 'load'; key: string; path: string }
  | { id: number; op: 'run'; key: string; feeds: Record<string, HostTensor>; fetches?: string[] }
  | { id: number; op: 'release'; key: string }
  | ({ id: number; op: 'vlm-open' } & VlmOpenRequest)
  | ({ id: number; op: 'vlm-run' } & VlmRunRequest)
  /** Writes a streamed-statistics result (compute/capture/stream-stats.ts) to `out`; `final` drops its accumulators. */
  | { id: number; op: 'stream-flush'; streamId: string; out: string; final: boolean };

export interface SessionInfo {
  inputs: { name: string; dtype: string; shape: (number | string)[] }[];
  outputs: { name: string; dtype: string; shape: (number | string)[] }[];
}

export type ComputeResult =
  | { provider: ExecutionProvider; available: ExecutionProvider[] }
  | SessionInfo
  | Record<string, HostTensor>
  | VlmRunResult
  | StreamFlushResult
  | null;

export type ComputeResponse = { id: number; ok: true; result: ComputeResult } | { id: number; ok: false; error: { code: string; message: string } };
