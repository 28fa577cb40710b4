/**
 * Compare (issue 24): two readout runs — intact and with vision patch↔patch attention blocked
 * in layers 1–2 — chosen in Runs, compared against a baseline: overlaid stage curves, a spec
 * diff naming the ablation, and Δ = run − baseline whose value the test computes itself from
 * the stored per-item results; switching the baseline flips its sign.
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
const DATASET_ID = 'shape-at-point';
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;
let intact: string;
let ablated: string;

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
  client = await connectEngine(server);
  intact = (await client.call('jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 24 } })).id;
  const ablation = { edits: [{ op: 'block' as const, part: 'llm' as const, layers: [1, 2], queries: { kind: 'text' as const }, keys: { kind: 'image' as const } }] };
  ablated = (await client.call('jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 24, ablation } })).id;
  await waitForRun(client, intact, 240_000, 500);
  await waitForRun(client, ablated, 240_000, 500);
}, 300_000);
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

const open = (hash: string): Promise<Page> => openWorkbench(browser, `${server.url}${hash}`, { width: 1360, height: 1700 });

describe('compare runs', () => {
  it('overlays two readout runs, lists the spec keys that differ, and signs Δ as run − baseline', async () => {
    const page = await open('#/runs');
    for (const id of [intact, ablated]) await page.locator(`[data-testid="run-row"][data-run="${id}"] [data-testid="pick"]`).check();
    await page.getByTestId('compare').click();
    await expect.poll(() => page.getByTestId('compare-baseline').inputValue()).toBe(intact);

    // Overlaid stage curves, one per run.
    const curves = page.getByTestId('stage-curve');
    await expect.poll(() => curves.count(), { timeout: 60_000 }).toBe(2);
    expect(await curves.evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-run')))).toEqual([intact, ablated]);

    // Spec diff: exactly the ablation's keys.
    const keys = await page.getByTestId('spec-diff-row').evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-key')));
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.every((k) => k.startsWith('spec.ablation'))).toBe(true);
    expect(keys).toContain('spec.ablation.edits[0].layers');

    // Δ correct = mean(ablated) − mean(intact) on the shared items, computed here from the stored results.
    const mean = async (runId: string) => {
      const rs = (await client.call('runs/get', { runId })).results;
      return rs.reduce((s, r) => s + r.metrics.correct!, 0) / rs.length;
    };
    const [mi, ma] = [await mean(intact), await mean(ablated)];
    const delta = page.getByTestId('delta-correct-1');
    await expect.poll(async () => Number(await delta.getAttribute('data-delta'))).toBeCloseTo(ma - mi, 12);
    await page.screenshot({ path: join(SHOTS, 'compare.png'), fullPage: true });

    // The other run as baseline: the same difference with the opposite sign, in the other column.
    await page.getByTestId('compare-baseline').selectOption(ablated);
    await expect.poll(async () => Number(await page.getByTestId('delta-correct-0').getAttribute('data-delta'))).toBeCloseTo(mi - ma, 12);
    await page.close();
  });
});
