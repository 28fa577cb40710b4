/**
 * Object-part LogitLens in the Runs view: an intact micro-llava vlm-forward run on the bundled
 * object-parts set with every LLM layer's hidden states, and one with the vision tower's
 * patch self-attention blocked (for the recovery chart). Opening the intact run and its
 * "Part LogitLens" panel shows a part × layer heatmap: one row per part the lens names, one column
 * per stored LLM layer (counted here from the run's tensor names, `text.hidden_states.0…L`), each
 * cell the engine's `parts/logit-lens` hit rate; the overall curve's band is checked against a
 * Wilson 95 % interval computed here from hits / n by its textbook formula (to 1e-6: the engine rounds z).
 */
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';
import { waitForRun } from '../helpers/runs.ts';

const SHOTS = join(import.meta.dirname, 'screenshots');
const DATASET_ID = 'object-parts';
const ITEMS = 8;
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;

async function run(spec: object): Promise<string> {
  const id = (await client.call('jobs/start', { kind: 'vlm-forward', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: ITEMS, taps: { llmLayers: true }, ...spec } })).id;
  await waitForRun(client, id, 150_000);
  return id;
}

/** Wilson score interval at 95 % (z = 1.959964), from its definition. */
function wilson(hits: number, n: number): [number, number] {
  const z = 1.959963984540054;
  const p = hits / n;
  const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
  const half = ((z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n)));
  return [centre - half, centre + half];
}

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
  client = await connectEngine(server);
}, 60_000);
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

describe('part LogitLens panel', () => {
  it('shows one heatmap row per part and one column per LLM layer, each cell the engine hit rate, and recovery for a ticked ablated run', async () => {
    const intact = await run({});
    const ablated = await run({ ablation: { edits: [{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'all' }, excludeSelf: true }] } });
    const got = await client.call('runs/get', { runId: intact });
    const layers = new Set(got.results.flatMap((r) => r.tensors.map((t) => /^text\.hidden_states\.(\d+)$/.exec(t.name)?.[1]).filter((l): l is string => l !== undefined)));
    expect(layers.size).toBeGreaterThan(1);

    const page: Page = await openWorkbench(browser, `${server.url}#/runs?run=${intact}`, { width: 1360, height: 1400 });
    await page.getByTestId('part-lens').click();
    await page.getByTestId('part-lens-heatmap').waitFor({ timeout: 60_000 });

    const lens = await client.call('parts/logit-lens', { runIds: [intact], topK: 5 });
    expect(lens.parts.length).toBeGreaterThan(0);
    const rows = page.getByTestId('part-lens-row');
    expect(await rows.count()).toBe(lens.parts.length);
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-part')))).toEqual(lens.parts.map((p) => p.part));
    for (let i = 0; i < lens.parts.length; i++) expect(await rows.nth(i).getByTestId('part-lens-cell').count()).toBe(layers.size);

    // A cell in the middle of the map: its value is the engine's hit rate for that part and layer, which is hits / n.
    const part = lens.parts[Math.floor(lens.parts.length / 2)]!.part;
    const layer = Math.floor(layers.size / 2);
    const cell = page.locator(`[data-testid="part-lens-cell"][data-part="${part}"][data-layer="${layer}"]`);
    const ref = lens.runs[0]!.rows.find((r) => r.part === part && r.layer === layer)!;
    expect(Number(await cell.getAttribute('data-value'))).toBe(ref.hitRate);
    expect(ref.hitRate).toBeCloseTo(ref.hits / ref.n, 12);
    expect(await cell.locator('text').textContent()).toBe(ref.hitRate.toFixed(2));
    expect(await cell.locator('title').textContent()).toContain(`median rank ${ref.medianRank}`);

    // The overall band is the Wilson interval of hits / n per layer.
    for (const o of lens.runs[0]!.overall) {
      const [lo, hi] = wilson(o.hits, o.n);
      expect(o.hitLow).toBeCloseTo(lo, 6);
      expect(o.hitHigh).toBeCloseTo(hi, 6);
    }
    expect(await page.getByTestId('part-lens-band').getAttribute('d')).toMatch(/Z$/);

    // Tick the ablated run: one recovery line, named in the legend.
    await page.locator(`[data-testid="part-lens-other"][value="${ablated}"]`).check();
    await page.getByTestId('part-lens').click();
    await page.getByTestId('part-lens-recovery').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('part-lens-recovery-line').count()).toBe(1);
    const both = await client.call('parts/logit-lens', { runIds: [intact, ablated], topK: 5 });
    expect(both.recovery.map((r) => r.runId)).toEqual([ablated]);

    await page.getByTestId('part-lens-panel').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'parts-lens.png'), fullPage: true });
  });
});
