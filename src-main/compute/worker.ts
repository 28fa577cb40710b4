/**
 * The compute worker: a worker thread that owns every ORT session. ORT's `run` blocks the
 * thread it runs on, so keeping it here leaves the engine's thread free for requests,
 * progress events and cancellation.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { chooseProvider, compiledProviders, workingProviders } from './providers.ts';
import type { ComputeRequest, ComputeResponse, ComputeResult, SessionInfo } from './protocol.ts';

const port = parentPort;
if (!port) throw new Error('compute worker must run in a worker thread');

const sessions = new Map<string, ort.InferenceSession>();
let provider: ExecutionProvider = 'cpu';

const ORT_TO_HOST: Record<string, HostTensor['dtype']> = { float32: 'float32', float16: 'float16', int64: 'int64', int32: 'int32', uint8: 'uint8', bool: 'bool' };

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as never, t.shape);
}

function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = ORT_TO_HOST[t.type];
  if (!dtype) throw new Error(`output tensor type ${t.type} is not supported`);
  const data = t.type === 'bool' ? new Uint8Array((t.data as Uint8Array).buffer.slice(0)) : (t.data as HostTensor['data']);
  return { dtype, shape: [...t.dims], data };
}

function describe(meta: readonly ort.InferenceSession.ValueMetadata[]): SessionInfo['inputs'] {
  return meta.map((m) => (m.isTensor ? { name: m.name, dtype: m.type, shape: [...m.shape] } : { name: m.name, dtype: 'non-tensor', shape: [] }));
}

async function handle(req: ComputeRequest): Promise<ComputeResult> {
  switch (req.op) {
    case 'init': {
      const available = await workingProviders(compiledProviders());
      provider = chooseProvider(available, req.override);
      return { provider, available };
    }
    case 'load': {
      const old = sessions.get(req.key);
      if (old) return { inputs: describe(old.inputMetadata), outputs: describe(old.outputMetadata) };
      const s = await ort.InferenceSession.create(req.path, { executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'], graphOptimizationLevel: 'all' });
      sessions.set(req.key, s);
      return { inputs: describe(s.inputMetadata), outputs: describe(s.outputMetadata) };
    }
    case 'run': {
      const s = sessions.get(req.key);
      if (!s) throw new Error(`no session loaded for ${req.key}`);
      const feeds = Object.fromEntries(Object.entries(req.feeds).map(([k, v]) => [k, toOrt(v)]));
      const out = req.fetches ? await s.run(feeds, req.fetches) : await s.run(feeds);
      return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromOrt(v)]));
    }
    case 'release': {
      await sessions.get(req.key)?.release();
      sessions.delete(req.key);
      return null;
    }
  }
}

port.on('message', (req: ComputeRequest) => {
  handle(req).then(
    (result) => {
      const transfer = result && typeof result === 'object' && !('provider' in result) && !('inputs' in result) ? Object.values(result as Record<string, HostTensor>).map((t) => t.data.buffer as ArrayBuffer) : [];
      port.postMessage({ id: req.id, ok: true, result } satisfies ComputeResponse, transfer);
    },
    (e: Error) => port.postMessage({ id: req.id, ok: false, error: { code: 'compute', message: e.message } } satisfies ComputeResponse),
  );
});
