/**
 * Engine benchmark (`npm run bench [-- --ep webgpu] [-- --reps 30]`). Every figure is a ratio
 * against a baseline measured in the same run, on the same machine:
 *  - capture overhead: VLM prefill with every built-in tap (vision + LLM hidden states,
 *    attention probabilities, image K/V) ÷ the same prefill on the unmodified graphs;
 *  - throughput: images/s of the full forward (vision + prefill) on the chosen provider,
 *    and its ratio to CPU when another provider is chosen.
 * Results: printed, and written to bench/results/engine-<provider>-<time>.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ExecutionProvider } from '../src-shared/contract/domain.ts';
import { ComputeClient } from '../src-main/compute/compute-client.ts';
import { openModelFolder } from '../src-main/engine/model-folder.ts';
import { resolveTaps } from '../src-main/engine/vlm/tap-sets.ts';
import { Vlm } from '../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT, RESOURCES_DIR } from '../src-main/paths.ts';

const { values } = parseArgs({ options: { ep: { type: 'string', default: 'cpu' }, reps: { type: 'string', default: '30' }, model: { type: 'string', default: join(RESOURCES_DIR, 'models', 'micro-llava') } } });
const ep = ExecutionProvider.parse(values.ep);
const reps = Number(values.reps);
const folder = openModelFolder(values.model!);
const dataset = join(RESOURCES_DIR, 'datasets', 'colour-at-point');
const items = (JSON.parse(readFileSync(join(dataset, 'dataset.json'), 'utf8')) as { items: { images: string[]; prompt: string }[] }).items.slice(0, 8);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timeForward(vlm: Vlm, options: Parameters<Vlm['forward']>[2]): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < reps + 3; r++) {
    const item = items[r % items.length]!;
    const t0 = performance.now();
    await vlm.forward(item.prompt, { kind: 'files', paths: item.images.map((p) => join(dataset, p)) }, options);
    if (r >= 3) times.push(performance.now() - t0); // first runs warm up allocators and kernels
  }
  return median(times);
}

async function measure(provider: ExecutionProvider) {
  const compute = new ComputeClient();
  await compute.init(provider);
  if (compute.provider !== provider) throw new Error(`provider ${provider} is not available here (got ${compute.provider}; available: ${compute.available.join(', ')})`);
  const plain = await Vlm.open(folder, compute, 'plain');
  const all = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };
  const taps = await resolveTaps(folder, all, { cacheRoot: join(tmpdir(), 'loupe-bench-graphs'), modelHash: 'bench-' + folder.name });
  const tapped = await Vlm.open(folder, compute, 'tapped', taps.files);
  const textLayers = (folder.config.text_config as { num_hidden_layers: number }).num_hidden_layers;
  const kv = Array.from({ length: textLayers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
  const plainMs = await timeForward(plain, {});
  const tappedMs = await timeForward(tapped, { visionTaps: taps.vision.map((t) => t.tensor), decoderTaps: [...kv, ...taps.decoder.map((t) => t.tensor)] });
  await compute.close();
  return { provider, plainMs, tappedMs, captureOverhead: tappedMs / plainMs, imagesPerSecond: 1000 / plainMs, taps: taps.vision.length + taps.decoder.length + kv.length };
}

const results = [await measure('cpu')];
if (ep !== 'cpu') results.push(await measure(ep));
const report = {
  model: folder.name,
  reps,
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
  results,
  ...(results[1] && { speedupVsCpu: results[0]!.plainMs / results[1].plainMs }),
  target: 'captureOverhead ≤ 1.25',
};
console.log(JSON.stringify(report, null, 2));
const dir = join(REPO_ROOT, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, `engine-${ep}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(report, null, 2));
