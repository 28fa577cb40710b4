/**
 * The bad-input corpus, part 2 (issue 23): RPC envelopes and payloads, job and sweep specs,
 * benchmark imports pointed at the wrong thing, and run/tensor ids — each through the dispatcher
 * as over the wire, checked by the same harness (clear code, live engine, intact database,
 * unchanged reference data). Part 1 (images, masks, labels, manifests, models) is
 * bad-input-corpus.test.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispatch } from '../../src-main/engine/dispatcher.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { type BadInputCase, type CorpusContext, type Send, runBadInputCorpus } from '../helpers/bad-input-harness.ts';

/** A raw envelope (not method+params): the dispatcher's own error, thrown as a LoupeError. */
const raw = (envelope: unknown): Send => ({
  action: async (engine: Engine) => {
    const { response } = await dispatch(engine.handlers, envelope);
    if (!response.ok) throw LoupeError.from(response.error);
  },
});
const call = (method: string, params: unknown): Send => ({ method, params });
const withIds = (method: string, params: (ctx: CorpusContext) => Record<string, unknown>) => (ctx: CorpusContext): Send => ({ method, params: params(ctx) });
const start = (spec: unknown, kind = 'readout') => withIds('jobs/start', (ctx) => ({ kind, modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec }));
const BLOCK = { edits: [{ op: 'block', part: 'vision', layers: [0], queries: { kind: 'patches' }, keys: { kind: 'patches' } }] };
const sweep = (extra: Record<string, unknown>) => withIds('sweeps/start', (ctx) => ({ modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, name: 's', ablations: [BLOCK], ...extra }));
/** `datasets/import-benchmark` of `format` at a folder made in the case's dir by `make`. */
const importAt = (format: string, make: (dir: string) => string = (d) => d, options: Record<string, unknown> = {}) => (ctx: CorpusContext): Send => ({
  method: 'datasets/import-benchmark',
  params: { format, path: make(ctx.dir), options },
});
const file = (name: string, text: string) => (dir: string) => {
  writeFileSync(join(dir, name), text);
  return join(dir, name);
};

const cases: BadInputCase[] = [
  // Envelopes
  { name: 'rpc: envelope is a string', send: raw('hello'), code: 'invalid-message', message: 'malformed request envelope' },
  { name: 'rpc: envelope is null', send: raw(null), code: 'invalid-message', message: 'malformed request envelope' },
  { name: 'rpc: envelope without a method', send: raw({ t: 'req', id: 1 }), code: 'invalid-message', message: 'malformed request envelope' },
  { name: 'rpc: envelope with a string id', send: raw({ t: 'req', id: 'one', method: 'app/info' }), code: 'invalid-message', message: 'malformed request envelope' },
  { name: 'rpc: wrong envelope type', send: raw({ t: 'res', id: 1, method: 'app/info' }), code: 'invalid-message', message: 'malformed request envelope' },
  { name: 'rpc: unknown method', send: call('app/launch-missiles', {}), code: 'unknown-method', message: 'unknown method "app/launch-missiles"' },
  { name: 'rpc: method name with a prototype key', send: call('__proto__', {}), code: 'unknown-method', message: 'unknown method' },
  { name: 'rpc: params an array', send: call('runs/get', [1, 2]), code: 'invalid-message', message: 'invalid params for runs/get' },
  { name: 'rpc: params a number', send: call('datasets/items', 7), code: 'invalid-message', message: 'invalid params for datasets/items' },
  { name: 'rpc: extra param key', send: call('runs/get', { runId: 'x', drop: 'tables' }), code: 'invalid-message', message: 'invalid params for runs/get' },
  { name: 'rpc: run id of the wrong type', send: call('runs/get', { runId: 42 }), code: 'invalid-message', message: 'invalid params for runs/get' },
  { name: 'rpc: negative offset', send: call('datasets/items', { datasetId: 'colour-at-point', offset: -1, limit: 5 }), code: 'invalid-message', message: 'invalid params for datasets/items' },
  { name: 'rpc: fractional limit', send: call('datasets/items', { datasetId: 'colour-at-point', offset: 0, limit: 2.5 }), code: 'invalid-message', message: 'invalid params for datasets/items' },
  { name: 'rpc: unknown execution provider', send: call('app/set-provider', { provider: 'quantum' }), code: 'invalid-message', message: 'invalid params for app/set-provider' },
  { name: 'rpc: dataset name over its length limit', send: call('datasets/create', { name: 'n'.repeat(500), task: 't' }), code: 'invalid-message', message: 'invalid params for datasets/create' },
  // Ids that do not exist
  { name: 'ids: unknown run', send: call('runs/get', { runId: 'no-such-run' }), code: 'not-found', message: 'no-such-run' },
  { name: 'ids: unknown tensor', send: call('tensors/get', { tensorId: 'no-such-tensor' }), code: 'not-found', message: 'no-such-tensor' },
  { name: 'ids: cancel an unknown run', send: call('jobs/cancel', { runId: 'no-such-run' }), code: 'not-found', message: 'no-such-run' },
  { name: 'ids: readout summary of an unknown run', send: call('readout/summary', { runId: 'no-such-run' }), code: 'not-found', message: 'no-such-run' },
  { name: 'ids: sweep summary of an unknown sweep', send: call('sweeps/summary', { sweepId: 'no-such-sweep' }), code: 'not-found', message: 'no-such-sweep' },
  { name: 'ids: job on an unknown model', send: withIds('jobs/start', (ctx) => ({ kind: 'encode-images', modelId: 'no-such-model', datasetId: ctx.bundledDatasetId, spec: {} })), code: 'not-found', message: 'no-such-model' },
  { name: 'ids: job on an unknown dataset', send: withIds('jobs/start', (ctx) => ({ kind: 'encode-images', modelId: ctx.modelId, datasetId: 'no-such-dataset', spec: {} })), code: 'not-found', message: 'no-such-dataset' },
  { name: 'ids: readout summary of an encode-images run', send: withIds('readout/summary', (ctx) => ({ runId: ctx.refRunId })), code: 'bad-input', message: 'not a readout' },
  { name: 'ids: kv probes of an encode-images run', send: withIds('kv/probes', (ctx) => ({ runId: ctx.refRunId })), code: 'bad-input', message: 'vlm-forward' },
  // Job specs
  { name: 'spec: unknown job kind', send: withIds('jobs/start', (ctx) => ({ kind: 'mine-bitcoin', modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec: {} })), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: readout with an unknown key', send: start({ blind: 'blank', shuffle: true }), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: readout blind baseline not offered', send: start({ blind: 'noise' }), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: readout generation over its cap', send: start({ generate: 10_000 }), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: readout scored by an unknown rule', send: start({ scoreBy: 'vibes' }), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: vlm-forward generating past its cap', send: start({ maxNewTokens: 100_000 }, 'vlm-forward'), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: vlm-forward storing an unknown dtype', send: start({ storeDtype: 'float8' }, 'vlm-forward'), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: a variant the model lacks', send: start({ variant: 'q4' }, 'vlm-forward'), code: 'bad-input', message: 'q4' },
  { name: 'spec: ablation edit without an op', send: start({ ablation: { edits: [{ part: 'vision', layers: [99] }] } }), code: 'invalid-message', message: 'invalid params for jobs/start' },
  { name: 'spec: text prefix carrying the image placeholder', send: start({ textPrefix: 'look: <image>' }, 'vlm-forward'), code: 'bad-input', message: /textPrefix (must not contain the image placeholder|contains the model's special token) <image>/ },
  // Sweeps
  { name: 'sweep: ablation of a vision layer the export lacks', send: sweep({ ablations: [{ edits: [{ ...BLOCK.edits[0], layers: [99] }] }] }), code: 'bad-input', message: '99' },
  { name: 'sweep: no ablations', send: sweep({ ablations: [] }), code: 'invalid-message', message: 'invalid params for sweeps/start' },
  { name: 'sweep: more labels than ablations', send: sweep({ labels: ['a', 'b'] }), code: 'bad-input', message: '1 ablation spec(s) but 2 label(s)' },
  { name: 'sweep: too few items for a readout', send: sweep({ base: { limit: 2 } }), code: 'bad-input', message: 'at least 5 items' },
  { name: 'sweep: summary with an unknown floor', send: call('sweeps/summary', { sweepId: 'x', floor: 'median' }), code: 'invalid-message', message: 'invalid params for sweeps/summary' },
  // Benchmark imports pointed at the wrong thing
  { name: 'import: unknown benchmark format', send: importAt('imagenet'), code: 'invalid-message', message: 'invalid params for datasets/import-benchmark' },
  { name: 'import: BLINK at an empty folder', send: importAt('blink'), code: 'bad-input', message: /parquet|BLINK/i },
  { name: 'import: CV-Bench at an empty folder', send: importAt('cv-bench'), code: 'bad-input', message: /parquet|CV-Bench/i },
  { name: 'import: RefCOCO at an empty folder', send: importAt('refcoco'), code: 'bad-input', message: /parquet|refs|RefCOCO/i },
  { name: 'import: SPair-71k at an empty folder', send: importAt('spair-71k'), code: 'bad-input', message: /SPair|PairAnnotation/ },
  { name: 'import: DAVIS at an empty folder', send: importAt('davis-2017'), code: 'bad-input', message: /DAVIS|JPEGImages/ },
  { name: 'import: PASCAL-Part at an empty folder', send: importAt('pascal-part'), code: 'bad-input', message: /Annotations_Part|PASCAL/ },
  { name: 'import: ImageNet-S at an empty folder', send: importAt('imagenet-s'), code: 'bad-input', message: /ImageNet-S|ImageNetS/ },
  { name: 'import: COCO at a folder, not a JSON', send: importAt('coco'), code: 'bad-input', message: /COCO|JSON|json/ },
  { name: 'import: COCO JSON that is not JSON', send: importAt('coco', file('instances.json', '{"images": [')), code: 'bad-input', message: 'not valid JSON' },
  { name: 'import: COCO JSON without images', send: importAt('coco', file('instances.json', '{"annotations": []}')), code: 'bad-input', message: /images/ },
  { name: 'import: COCO image escaping its folder', send: importAt('coco', file('instances.json', JSON.stringify({ images: [{ id: 1, file_name: '../../../etc/passwd', width: 4, height: 4 }], annotations: [], categories: [] }))), code: 'bad-input', message: /outside|escape|leav/ },
  { name: 'import: a path that does not exist', send: importAt('spair-71k', (d) => join(d, 'nope')), code: 'bad-input', message: /nope/ },
  { name: 'import: a negative limit', send: importAt('blink', (d) => d, { limit: -1 }), code: 'invalid-message', message: 'invalid params for datasets/import-benchmark' },
  { name: 'import: the repository itself as a DAVIS folder', send: importAt('davis-2017', () => REPO_ROOT), code: 'bad-input', message: /DAVIS|JPEGImages/ },
  { name: 'import: a Loupe dataset folder that is a file', send: (ctx) => ({ method: 'datasets/import', params: { path: file('dataset.json', 'not json')(ctx.dir) } }), code: 'bad-input', message: 'not valid JSON' },
  { name: 'import: a Loupe dataset folder with a nested folder for images', send: (ctx) => {
    mkdirSync(join(ctx.dir, 'x.png'));
    writeFileSync(join(ctx.dir, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'n', task: 't', items: [{ id: 'a', images: ['x.png'], labels: [] }] }));
    return { method: 'datasets/import', params: { path: ctx.dir } };
  }, code: 'bad-input', message: 'image x.png is not a file' },
];

runBadInputCorpus('bad-input corpus: RPC payloads, specs, benchmark imports', cases);
