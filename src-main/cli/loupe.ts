#!/usr/bin/env node
/**
 * `loupe` — headless jobs over the same engine the desktop app uses.
 *
 *   loupe serve   [--port 0 | $LOUPE_PORT] [--host 127.0.0.1] [--allow-host NAME,…] [--token T (≥ 128 bits)]   serve the workbench to a browser
 *   loupe run     --model ID --dataset ID|PATH [--kind vlm-forward|encode-images|readout] [--spec JSON] [--limit N] [--dtype float16|float32]
 *                 [--variant q4 | --variant decoder_model_merged=q4,vision_encoder=fp32]   which dtype export of each ONNX session to load
 *   loupe resume  [--run ID] [--retry-failed]   finish interrupted runs (all, or one); --retry-failed also re-runs the failed items
 *                 of partial/failed runs. `run` and `resume` print failed items' reasons and exit 1 if a run ends partial or failed
 *   loupe cancel  --run ID
 *   loupe variants --model ID        the dtype exports each session of a model has
 *   loupe sweep   --model ID --dataset ID [--limit N] [--variant …] [--family vision-patches|vision-single|llm-text-image|llm-image-image]
 *                 [--from first|last] [--keys patches|all]   compensation sweep (default: patch↔patch blocked in the last k vision layers;
 *                 --keys all blocks patch → every other token, CLS included)
 *   loupe kv-segmentation --run ID   zero-shot segmentation from image K/V tokens of a vlm-forward run (taps.imageKV)
 *   loupe kv-probes --run ID [--alpha 0.1] [--k 5] [--shots 8]   segmentation (zero- and few-shot), correspondence PCK, mask propagation, referring boxes from K/V tokens
 *   loupe kv-key-tokens --run ID [--max-per-layer 5] [--threshold 0.25] [--input-floor 0] [--block]   input-agnostic image key tokens per LLM layer;
 *                      --block also runs the vlm-forward with text → those tokens blocked and prints kv-compare against the run
 *   loupe kv-compare --base ID --run ID [--alpha 0.1] [--k 5]   answer accuracy and K/V probes of two vlm-forward runs, with deltas
 *   loupe readout-summary --run ID   stage-wise readout vs answer vs blind of a readout run
 *   loupe parts-logit-lens --run ID [--ablated ID,…] [--parts car/wheel,…] [--top-k 5]   object-part LogitLens ranks per part × LLM layer
 *                      of vlm-forward runs with taps.llmLayers, and each ablated run's recovery per layer;
 *                      or --model ID --dataset ID [--limit N] [--family …] [--from …] [--keys …] [--heads 0,2] [--prompt TEXT] to run the intact and
 *                      ablated vlm-forward runs first (float32 hidden states; --heads limits the sweep's edits to those heads)
 *   loupe worker  --queue redis://HOST:PORT [--store DIR] [--ep cpu|cuda|webgpu] [--concurrency N] [--name NAME] [--lock-ms 30000]
 *                 take shards of runs from a Redis queue (docs/scale-out.md); `run` and `sweep` take --queue URL [--store DIR]
 *                 [--shard-items N] to send their runs there and merge the results here
 *   loupe info | models | datasets | runs
 *   loupe import-dataset PATH | import-model PATH
 * Common: --data-dir DIR (default $LOUPE_DATA_DIR or ~/.local/share/loupe), --provider cpu|webgpu|cuda|…
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type SweepFamily, modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import { ExecutionProvider } from '../../src-shared/contract/domain.ts';
import { LoupeError, toErrorPayload } from '../../src-shared/contract/errors.ts';
import { type ModelVariant, parseVariantFlag } from '../../src-shared/jobs/variant.ts';
import { dispatch } from '../engine/dispatcher.ts';
import { Engine } from '../engine/engine.ts';
import { reportFailedRuns } from './failed-runs.ts';
import { CLUSTER_OPTIONS, closeCluster, clusterTarget, runWorkerCommand, waitForCluster } from '../cluster/cluster-commands.ts';
import { RENDERER_DIST, RESOURCES_DIR, appVersion, defaultDataDir } from '../paths.ts';
import { resolveServeOptions } from '../server/serve-options.ts';
import { serve } from '../server/serve.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    'data-dir': { type: 'string' },
    provider: { type: 'string' },
    // serve: --port beats $LOUPE_PORT beats 0 (any free port), so no parseArgs default here (serve-options.ts).
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    token: { type: 'string' },
    'allow-host': { type: 'string' },
    model: { type: 'string' },
    dataset: { type: 'string' },
    run: { type: 'string' },
    limit: { type: 'string', default: '0' },
    kind: { type: 'string', default: 'encode-images' },
    spec: { type: 'string', default: '{}' },
    dtype: { type: 'string' },
    variant: { type: 'string' },
    alpha: { type: 'string' },
    k: { type: 'string' },
    shots: { type: 'string' },
    'max-per-layer': { type: 'string' },
    threshold: { type: 'string' },
    'input-floor': { type: 'string' },
    block: { type: 'boolean', default: false },
    'retry-failed': { type: 'boolean', default: false },
    base: { type: 'string' },
    family: { type: 'string', default: 'vision-patches' },
    from: { type: 'string' },
    keys: { type: 'string' },
    ablated: { type: 'string' },
    parts: { type: 'string' },
    'top-k': { type: 'string' },
    heads: { type: 'string' },
    ...CLUSTER_OPTIONS,
    prompt: { type: 'string' },
  },
});

const [command = 'help', arg] = positionals;

/** `--family` / `--from` / `--keys` as a sweep family; anything else is a bad-input error naming the choices. */
function sweepFamily(): SweepFamily {
  const one = <T extends string>(flag: string, value: string | undefined, choices: readonly T[], fallback: T): T => {
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value)) throw new LoupeError('bad-input', `--${flag} must be one of ${choices.join(', ')}, not "${value}"`);
    return value as T;
  };
  const kind = one('family', values.family, ['vision-patches', 'vision-single', 'llm-text-image', 'llm-image-image'] as const, 'vision-patches');
  const keys = one('keys', values.keys, ['patches', 'all'] as const, 'patches');
  if (kind === 'vision-single') return { kind, keys };
  if (kind === 'vision-patches') return { kind, keys, from: one('from', values.from, ['first', 'last'] as const, 'last') };
  return { kind, from: one('from', values.from, ['first', 'last'] as const, 'first') };
}

/** `--variant` as a spec field (`{}` when absent); a malformed value is a bad-input error. */
function variantOption(): { variant?: ModelVariant } {
  if (values.variant === undefined) return {};
  try {
    return { variant: parseVariantFlag(values.variant) };
  } catch (e) {
    throw new LoupeError('bad-input', (e as Error).message);
  }
}
const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

async function call(engine: Engine, method: string, params: unknown): Promise<unknown> {
  const { response } = await dispatch(engine.handlers, { t: 'req', id: 1, method, params });
  if (!response.ok) throw LoupeError.from(response.error);
  return response.result;
}

async function main(): Promise<void> {
  if (command === 'help') {
    process.stdout.write('usage: loupe serve|run|resume|cancel|info|models|variants|datasets|runs|import-dataset|import-model (see src-main/cli/loupe.ts)\n');
    return;
  }
  if (command === 'worker') return runWorkerCommand(values);
  // A weak --token or a bad port is refused before the engine starts.
  const serveOptions = command === 'serve' ? resolveServeOptions(values, process.env) : undefined;
  const provider = values.provider ? ExecutionProvider.parse(values.provider) : undefined;
  const engine = await Engine.start({ dataDir: values['data-dir'] ?? defaultDataDir(), resourcesDir: RESOURCES_DIR, host: 'server', version: appVersion(), ...(provider && { provider }) });
  // Progress goes to stdout as JSON lines, so scripts (and the kill-and-resume test) can follow a run.
  engine.onEvent((name, payload) => {
    if (command !== 'serve') print({ event: name, ...(payload as object) });
  });
  const stop = async () => {
    await closeCluster(engine);
    await engine.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  switch (command) {
    case 'serve': {
      if (!existsSync(RENDERER_DIST)) throw new LoupeError('not-found', `the renderer is not built (${RENDERER_DIST}); run \`npm run build:renderer\` or \`npm start\``);
      const s = await serve(engine, { ...serveOptions!, staticRoot: RENDERER_DIST });
      process.stdout.write(`Loupe workbench: ${s.url}\n(execution provider: ${engine.compute.provider}; data: ${engine.options.dataDir})\n`);
      return; // keep running
    }
    case 'run': {
      if (!values.model || !values.dataset) throw new LoupeError('bad-input', 'loupe run needs --model and --dataset');
      const datasetId = existsSync(values.dataset) ? engine.importDataset(values.dataset).id : values.dataset;
      let extra: object;
      try {
        extra = JSON.parse(values.spec!) as object;
      } catch {
        throw new LoupeError('bad-input', `--spec is not JSON: ${values.spec}`);
      }
      const spec = { limit: Number(values.limit), ...(values.dtype && { storeDtype: values.dtype }), ...variantOption(), ...extra };
      const run = (await call(engine, 'jobs/start', { kind: values.kind, modelId: values.model, datasetId, spec, ...clusterTarget(values) })) as { id: string };
      await (values.queue ? waitForCluster(engine, [run.id]) : engine.queue.drained());
      print({ result: engine.store.runs.get(run.id) });
      if (reportFailedRuns(engine.store, [run.id], print, (id) => engine.queue.unsavedStop(id))) process.exitCode = 1;
      break;
    }
    case 'resume': {
      // The runs this call finishes: those the engine re-queued on start, plus --run (or every partial/failed run with --retry-failed).
      const { current, waiting } = engine.queue.snapshot();
      const touched = [...(current ? [current] : []), ...waiting];
      if (values['retry-failed']) {
        const ids = values.run ? [values.run] : engine.store.runs.list().filter((r) => r.status === 'partial' || r.status === 'failed').map((r) => r.id);
        for (const runId of ids) touched.push(((await call(engine, 'runs/retry-failed', { runId })) as { id: string }).id);
      } else if (values.run) touched.push(((await call(engine, 'jobs/resume', { runId: values.run })) as { id: string }).id);
      await engine.queue.drained();
      print({ result: engine.store.runs.list() });
      if (reportFailedRuns(engine.store, touched, print, (id) => engine.queue.unsavedStop(id))) process.exitCode = 1;
      break;
    }
    case 'sweep': {
      // Default: patch→other-patch attention blocked in the last k vision layers, k = 1…L (sweep-grid.ts families).
      if (!values.model || !values.dataset) throw new LoupeError('bad-input', 'loupe sweep needs --model and --dataset');
      const grid = sweepGrid(sweepFamily(), modelShape(engine.store.models.get(values.model).config));
      const started = (await call(engine, 'sweeps/start', { modelId: values.model, datasetId: values.dataset, name: `${values.family} · ${values.dataset}`, base: { limit: Number(values.limit), ...variantOption() }, ablations: grid.map((g) => g.spec), labels: grid.map((g) => g.label), ...clusterTarget(values) })) as { sweepId: string; runIds: string[] };
      await (values.queue ? waitForCluster(engine, started.runIds) : engine.queue.drained());
      print(await call(engine, 'sweeps/summary', { sweepId: started.sweepId }));
      break;
    }
    case 'kv-segmentation':
      print(await call(engine, 'kv/segmentation', { runId: values.run }));
      break;
    case 'kv-probes':
      print(await call(engine, 'kv/probes', { runId: values.run, ...(values.alpha && { alpha: Number(values.alpha) }), ...(values.k && { k: Number(values.k) }), ...(values.shots && { shots: Number(values.shots) }) }));
      break;
    case 'kv-key-tokens': {
      const found = (await call(engine, 'kv/key-tokens', {
        runId: values.run,
        ...(values['max-per-layer'] && { maxPerLayer: Number(values['max-per-layer']) }),
        ...(values.threshold && { threshold: Number(values.threshold) }),
        ...(values['input-floor'] && { inputFloor: Number(values['input-floor']) }),
      })) as { blockingRun: object | null };
      print(found);
      if (values.block) {
        if (!found.blockingRun) throw new LoupeError('bad-input', 'no key token is flagged under this threshold: nothing to block');
        const blocked = (await call(engine, 'jobs/start', found.blockingRun)) as { id: string };
        await engine.queue.drained();
        print({ result: engine.store.runs.get(blocked.id) });
        print(await call(engine, 'kv/compare', { baseRunId: values.run, runId: blocked.id }));
      }
      break;
    }
    case 'kv-compare':
      print(await call(engine, 'kv/compare', { baseRunId: values.base, runId: values.run, ...(values.alpha && { alpha: Number(values.alpha) }), ...(values.k && { k: Number(values.k) }) }));
      break;
    case 'parts-logit-lens': {
      const list = (v: string | undefined) => (v ? v.split(',').filter((x) => x.length > 0) : undefined);
      let runIds = [values.run, ...(list(values.ablated) ?? [])].filter((x): x is string => x !== undefined);
      if (!values.run) {
        // No run given: the intact run and the sweep family's ablated runs, as vlm-forward runs with float32 hidden states.
        if (!values.model || !values.dataset) throw new LoupeError('bad-input', 'loupe parts-logit-lens needs --run, or --model and --dataset to run the sweep first');
        const heads = list(values.heads)?.map(Number);
        if (heads && !heads.every((h) => Number.isInteger(h) && h >= 0)) throw new LoupeError('bad-input', `--heads must be head indices, not "${values.heads}"`);
        const grid = sweepGrid(sweepFamily(), modelShape(engine.store.models.get(values.model).config));
        const datasetId = existsSync(values.dataset) ? engine.importDataset(values.dataset).id : values.dataset;
        // --prompt asks datasets without questions (PASCAL-Part) something; an item's own prompt wins.
        const base = { limit: Number(values.limit), storeDtype: 'float32', taps: { llmLayers: true }, ...(values.prompt && { prompt: values.prompt }), ...variantOption() };
        const specs = [undefined, ...grid.map((g) => ({ edits: g.spec.edits.map((e) => (heads && e.op !== 'zero' && e.op !== 'mean' ? { ...e, heads } : e)) }))];
        runIds = [];
        for (const [i, ablation] of specs.entries()) {
          const name = `parts · ${i === 0 ? 'intact' : grid[i - 1]!.label}${heads ? ` · heads ${heads.join(',')}` : ''}`;
          runIds.push(((await call(engine, 'jobs/start', { kind: 'vlm-forward', modelId: values.model, datasetId, name, spec: { ...base, ...(ablation && { ablation }) } })) as { id: string }).id);
        }
        await engine.queue.drained();
      }
      print(await call(engine, 'parts/logit-lens', { runIds, ...(list(values.parts) && { parts: list(values.parts) }), ...(values['top-k'] && { topK: Number(values['top-k']) }) }));
      break;
    }
    case 'readout-summary':
      print(await call(engine, 'readout/summary', { runId: values.run }));
      break;
    case 'cancel':
      print(await call(engine, 'jobs/cancel', { runId: values.run }));
      break;
    case 'info':
      print(await call(engine, 'app/info', {}));
      break;
    case 'models':
      print(await call(engine, 'models/list', {}));
      break;
    case 'variants':
      print(await call(engine, 'models/variants', { modelId: values.model ?? arg }));
      break;
    case 'datasets':
      print(await call(engine, 'datasets/list', {}));
      break;
    case 'runs':
      print(await call(engine, 'runs/list', {}));
      break;
    case 'import-dataset':
      print(await call(engine, 'datasets/import', { path: arg }));
      break;
    case 'import-model':
      print(engine.importModel(String(arg)));
      break;
    default:
      throw new LoupeError('bad-input', `unknown command "${command}"`);
  }
  await closeCluster(engine);
  await engine.close();
}

main().catch((e) => {
  const p = toErrorPayload(e);
  process.stderr.write(`loupe: ${p.code}: ${p.message}\n`);
  process.exit(1);
});
