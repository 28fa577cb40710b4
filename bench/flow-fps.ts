/**
 * Frame rate of the 3D attention flow at LLaVA-1.5 scale (`node bench/flow-fps.ts [--seconds 5]
 * [--grid 24] [--layers 32] [--heads 4] [--threshold 0.1] [--max-edges 60000] [--save]`). Needs the built renderer
 * (`npm run build:renderer`).
 *
 * Starts `loupe serve` on a temp data dir, opens `#/flow?bench=1` in Debian's Chromium through
 * playwright-core — FlowView then builds a synthetic scene (grid² image tokens + 40 text tokens
 * on every plane, `layers` LLM layers, attention computed per row on demand) — and orbits the
 * camera in a requestAnimationFrame loop for N seconds, rendering every frame. Reports:
 *  - fps: frames rendered / wall time in the rAF loop (capped by the display rate, ~60);
 *  - syncRenderMs: one render forced to finish by a 1-pixel readback (GPU cost per frame);
 *  - the scene's size (edges, points) and the edge selection time.
 * Chromium runs with --disable-gpu here, so WebGL is SwiftShader (software): on a real GPU the
 * numbers are far higher. `--gpu` drops that flag to use whatever GPU Chromium finds.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { REPO_ROOT } from '../src-main/paths.ts';
import { tempDir } from '../tests/helpers/fixtures.ts';
import { startServer } from '../tests/helpers/server-process.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    grid: { type: 'string', default: '24' },
    layers: { type: 'string', default: '32' },
    heads: { type: 'string', default: '4' },
    threshold: { type: 'string', default: '0.1' },
    'max-edges': { type: 'string', default: '60000' },
    width: { type: 'string', default: '1360' },
    height: { type: 'string', default: '860' },
    gpu: { type: 'boolean', default: false },
    save: { type: 'boolean', default: false },
  },
});

type Bench = { orbit(seconds: number): Promise<Record<string, number>>; stats(): Record<string, unknown> };

const server = await startServer(tempDir('loupe-bench-'));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', ...(values.gpu ? [] : ['--disable-gpu']), '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const page = await browser.newPage({ viewport: { width: Number(values.width), height: Number(values.height) } });
  const q = new URLSearchParams({ bench: '1', grid: values.grid!, layers: values.layers!, heads: values.heads!, threshold: values.threshold!, maxEdges: values['max-edges']! });
  const t0 = performance.now();
  await page.goto(`${server.url}#/flow?${q}`);
  await page.waitForFunction(() => (globalThis as unknown as { loupeFlowBench?: Bench }).loupeFlowBench, undefined, { timeout: 120_000 });
  await page.waitForFunction(() => Number((globalThis as unknown as { document: { querySelector(s: string): { getAttribute(a: string): string | null } | null } }).document.querySelector('[data-testid="flow-view"]')?.getAttribute('data-edges')) > 0, undefined, { timeout: 120_000 });
  const buildMs = performance.now() - t0;
  const renderer = await page.evaluate(() => {
    const c = (globalThis as unknown as { document: { createElement(t: string): { getContext(k: string): { getExtension(n: string): { UNMASKED_RENDERER_WEBGL: number } | null; getParameter(p: number): string } | null } } }).document.createElement('canvas');
    const gl = c.getContext('webgl2');
    const ext = gl?.getExtension('WEBGL_debug_renderer_info');
    return gl && ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown';
  });
  const seconds = Number(values.seconds);
  const result = await page.evaluate((s) => (globalThis as unknown as { loupeFlowBench: Bench }).loupeFlowBench.orbit(s), seconds);
  const stats = await page.evaluate(() => (globalThis as unknown as { loupeFlowBench: Bench }).loupeFlowBench.stats());
  const report = {
    scene: { imageTokens: Number(values.grid) ** 2, textTokens: 40, layers: Number(values.layers), heads: Number(values.heads), threshold: Number(values.threshold), maxEdges: Number(values['max-edges']) },
    ...result,
    selectMs: stats.selectMs,
    candidates: stats.candidates,
    truncated: stats.truncated,
    pageToSceneMs: Math.round(buildMs),
    viewport: `${values.width}×${values.height}`,
    webgl: renderer,
    cpus: cpus().length,
    at: new Date().toISOString(),
  };
  console.log(JSON.stringify(report, null, 2));
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
