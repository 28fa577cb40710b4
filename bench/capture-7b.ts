/**
 * Capture at 7B scale (`node bench/capture-7b.ts [options]`; `npm run bench:7b`). On a generated
 * LLaVA-1.5-7B-shaped model (tools/bench/build_7b_shaped.py: CLIP-L 577×1024 / 16 heads, Llama
 * 4096 wide / 32 heads, ~600-token prompt; few layers, low-rank weights; built on first use
 * under .cache/bench-7b/), every figure next to a baseline from the same run:
 *
 *  1. fp16 conversion: elements/s of f32ToF16 (and bf16) on one core; `--exhaustive` also checks
 *     all 2^32 patterns against PyTorch's hash (tests/fixtures/fp16/reference.json).
 *  2. capture forward ÷ plain forward: image K/V + hidden states at 8 LLM layers, fp16 — converted
 *     by the runtime (in-graph Cast, as vlm-forward runs do) and, for comparison, in the compute
 *     worker (forward only, and forward + store);
 *  3. store throughput ÷ raw fs write (writeSync + fsync of the same byte count, same folder);
 *  4. peak RSS of a vlm-forward run of `--items` items ÷ one of `--few` items (child processes);
 *  5. an fp32 all-taps item on the 32-layer model (`--no-big` skips): stored (> 2 GiB), read back
 *     whole and hash-checked, then one layer's K/V read as a slice (bytes read counted);
 *  6. size estimate (capture-plan.ts, from config shapes) ÷ bytes written.
 * Results: printed, and written to bench/results/capture-7b-<time>.json.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { f32ToBf16, f32ToF16 } from '../src-shared/tensor/half.ts';
import { ComputeClient } from '../src-main/compute/compute-client.ts';
import { openModelFolder } from '../src-main/engine/model-folder.ts';
import { resolveTaps } from '../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../src-main/engine/vlm/vlm.ts';
import { BlobStore, type LazyTensor } from '../src-main/store/blob-store.ts';
import { applyCapture, captureShape } from '../src-shared/tensor/capture-ops.ts';
import type { HostTensor } from '../src-shared/tensor/dtype.ts';
import { type ModelDims, estimateItemBytes, fp16InGraph, planCapture, withFp16Sources } from '../src-main/jobs/capture-plan.ts';
import { REPO_ROOT } from '../src-main/paths.ts';
import { TapSelection } from '../src-shared/jobs/specs.ts';

const { values: opt } = parseArgs({
  options: {
    items: { type: 'string', default: '200' },
    few: { type: 'string', default: '10' },
    reps: { type: 'string', default: '5' },
    exhaustive: { type: 'boolean', default: false },
    'no-big': { type: 'boolean', default: false },
    'no-rss': { type: 'boolean', default: false },
    'store-only': { type: 'boolean', default: false },
    child: { type: 'string' },
    data: { type: 'string' },
  },
});
const CACHE = join(REPO_ROOT, '.cache', 'bench-7b');
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const PROMPT = 'what colour is the object at the marker';
const SELECTION = TapSelection.parse({ imageKV: true, llmLayers: true, layers: [0, 1, 2, 3, 4, 5, 6, 7] });

function model(layers: number): string {
  const dir = join(CACHE, layers === 8 ? 'model' : `model-${layers}`);
  if (!existsSync(join(dir, 'onnx', 'decoder_model_merged.onnx'))) {
    console.error(`building the 7B-shaped model (${layers} LLM layers) in ${dir} …`);
    const r = spawnSync(PY, [join(REPO_ROOT, 'tools/bench/build_7b_shaped.py'), dir, '--text-layers', String(layers)], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`tools/bench/build_7b_shaped.py failed (needs torch: Debian's python3)`);
  }
  return dir;
}

/** A dataset of `n` distinct noise images (distinct, so no two items' captures dedupe). */
function dataset(root: string, n: number): string {
  const dir = join(root, `items-${n}`);
  mkdirSync(join(dir, 'images'), { recursive: true });
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const items = [];
  for (let i = 0; i < n; i++) {
    const png = new PNG({ width: 64, height: 64 });
    for (let p = 0; p < png.data.length; p++) png.data[p] = p % 4 === 3 ? 255 : rnd();
    const file = `images/item-${i}.png`;
    writeFileSync(join(dir, file), PNG.sync.write(png));
    items.push({ id: `item-${String(i).padStart(4, '0')}`, images: [file], prompt: PROMPT });
  }
  writeFileSync(join(dir, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: `bench-7b-${n}`, task: 'bench', items }));
  return dir;
}

function dimsOf(folder: ReturnType<typeof openModelFolder>): ModelDims & { hidden: number; kvHeads: number; headDim: number; visionHidden: number; visionTokens: number } {
  const t = folder.config.text_config as Record<string, number>;
  const v = folder.config.vision_config as Record<string, number>;
  return {
    textLayers: t.num_hidden_layers!,
    textHeads: t.num_attention_heads!,
    visionHeads: v.num_attention_heads!,
    hidden: t.hidden_size!,
    kvHeads: t.num_key_value_heads ?? t.num_attention_heads!,
    headDim: t.head_dim ?? t.hidden_size! / t.num_attention_heads!,
    visionHidden: v.hidden_size!,
    visionTokens: (v.image_size! / v.patch_size!) ** 2 + 1,
  };
}

/** Source shapes from config.json alone (LLaVA-style, one image, batch 1) — what the estimate knows before a run. */
function configShapes(d: ReturnType<typeof dimsOf>, seq: number, taps: { vision: { name: string; tensor: string }[]; decoder: { name: string; tensor: string }[] }) {
  const byTensor = new Map<string, number[]>();
  for (const t of taps.vision) byTensor.set(t.tensor, t.name.includes('.attentions.') ? [1, d.visionHeads, d.visionTokens, d.visionTokens] : [1, d.visionTokens, d.visionHidden]);
  for (const t of taps.decoder) byTensor.set(t.tensor, t.name.includes('.attentions.') ? [1, d.textHeads, seq, seq] : [1, seq, d.hidden]);
  return {
    shapeOf(source: string): number[] | undefined {
      if (source === 'image_features') return [1, d.visionTokens - 1, d.hidden];
      if (source.startsWith('present.')) return [1, d.kvHeads, seq, d.headDim];
      return byTensor.get(source);
    },
  };
}

/**
 * The baseline: the blob's own bytes (read back into memory first, so a disk or host that
 * compresses or dedupes constant data gets no easier job), written with writeSync in 64 MiB
 * calls and fsynced, to a new file in the same folder — the least any store of those bytes must do.
 */
function rawWrite(dir: string, blobPath: string): number {
  const bytes = readFileSync(blobPath);
  const path = join(dir, 'raw-baseline.bin');
  const t0 = performance.now();
  const fd = openSync(path, 'w');
  const chunk = 64 << 20;
  for (let at = 0; at < bytes.length; at += chunk) writeSync(fd, bytes, at, Math.min(chunk, bytes.length - at));
  fsyncSync(fd);
  closeSync(fd);
  const ms = performance.now() - t0;
  rmSync(path);
  return ms;
}

function conversion() {
  const n = 1 << 24;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i++) src[i] = (Math.sin(i) * 1e3) / (1 + (i % 97));
  const out = new Uint16Array(n);
  const rate = (fn: () => void) => {
    fn();
    const t: number[] = [];
    for (let r = 0; r < 7; r++) {
      const t0 = performance.now();
      fn();
      t.push(performance.now() - t0);
    }
    return n / (median(t) / 1000) / 1e6;
  };
  const result: Record<string, unknown> = { f16MElPerS: rate(() => f32ToF16(src, out)), bf16MElPerS: rate(() => f32ToBf16(src, out)) };
  if (opt.exhaustive) {
    const ref = JSON.parse(readFileSync(join(REPO_ROOT, 'tests/fixtures/fp16/reference.json'), 'utf8')) as { all32: { float16Sha256: string; bfloat16Sha256: string } };
    const chunk = 1 << 24;
    const x = new Uint32Array(chunk);
    const f = new Float32Array(x.buffer);
    const h = new Uint16Array(chunk);
    const b = new Uint16Array(chunk);
    const hh = createHash('sha256');
    const hb = createHash('sha256');
    const t0 = performance.now();
    for (let start = 0; start < 2 ** 32; start += chunk) {
      for (let i = 0; i < chunk; i++) x[i] = start + i;
      hh.update(f32ToF16(f, h));
      hb.update(f32ToBf16(f, b));
    }
    result.exhaustive = { seconds: (performance.now() - t0) / 1000, float16BitExact: hh.digest('hex') === ref.all32.float16Sha256, bfloat16BitExact: hb.digest('hex') === ref.all32.bfloat16Sha256 };
  }
  return result;
}

/**
 * `conversion`: 'runtime' is what a vlm-forward run does (capture-plan.ts fp16InGraph: the graph
 * outputs fp16 copies through Cast, the worker gathers rows and writes); 'worker' converts the
 * float32 outputs in the worker (half.ts), as runs that generate text do.
 */
async function forwardAndStore(work: string, conversion: 'runtime' | 'worker') {
  const folder = openModelFolder(model(8));
  const d = dimsOf(folder);
  const compute = new ComputeClient();
  await compute.init('cpu');
  const ds = dataset(work, 8);
  const images = Array.from({ length: 8 }, (_, i) => join(ds, `images/item-${i}.png`));
  const kvNames = Array.from({ length: d.textLayers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  const fp16 = conversion === 'runtime' ? fp16InGraph({ storeDtype: 'float16', maxNewTokens: 0, taps: SELECTION }, kvNames) : undefined;
  const taps = await resolveTaps(folder, SELECTION, { cacheRoot: join(work, `graphs-${conversion}`), modelHash: 'bench-7b' }, undefined, fp16);
  const plain = await Vlm.open(folder, compute, 'plain');
  const tapped = await Vlm.open(folder, compute, `tapped-${conversion}`, taps.files);
  const blobs = new BlobStore(join(work, 'blobs'));
  const reps = Number(opt.reps);
  const plainMs: number[] = [];
  const captureMs: number[] = [];
  const captureForwardMs: number[] = [];
  const storeMs: number[] = [];
  const rawMs: number[] = [];
  const sizes: number[] = [];
  const parts: Record<string, number[]> = { produceMs: [], hashMs: [], writeWaitMs: [], syncMs: [], digestMs: [], totalMs: [] };
  let estimate = 0;
  let seqLen = 0;
  for (let r = 0; r < reps + 1; r++) {
    const img = { kind: 'files' as const, paths: [images[r % images.length]!] };
    let t0 = performance.now();
    await plain.forward(PROMPT, img, {});
    const p = performance.now() - t0;
    t0 = performance.now();
    const res = await tapped.forward(PROMPT, img, {
      capture: ({ inputIds, imageTokens }) => {
        seqLen = inputIds.length;
        const planned = planCapture({ taps: SELECTION }, taps, d, { imagePositions: imageTokens.map((t) => t.position) }, inputIds.length);
        const extra = { image_token_map: { dtype: 'int32' as const, shape: [imageTokens.length, 5], data: Int32Array.from(imageTokens.flatMap((t) => [t.position, t.image, t.tile, t.row, t.col])) } };
        // The estimate sizes the sources as the model names them (jobs/estimate knows no fp16 copies).
        estimate = estimateItemBytes(planned, configShapes(d, inputIds.length, taps), 'float16', extra).bytes;
        const plan = withFp16Sources(planned, taps.fp16);
        return { request: { blobRoot: blobs.root, chunkBytes: blobs.chunkBytes, dtype: 'float16', ops: plan.ops, extra }, visionFetches: plan.visionFetches, decoderFetches: plan.decoderFetches };
      },
    });
    const c = performance.now() - t0;
    if (r === 0) continue; // warm-up
    plainMs.push(p);
    captureMs.push(c);
    storeMs.push(res.timings.storeMs!);
    captureForwardMs.push(c - res.timings.storeMs!);
    sizes.push(res.stored!.size);
    for (const [k, v] of Object.entries(res.stored!.timings ?? {})) parts[k]?.push(v);
    const blobPath = blobs.pathOf(res.stored!.sha);
    rawMs.push(rawWrite(blobs.root, blobPath));
    rmSync(blobPath); // the next rep's blob is a new file, as a new item's is
  }
  await compute.close();
  const bytes = median(sizes);
  return {
    conversion,
    promptTokens: seqLen,
    blobBytes: bytes,
    plainForwardMs: median(plainMs),
    captureForwardMs: median(captureForwardMs),
    captureForwardRatio: median(captureForwardMs) / median(plainMs),
    captureEndToEndMs: median(captureMs),
    captureEndToEndRatio: median(captureMs) / median(plainMs),
    storeMs: median(storeMs),
    storeMBps: bytes / 1e6 / (median(storeMs) / 1000),
    rawWriteMBps: bytes / 1e6 / (median(rawMs) / 1000),
    storeVsRawWrite: median(rawMs) / median(storeMs),
    rawWriteMs: median(rawMs),
    /** Medians of where the blob write's time went on the worker thread (storeMs also counts fetching the held outputs and the rename). */
    storeParts: Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, v.length ? median(v) : null])),
    estimateBytes: estimate,
    estimateError: Math.abs(estimate - bytes) / bytes,
  };
}

/**
 * The store alone (no forward pass, so no ORT threads compete): one item's captures at the
 * 7B shapes (image K/V + hidden states, 8 layers, fp16) from synthetic fp32 outputs, sliced,
 * converted, hashed and written as the worker does — hashing on the hashing thread vs on the
 * writing thread, alternating — next to a raw write + fsync of the same bytes.
 */
async function storeOnly(work: string) {
  const folder = openModelFolder(model(8));
  const d = dimsOf(folder);
  const seq = 589;
  const imagePositions = Array.from({ length: 576 }, (_, i) => 5 + i);
  const taps = await resolveTaps(folder, SELECTION, { cacheRoot: join(work, 'graphs'), modelHash: 'bench-7b' });
  const plan = planCapture({ taps: SELECTION }, taps, d, { imagePositions }, seq);
  let seed = 99;
  const fill = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5) * 4;
    return a;
  };
  const sources = new Map<string, HostTensor>();
  for (const op of plan.ops) {
    if (sources.has(op.source)) continue;
    const shape = op.source.startsWith('present.') ? [1, d.kvHeads, seq, d.headDim] : [1, seq, d.hidden];
    sources.set(op.source, { dtype: 'float32', shape, data: fill(shape.reduce((x, y) => x * y, 1)) });
  }
  const stores = { offThread: new BlobStore(join(work, 'blobs-off'), null, {}), thisThread: new BlobStore(join(work, 'blobs-here'), null, { hashOnThisThread: true }) };
  const times: Record<string, number[]> = { offThread: [], thisThread: [], raw: [] };
  const parts: Record<string, Record<string, number>[]> = { offThread: [], thisThread: [] };
  let bytes = 0;
  const reps = Math.max(3, Number(opt.reps));
  for (let r = 0; r < reps + 1; r++) {
    for (const mode of ['offThread', 'thisThread'] as const) {
      const lazy: Record<string, LazyTensor> = {};
      for (const op of plan.ops) {
        const s = captureShape(op, sources.get(op.source)!.shape, 'float16')[0]!;
        lazy[s.name] = { dtype: s.dtype, shape: s.shape, data: () => applyCapture(op, sources.get(op.source)!, 'float16')[s.name]!.data };
      }
      seed += 1; // the bytes differ per rep (new blob), the work does not
      const t0 = performance.now();
      const res = await stores[mode].streamTensors(lazy, { rep: `${r}-${mode}` }, { record: false });
      const ms = performance.now() - t0;
      bytes = res.size;
      const path = stores[mode].pathOf(res.sha);
      if (r > 0) {
        times[mode]!.push(ms);
        parts[mode]!.push(res.timings as unknown as Record<string, number>);
        if (mode === 'offThread') times.raw!.push(rawWrite(stores[mode].root, path));
      }
      rmSync(path);
    }
  }
  const med = (k: string) => median(times[k]!);
  const medParts = (k: string) => Object.fromEntries(Object.keys(parts[k]![0]!).map((p) => [p, median(parts[k]!.map((x) => x[p]!))]));
  return {
    blobBytes: bytes,
    reps,
    rawWriteMs: med('raw'),
    offThreadMs: med('offThread'),
    thisThreadMs: med('thisThread'),
    storeVsRawWrite: med('raw') / med('offThread'),
    storeVsRawWriteHashOnThisThread: med('raw') / med('thisThread'),
    offThreadParts: medParts('offThread'),
    thisThreadParts: medParts('thisThread'),
  };
}

/** Child process: one vlm-forward run of `n` items through the engine; prints its peak RSS. */
async function rssChild(n: number, data: string) {
  const { Engine } = await import('../src-main/engine/engine.ts');
  const res = join(data, 'resources');
  mkdirSync(join(res, 'models'), { recursive: true });
  mkdirSync(join(res, 'datasets'), { recursive: true });
  // Copies, not symlinks: the engine refuses folders that link outside its resources (folder-symlinks.test.ts).
  const { cpSync } = await import('node:fs');
  cpSync(model(8), join(res, 'models', 'bench-7b'), { recursive: true });
  cpSync(dataset(data, n), join(res, 'datasets', `bench-7b-${n}`), { recursive: true });
  const engine = await Engine.start({ dataDir: join(data, 'data'), resourcesDir: res, host: 'server', version: 'bench', provider: 'cpu' });
  const { dispatch } = await import('../src-main/engine/dispatcher.ts');
  const spec = { taps: SELECTION, storeDtype: 'float16' };
  const models = (await dispatch(engine.handlers, { t: 'req', id: 1, method: 'models/list', params: {} })).response as { ok: boolean; result: { id: string }[] };
  const datasets = (await dispatch(engine.handlers, { t: 'req', id: 2, method: 'datasets/list', params: {} })).response as { ok: boolean; result: { id: string }[] };
  const t0 = performance.now();
  const { response } = await dispatch(engine.handlers, { t: 'req', id: 3, method: 'jobs/start', params: { kind: 'vlm-forward', modelId: models.result[0]!.id, datasetId: datasets.result[0]!.id, spec } });
  if (!response.ok) throw new Error(JSON.stringify(response));
  await engine.queue.drained();
  const run = engine.store.runs.get((response.result as { id: string }).id);
  const ms = performance.now() - t0;
  await engine.close();
  console.log(JSON.stringify({ items: n, status: run.status, done: run.done, error: run.error, msPerItem: ms / n, maxRssMB: process.resourceUsage().maxRSS / 1024 }));
}

function rss(work: string) {
  const one = (n: number) => {
    const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--child', 'rss', '--items', String(n), '--data', mkdtempSync(join(work, `rss-${n}-`))], { encoding: 'utf8', timeout: 3_600_000 });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    if (r.status !== 0) throw new Error(`rss child (${n} items) failed: ${r.stderr.slice(-2000)}`);
    return JSON.parse(line) as { items: number; status: string; maxRssMB: number; msPerItem: number };
  };
  const few = one(Number(opt.few));
  const many = one(Number(opt.items));
  return { few, many, ratio: many.maxRssMB / few.maxRssMB };
}

/** fp32, every tap, 32 LLM layers: a > 2 GiB blob stored, read back whole (hash-checked), and one layer's K/V read as a slice. */
async function bigItem(work: string) {
  const folder = openModelFolder(model(32));
  const d = dimsOf(folder);
  const compute = new ComputeClient();
  await compute.init('cpu');
  const all = TapSelection.parse({ projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true });
  const taps = await resolveTaps(folder, all, { cacheRoot: join(work, 'graphs32'), modelHash: 'bench-7b-32' });
  const vlm = await Vlm.open(folder, compute, 'all', taps.files);
  const blobs = new BlobStore(join(work, 'blobs-big'));
  const ds = dataset(work, 1);
  const t0 = performance.now();
  const res = await vlm.forward(PROMPT, { kind: 'files', paths: [join(ds, 'images/item-0.png')] }, {
    capture: ({ inputIds, imageTokens }) => {
      const plan = planCapture({ taps: all }, taps, d, { imagePositions: imageTokens.map((t) => t.position) }, inputIds.length);
      return { request: { blobRoot: blobs.root, dtype: 'float32', ops: plan.ops }, visionFetches: plan.visionFetches, decoderFetches: plan.decoderFetches };
    },
  });
  const forwardAndStoreMs = performance.now() - t0;
  await compute.close();
  const sha = res.stored!.sha;
  const size = statSync(blobs.pathOf(sha)).size;
  let t1 = performance.now();
  const back = blobs.getTensors(sha); // streams, hash-checked
  const readAllMs = performance.now() - t1;
  const tensorsBack = Object.keys(back).length;
  const readAllBytes = blobs.bytesRead;
  for (const k of Object.keys(back)) delete back[k];
  const before = blobs.bytesRead;
  t1 = performance.now();
  const key = blobs.readTensor(sha, 'image_kv.5.key');
  const value = blobs.readTensor(sha, 'image_kv.5.value');
  const sliceMs = performance.now() - t1;
  const layerBytes = key.data.byteLength + value.data.byteLength;
  const sliceRead = blobs.bytesRead - before;
  rmSync(blobs.root, { recursive: true, force: true });
  return { blobBytes: size, over2GiB: size > 2 ** 31, tensors: res.stored!.tensors.length, tensorsReadBack: tensorsBack, forwardAndStoreMs, readAllMs, readAllBytes, oneLayerKV: { bytes: layerBytes, bytesRead: sliceRead, ms: sliceMs, fractionOfBlob: sliceRead / size } };
}

if (opt.child === 'rss') {
  await rssChild(Number(opt.items), opt.data!);
} else {
  const work = mkdtempSync(join(process.env.LOUPE_BENCH_DIR ?? join(REPO_ROOT, '.cache', 'bench-7b'), 'run-'));
  const report: Record<string, unknown> = { machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, gpu: 'none (CPU execution provider)' } };
  report.conversion = conversion();
  console.log(JSON.stringify({ conversion: report.conversion }));
  report.storeOnly = await storeOnly(work);
  console.log(JSON.stringify({ storeOnly: report.storeOnly }));
  if (!opt['store-only']) {
    report.forward = await forwardAndStore(work, 'runtime');
    console.log(JSON.stringify({ forward: report.forward }));
    report.forwardWorkerConversion = await forwardAndStore(work, 'worker');
    console.log(JSON.stringify({ forwardWorkerConversion: report.forwardWorkerConversion }));
  }
  if (!opt['no-rss'] && !opt['store-only']) {
    report.rss = rss(work);
    console.log(JSON.stringify({ rss: report.rss }));
  }
  if (!opt['no-big'] && !opt['store-only']) {
    report.bigItem = await bigItem(work);
    console.log(JSON.stringify({ bigItem: report.bigItem }));
  }
  rmSync(work, { recursive: true, force: true });
  report.targets = 'fp16 ≥ 100 M el/s; captureForwardRatio ≤ 1.25; storeVsRawWrite ≥ 0.8; rss.ratio ≤ 1.5; estimateError ≤ 0.05; bigItem over2GiB read back';
  console.log(JSON.stringify(report, null, 2));
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `capture-7b-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(report, null, 2));
  void tmpdir;
}
