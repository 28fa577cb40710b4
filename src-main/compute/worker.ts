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
import { type OpenVlm, openVlm, runVlm } from './vlm/pipeline.ts';
import { flushStream } from './capture/stream-stats.ts';

const port = parentPort;
if (!port) throw new Error('compute worker must run in a worker thread');

const sessions = new Map<string, ort.InferenceSession>();
const vlms = new Map<string, OpenVlm>();
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

function sessionOptions(): ort.InferenceSession.SessionOptions {
  return { executionProviders: provider === 'cpu' ? ['cpu'] : [provider, 'cpu'], graphOptimizationLevel: 'all' };
}

/** Buffers of every tensor in a result, so they are transferred to the engine thread, not copied. */
function transferables(result: ComputeResult): ArrayBuffer[] {
  if (!result || typeof result !== 'object') return [];
  const out = new Set<ArrayBuffer>();
  const visit = (v: unknown, depth: number) => {
    if (depth > 3 || !v || typeof v !== 'object') return;
    if (ArrayBuffer.isView(v)) out.add(v.buffer as ArrayBuffer);
    else for (const x of Object.values(v)) visit(x, depth + 1);
  };
  visit(result, 0);
  return [...out];
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
      const s = await ort.InferenceSession.create(req.path, sessionOptions());
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
      const vlm = vlms.get(req.key);
      if (vlm) await Promise.all([vlm.vision.release(), vlm.embed.release(), vlm.decoder.release()]);
      vlms.delete(req.key);
      return null;
    }
    case 'vlm-open': {
      const { id: _id, op: _op, ...open } = req;
      if (!vlms.has(req.key)) vlms.set(req.key, await openVlm(open, sessionOptions()));
      return null;
    }
    case 'vlm-run': {
      const vlm = vlms.get(req.key);
      if (!vlm) throw new Error(`no VLM open for ${req.key}`);
      const { id: _id, op: _op, ...run } = req;
      return runVlm(vlm, run);
    }
    case 'stream-flush':
      return flushStream(req.streamId, req.out, req.final);
  }
}

port.on('message', (req: ComputeRequest) => {
  handle(req).then(
    (result) => {
      port.postMessage({ id: req.id, ok: true, result } satisfies ComputeResponse, transferables(result));
    },
    // A storage failure (disk full writing a streamed capture) keeps its code: the queue stops the run on it.
    (e: Error) => port.postMessage({ id: req.id, ok: false, error: { code: passedOn((e as { code?: string }).code), message: e.message } } satisfies ComputeResponse),
  );
});

/** Error codes that keep their meaning across the worker boundary (a full disk, an input the graph refuses); the rest are compute failures. */
function passedOn(code: string | undefined): string {
  return code === 'storage' || code === 'bad-input' ? code : 'compute';
}
