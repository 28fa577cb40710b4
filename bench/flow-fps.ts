/**
 * Frame rate of the 3D attention flow for camera moves at LLaVA-1.5 scale: full detail (LOD off,
 * the baseline) against interaction-time LOD (auto), measured in the same run, in the same page,
 * alternating (off, auto, off, auto, …) so a change in machine load hits both. Needs the built
 * renderer (`npm run build:renderer`).
 *
 *   node bench/flow-fps.ts [--seconds 4] [--warmup 2] [--rounds 2] [--grid 24] [--layers 32]
 *     [--heads 4] [--threshold 0.1] [--max-edges 60000] [--width 1360] [--height 860]
 *     [--gpu] [--angle vulkan|gl|…] [--headed] [--save]
 *
 * Starts `loupe serve` on a temp data dir, opens `#/flow?bench=1` in Debian's Chromium through
 * playwright-core — FlowView builds a synthetic scene (grid² image tokens + 40 text tokens on
 * each of layers + 1 planes, attention computed per row on demand) — and orbits the camera
 * through the scene's own camera-change path for N seconds per mode. Reports per mode:
 *  - fps: frames drawn / wall time while orbiting (capped by the display rate, ~60);
 *  - syncMovingMs / syncStillMs: one moving / full-detail frame forced to finish by a 1-pixel
 *    readback (the GL cost of a frame without the vsync cap);
 *  - the edges and tokens drawn per moving frame, and the drawing-buffer pixel ratio;
 *  - after the stop: the frame drawn once the camera is still must hold every edge and token
 *    (exit code 1 if it does not);
 * plus the ratio LOD fps / full-detail fps, an empty canvas's fps (the machine's ceiling) and
 * the GL renderer the page ran on (WEBGL_debug_renderer_info). By default Chromium runs with
 * --disable-gpu, so WebGL is SwiftShader (software, on the CPU): those are NOT GPU numbers.
 * `--gpu` drops that flag (and adds --enable-gpu --ignore-gpu-blocklist, `--angle` picks ANGLE's
 * backend, `--headed` uses a real window); check the printed renderer names your GPU.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from '../src-main/paths.ts';
import type { BenchResult as Run } from '../src-renderer/src/scene/flow-bench.ts';
import { tempDir } from '../tests/helpers/fixtures.ts';
import { startServer } from '../tests/helpers/server-process.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    grid: { type: 'string', default: '24' },
    layers: { type: 'string', default: '32' },
    heads: { type: 'string', default: '4' },
    threshold: { type: 'string', default: '0.1' },
    'max-edges': { type: 'string', default: '60000' },
    width: { type: 'string', default: '1360' },
    height: { type: 'string', default: '860' },
    gpu: { type: 'boolean', default: false },
    angle: { type: 'string' },
    headed: { type: 'boolean', default: false },
    save: { type: 'boolean', default: false },
  },
});

type Bench = {
  orbit(seconds: number, opts: { warmup?: number; empty?: boolean; syncFrames?: number }): Promise<Run>;
  setLod(lod: { mode: string }): void;
  glRenderer(): string;
  stats(): { selectMs: number; candidates: number; truncated: boolean };
};
/** Runs in the page: the bench handle FlowView puts on window (serialised, so no outer names inside). */
type Win = { loupeFlowBench: Bench };

const seconds = Number(values.seconds), warmup = Number(values.warmup), rounds = Math.max(1, Number(values.rounds));
const args = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'];
if (values.gpu) args.push('--enable-gpu', '--ignore-gpu-blocklist');
else args.push('--disable-gpu');
if (values.angle) args.push(`--use-angle=${values.angle}`);

const load0 = loadavg()[0]!;
const server = await startServer(tempDir('loupe-bench-'));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', headless: !values.headed, args });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: Number(values.width), height: Number(values.height) } });
  const q = new URLSearchParams({ bench: '1', grid: values.grid!, layers: values.layers!, heads: values.heads!, threshold: values.threshold!, maxEdges: values['max-edges']! });
  const t0 = performance.now();
  await page.goto(`${server.url}#/flow?${q}`);
  await page.waitForFunction(() => (globalThis as unknown as { loupeFlowBench?: Bench }).loupeFlowBench, undefined, { timeout: 120_000 });
  await page.waitForFunction(() => Number((globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string | null } | null } }).document.querySelector('[data-testid="flow-view"]')?.getAttribute('data-edges')) > 0, undefined, { timeout: 120_000 });
  const pageToSceneMs = Math.round(performance.now() - t0);
  const glRenderer = await page.evaluate(() => (globalThis as unknown as Win).loupeFlowBench.glRenderer());
  const software = /swiftshader|llvmpipe|softpipe|software|lavapipe/i.test(glRenderer);
  const orbit = (mode: string, opts: { warmup?: number; empty?: boolean }) =>
    page.evaluate((a) => {
      const b = (globalThis as unknown as Win).loupeFlowBench;
      b.setLod({ mode: a.mode });
      return b.orbit(a.seconds, a.opts);
    }, { mode, seconds, opts });

  // The machine's ceiling: an empty canvas orbiting (clear + present only).
  const empty = await orbit('off', { empty: true, warmup: 0.5 });
  const full: Run[] = [], lod: Run[] = [];
  for (let r = 0; r < rounds; r++) {
    full.push(await orbit('off', { warmup: r === 0 ? 0.5 : 0 }));
    lod.push(await orbit('auto', { warmup: r === 0 ? warmup : 0.5 }));
  }
  const stats = await page.evaluate(() => (globalThis as unknown as Win).loupeFlowBench.stats());
  const mean = (runs: Run[], k: keyof Run) => runs.reduce((s, x) => s + Number(x[k]), 0) / runs.length;
  const summary = (runs: Run[]) => ({
    fps: mean(runs, 'fps'),
    perRound: runs.map((x) => Number(x.fps.toFixed(1))),
    syncMovingMs: mean(runs, 'syncMovingMs'),
    syncStillMs: mean(runs, 'syncStillMs'),
    jsMsPerFrame: mean(runs, 'jsMs'),
    drawnEdges: Math.round(mean(runs, 'drawnEdges')),
    drawnTokens: Math.round(mean(runs, 'drawnTokens')),
    pixelRatio: runs[runs.length - 1]!.pixelRatio,
    stillAfterMs: Math.round(mean(runs, 'stillAfterMs')),
    restored: runs.every((x) => x.stillEdges === x.edges && x.stillTokens === x.tokens),
  });
  const fullS = summary(full), lodS = summary(lod);
  const s0 = full[0]!;
  failed = !fullS.restored || !lodS.restored;
  const report = {
    glRenderer,
    software,
    scene: {
      imageTokens: Number(values.grid) ** 2, textTokens: 40, layers: Number(values.layers), heads: Number(values.heads),
      threshold: Number(values.threshold), maxEdges: Number(values['max-edges']), edges: s0.edges, tokens: s0.tokens,
      candidates: stats.candidates, truncated: stats.truncated, selectMs: Math.round(stats.selectMs), pageToSceneMs,
    },
    full: fullS,
    lod: lodS,
    emptyCanvasFps: empty.fps,
    ratio: { lodVsFull: lodS.fps / fullS.fps, perRound: lod.map((x, i) => Number((x.fps / full[i]!.fps).toFixed(2))) },
    target: { fps: 60, lodMeets: lodS.fps >= 57 },
    machine: { cpus: cpus().length, loadavg1: [Number(load0.toFixed(2)), Number(loadavg()[0]!.toFixed(2))], chromiumArgs: args.join(' ') },
    viewport: `${values.width}×${values.height}`,
    seconds, rounds,
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(report, null, 2));
  const n = (x: number) => Math.round(x).toLocaleString('en');
  console.log(`
GL renderer: ${glRenderer}${software ? '\n  ^ SOFTWARE rasteriser on the CPU — not GPU numbers (run with --gpu on a machine with one)' : ''}
scene: ${n(report.scene.imageTokens)} image + 40 text tokens × ${report.scene.layers + 1} planes (${n(s0.tokens)} points), ${n(s0.edges)} edges${stats.truncated ? ` (strongest of ${n(stats.candidates)})` : ''}
full detail (LOD off, baseline): ${fullS.fps.toFixed(1)} fps  [${fullS.perRound.join(', ')}]  frame ${fullS.syncStillMs.toFixed(1)} ms with readback
LOD auto while moving:           ${lodS.fps.toFixed(1)} fps  [${lodS.perRound.join(', ')}]  frame ${lodS.syncMovingMs.toFixed(1)} ms with readback; ${n(lodS.drawnEdges)} of ${n(s0.edges)} edges, ${n(lodS.drawnTokens)} of ${n(s0.tokens)} tokens, pixel ratio ${lodS.pixelRatio}
empty canvas (ceiling):          ${empty.fps.toFixed(1)} fps
LOD / full detail: ${report.ratio.lodVsFull.toFixed(2)}×   60 fps target with LOD: ${report.target.lodMeets ? 'met' : 'NOT met'} here (${report.machine.cpus} CPUs, load ${report.machine.loadavg1.join(' → ')})
after the camera stops: full detail again in ${lodS.stillAfterMs} ms (idle wait included): ${lodS.restored ? 'every edge and token drawn' : 'NOT RESTORED'}`);
  if (values.save) {
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    const stem = join(REPO_ROOT, 'bench', 'results', `flow-fps-${report.at.replace(/[:.]/g, '-')}`);
    writeFileSync(`${stem}.json`, JSON.stringify(report, null, 2));
    await page.screenshot({ path: `${stem}.png` });
  }
} finally {
  await browser.close();
  await server.stop();
}
if (failed) {
  console.error('the frame after the camera stopped did not draw every edge and token');
  process.exitCode = 1;
}
