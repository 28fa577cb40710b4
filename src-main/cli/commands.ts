/**
 * The command table: every `loupe` command with its summary, arguments, flags (type, default,
 * allowed values, description) and handler. Parsing (parse-args.ts), `--help` and the usage line
 * (help.ts) are generated from it, so a command or flag added here is parsed and documented at once.
 */
import { BENCHMARK_FORMATS, BENCHMARK_SOURCES } from '../../src-shared/dataset/benchmarks.ts';
import { ExecutionProvider, JobKind } from '../../src-shared/contract/domain.ts';
import { parseVariantFlag } from '../../src-shared/jobs/variant.ts';
import { defaultDataDir } from '../paths.ts';
import type { CommandSpec, FlagSpec, Flags } from './command-spec.ts';
import type { CliContext } from './context.ts';

// Handlers load on use, so `--help` and a typo answer without loading the engine and ONNX Runtime.
type Handlers<M> = { [K in keyof M as M[K] extends (ctx: CliContext) => Promise<void> ? K : never]: M[K] };
const lazyHandlers =
  <M>(load: () => Promise<M>) =>
  (name: keyof Handlers<M>) =>
  async (ctx: CliContext): Promise<void> =>
    ((await load())[name] as (ctx: CliContext) => Promise<void>)(ctx);
const runs = lazyHandlers(() => import('./run-commands.ts'));
const analysis = lazyHandlers(() => import('./analysis-commands.ts'));
const library = lazyHandlers(() => import('./library-commands.ts'));

const checked = (f: (raw: string) => unknown) => (raw: string) => {
  try {
    f(raw);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
};

/** Every command takes these. */
export const GLOBAL_FLAGS: Flags = {
  'data-dir': { type: 'string', placeholder: 'DIR', description: `the data folder (SQLite database + tensor blobs); default $LOUPE_DATA_DIR or ${defaultDataDir()}` },
  provider: { type: 'string', placeholder: 'EP', choices: ExecutionProvider.options, description: 'execution provider for ONNX Runtime; default: the best one available' },
  json: { type: 'boolean', description: 'machine-readable output: every engine event and result as one JSON line on stdout' },
  help: { type: 'boolean', description: 'this help' },
};

// Flags shared by several commands: one definition, so a name has one type everywhere.
const model: FlagSpec = { type: 'string', placeholder: 'ID', description: 'model id (loupe models)' };
const dataset: FlagSpec = { type: 'string', placeholder: 'ID|PATH', description: 'dataset id (loupe datasets), or a dataset folder to import first' };
const run: FlagSpec = { type: 'string', placeholder: 'ID', description: 'run id (loupe runs)' };
const limit: FlagSpec = { type: 'integer', placeholder: 'N', min: 0, default: 0, description: 'at most N items (0 = all)' };
const variant: FlagSpec = {
  type: 'string',
  placeholder: 'DTYPE|SESSION=DTYPE,…',
  check: checked(parseVariantFlag),
  description: 'which dtype export of each ONNX session to load: one dtype for all (q4) or per session (decoder_model_merged=q4,vision_encoder=fp32); loupe variants lists them',
};
const family: FlagSpec = {
  type: 'string',
  placeholder: 'FAMILY',
  choices: ['vision-patches', 'vision-single', 'llm-text-image', 'llm-image-image'],
  default: 'vision-patches',
  description: 'which attention edges the sweep blocks: patch↔patch in k vision layers, one vision layer at a time, text→image or image→image in k LLM layers',
};
const from: FlagSpec = { type: 'string', choices: ['first', 'last'], description: 'grow the k-layer window from the first or the last layer (default: last for vision-patches, first for the llm families)' };
const keys: FlagSpec = { type: 'string', choices: ['patches', 'all'], description: 'vision families: block patch → other patches, or patch → every other token (CLS included); default patches' };
const alpha: FlagSpec = { type: 'number', placeholder: 'A', min: 0, max: 1, description: "PCK@α threshold as a fraction of the target bounding box's longer side (SPair; the image size for items without a box); default 0.05, 0.1 and 0.15 are all reported" };
const k: FlagSpec = { type: 'integer', placeholder: 'K', min: 1, max: 64, description: 'neighbours for mask-propagation voting (contract default 5)' };
const queue: FlagSpec = { type: 'string', placeholder: 'URL', description: 'send the runs to a Redis cluster queue (redis://HOST:PORT, docs/scale-out.md) and merge the results here' };
const store: FlagSpec = { type: 'string', placeholder: 'DIR', description: 'the shared result store the workers write to, as this machine sees it (default <data dir>/cluster-results), with --queue' };
const shardItems: FlagSpec = { type: 'integer', placeholder: 'N', min: 1, description: 'items per shard sent to the queue (default 8), with --queue' };

const listOfIndices = checked((raw) => {
  if (!raw.split(',').every((h) => /^\d+$/.test(h.trim()))) throw new Error(`must be layer indices (0,2,…), not "${raw}"`);
});
const listOfHeads = checked((raw) => {
  if (!raw.split(',').every((h) => /^\d+$/.test(h.trim()))) throw new Error(`must be head indices (0,2,…), not "${raw}"`);
});

const FORMAT_NOTES: Record<(typeof BENCHMARK_FORMATS)[number], string> = {
  blink: '--subset subtask folder names; --split val|test',
  'cv-bench': '--subset task or type names; --split a file split',
  'spair-71k': '--split trn|val|test (default test) or small/<split>; --subset categories',
  'davis-2017': '--split an ImageSets/2017 list (default val); --subset sequence names',
  refcoco: '--subset refcoco, refcoco+, refcocog; --split val|testA|testB|…',
  'pascal-part': '--split a VOC2010 list; --subset object classes',
  coco: '--split the image folder name; --subset category names',
  'imagenet-s': '--split validation (default) or train-semi; --subset 50|300|919 (when the folder name does not tell) and/or wnids or class names',
};

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'run',
    group: 'Run',
    summary: 'run a job over a dataset and wait for it; prints the run id on its own line',
    flags: {
      model: { ...model, required: true },
      dataset: { ...dataset, required: true },
      kind: { type: 'string', choices: JobKind.options, default: 'encode-images', description: 'what to compute: image features, a VLM forward pass (answers, text, captures), or the stage readout experiment' },
      spec: {
        type: 'string',
        placeholder: 'JSON',
        default: '{}',
        check: checked((raw) => {
          const v: unknown = JSON.parse(raw);
          if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`must be a JSON object, not ${raw}`);
        }),
        description: 'the job spec as a JSON object (taps, ablation, image, blind, …); its fields win over the flags',
      },
      limit,
      dtype: { type: 'string', choices: ['float16', 'float32'], description: 'dtype the captured tensors are stored in (the spec default is float16)' },
      variant,
      queue,
      store,
      'shard-items': shardItems,
    },
    details: ['Progress goes to stderr (a bar on a terminal); failed items are listed with their reasons, and the exit status is 1 if the run ends partial or failed.', 'example: loupe run --kind readout --model micro-llava --dataset relative-depth --limit 24'],
    handler: runs('runCommand'),
  },
  {
    name: 'resume',
    group: 'Run',
    summary: 'finish runs a crash or kill interrupted (all, or one); retry failed items',
    flags: {
      run: { ...run, description: 'only this run (default: every interrupted run)' },
      'retry-failed': { type: 'boolean', description: 'also re-run the failed items of partial/failed runs (of --run, or all)' },
    },
    handler: runs('resumeCommand'),
  },
  { name: 'cancel', group: 'Run', summary: 'cancel a queued or running run', flags: { run: { ...run, required: true } }, handler: runs('cancelCommand') },
  {
    name: 'sweep',
    group: 'Run',
    summary: 'compensation sweep: an intact readout run plus one per ablation, summarised as recovery per stage',
    flags: { model: { ...model, required: true }, dataset: { ...dataset, required: true, placeholder: 'ID', description: 'dataset id (loupe datasets)' }, limit, variant, family, from, keys, queue, store, 'shard-items': shardItems },
    details: [
      'Default: patch→other-patch attention blocked in the last k vision layers, k = 1…L. Prints the sweep id on its own line, then accuracy per stage and recovery = (ablated − floor) / (intact − floor) with 95% intervals; "n/d" where the intact readout is within noise of the floor.',
      'examples:\n  loupe sweep --model micro-llava --dataset count\n  loupe sweep --model micro-llava --dataset count --keys all --from first\n  loupe sweep --model micro-llava --dataset count --family vision-single --keys all',
    ],
    handler: runs('sweepCommand'),
  },
  { name: 'readout-summary', group: 'Analyse', summary: 'stage-wise readout vs answer vs blind of a readout run, with 95% intervals', flags: { run: { ...run, required: true } }, handler: analysis('readoutSummaryCommand') },
  { name: 'kv-segmentation', group: 'Analyse', summary: 'zero-shot segmentation from the image K/V tokens of a vlm-forward run (taps.imageKV)', flags: { run: { ...run, required: true } }, handler: analysis('kvSegmentationCommand') },
  {
    name: 'kv-probes',
    group: 'Analyse',
    summary: 'K/V-token probes per LLM layer: segmentation (zero/few-shot), correspondence PCK, mask propagation, referring boxes',
    flags: {
      run: { ...run, required: true },
      alpha,
      k,
      shots: { type: 'integer', placeholder: 'N', min: 1, max: 1024, description: 'items the few-shot classifier trains on (contract default 8)' },
      layers: { type: 'list', placeholder: 'L,…', check: listOfIndices, description: 'probe only these LLM layers (the probes run ≥ 20 shuffled controls each: restrict on large benchmarks)' },
      permutations: { type: 'integer', placeholder: 'N', min: 20, max: 1000, description: 'shuffled controls per figure (contract default 20)' },
    },
    handler: analysis('kvProbesCommand'),
  },
  {
    name: 'kv-key-tokens',
    group: 'Analyse',
    summary: 'input-agnostic image key tokens per LLM layer; --block runs the model with text → them blocked and compares',
    flags: {
      run: { ...run, required: true },
      'max-per-layer': { type: 'integer', placeholder: 'N', min: 1, max: 1000, description: 'flag at most N tokens per layer (contract default 5)' },
      threshold: { type: 'number', placeholder: 'T', min: 0, max: 1, description: 'flag tokens whose key variance is below T × the layer median (contract default 0.25)' },
      'input-floor': { type: 'number', placeholder: 'F', min: 0, max: 10, description: "also require the token's input to vary (normalised input variance ≥ F; 0 = off)" },
      block: { type: 'boolean', description: 'run the vlm-forward with text → the flagged tokens blocked, then kv-compare it with the run' },
    },
    handler: analysis('kvKeyTokensCommand'),
  },
  {
    name: 'kv-compare',
    group: 'Analyse',
    summary: 'two vlm-forward runs side by side: answer accuracy and K/V probes, with other − base deltas',
    flags: { base: { ...run, required: true, description: 'the baseline run id' }, run: { ...run, required: true, description: 'the run compared with it' }, alpha, k },
    handler: analysis('kvCompareCommand'),
  },
  {
    name: 'parts-logit-lens',
    group: 'Analyse',
    summary: 'object-part LogitLens ranks per part × LLM layer, and recovery per layer of ablated runs',
    flags: {
      run: { ...run, description: 'the intact vlm-forward run (taps.llmLayers); or give --model and --dataset to run the sweep first' },
      ablated: { type: 'list', placeholder: 'ID,…', description: 'ablated runs of the same model and dataset, each compared with --run' },
      parts: { type: 'list', placeholder: 'PART,…', description: 'only these parts: car/wheel or bare part names' },
      'top-k': { type: 'integer', placeholder: 'K', min: 1, max: 100000, description: 'a rank ≤ K is a hit (contract default 5)' },
      model: { ...model, description: 'without --run: the model to run the intact and ablated vlm-forward runs on' },
      dataset: { ...dataset, description: 'without --run: the dataset (id or folder) to run them on' },
      limit,
      family,
      from,
      keys,
      heads: { type: 'list', placeholder: 'H,…', check: listOfHeads, description: "limit the sweep's edits to these attention heads" },
      prompt: { type: 'string', placeholder: 'TEXT', description: 'the question for items without one (PASCAL-Part); an item’s own prompt wins' },
      variant,
    },
    details: ['Without --run the intact run and one per sweep ablation are run first (float32 hidden states), their ids printed one per line.'],
    handler: analysis('partsLogitLensCommand'),
  },
  { name: 'runs', group: 'Library', summary: 'the runs in the data folder, newest first', flags: { status: { type: 'string', choices: ['queued', 'running', 'paused', 'cancelled', 'failed', 'partial', 'done'], description: 'only runs in this state' } }, handler: library('runsCommand') },
  { name: 'models', group: 'Library', summary: 'the registered models (bundled and imported)', flags: {}, handler: library('modelsCommand') },
  { name: 'variants', group: 'Library', summary: 'the dtype exports each ONNX session of a model has', args: [{ name: 'MODEL', description: 'model id (or --model ID)' }], flags: { model }, handler: library('variantsCommand') },
  { name: 'datasets', group: 'Library', summary: 'the datasets (bundled and imported)', flags: {}, handler: library('datasetsCommand') },
  { name: 'import-dataset', group: 'Library', summary: 'import a Loupe dataset folder (dataset.json + images)', args: [{ name: 'PATH', description: 'the dataset folder', required: true }], flags: {}, handler: library('importDatasetCommand') },
  { name: 'import-model', group: 'Library', summary: 'register a model folder (transformers.js / onnx-community layout)', args: [{ name: 'PATH', description: 'the model folder (config.json, onnx/…)', required: true }], flags: {}, handler: library('importModelCommand') },
  {
    name: 'import-benchmark',
    group: 'Library',
    summary: 'import a downloaded benchmark in its published layout as a dataset, with a progress bar',
    args: [{ name: 'PATH', description: 'the downloaded benchmark (see the formats below)', required: true }],
    flags: {
      format: { type: 'string', placeholder: 'FORMAT', choices: BENCHMARK_FORMATS, required: true, description: 'the benchmark’s published format' },
      split: { type: 'string', placeholder: 'SPLIT', description: 'a split as the benchmark names it (val, test, …)' },
      subset: { type: 'list', placeholder: 'A,B,…', description: 'subtasks / categories / variants to keep (per format, below)' },
      limit: { ...limit, description: 'keep at most N items (0 = all)' },
    },
    details: [`formats (PATH is …; what --split and --subset select):\n${BENCHMARK_FORMATS.map((f) => `  ${f}: ${BENCHMARK_SOURCES[f]}; ${FORMAT_NOTES[f]}`).join('\n')}`, 'Nothing is downloaded; a failed import leaves no dataset behind.'],
    handler: library('importBenchmarkCommand'),
  },
  { name: 'info', group: 'Library', summary: 'version, execution providers and the data folder', flags: {}, handler: library('infoCommand') },
  {
    name: 'serve',
    group: 'Serve',
    summary: 'serve the workbench to a browser (binds 127.0.0.1; a per-launch token in the URL)',
    flags: {
      port: { type: 'string', placeholder: 'PORT', description: 'port to listen on; default $LOUPE_PORT, else any free port (0)' },
      host: { type: 'string', placeholder: 'HOST', default: '127.0.0.1', description: 'interface to bind; tunnel (ssh -L) rather than binding a public one' },
      'allow-host': { type: 'string', placeholder: 'NAME,…', description: 'Host header names accepted beyond loopback' },
      token: { type: 'string', placeholder: 'T', description: 'the access token (at least 128 bits); default a fresh random one' },
    },
    handler: runs('serveCommand'),
  },
  {
    name: 'worker',
    group: 'Cluster',
    summary: 'take shards of runs from a Redis queue and compute them (docs/scale-out.md)',
    engine: false,
    flags: {
      queue: { ...queue, description: 'the queue: redis://HOST:PORT (rediss:// for TLS); default $LOUPE_QUEUE, which keeps a password out of `ps`' },
      store: { ...store, description: 'the result store as this machine sees it, if mounted elsewhere than the coordinator says' },
      ep: { type: 'string', placeholder: 'EP', choices: ExecutionProvider.options, description: 'execution provider of this worker (default --provider, else the best available)' },
      concurrency: { type: 'integer', placeholder: 'N', min: 1, default: 1, description: 'shards computed at once' },
      name: { type: 'string', placeholder: 'NAME', description: 'this worker’s name in progress and provenance (default host:pid)' },
      'lock-ms': { type: 'integer', placeholder: 'MS', min: 1, default: 30000, description: 'how long a shard stays locked without a heartbeat before another worker takes it over' },
    },
    details: ['Runs until SIGINT/SIGTERM; a stopped worker’s shard is taken over by another, which skips the items already stored.'],
    handler: runs('workerCommand'),
  },
];
