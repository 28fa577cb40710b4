/**
 * Item drill-down (issue 24): a readout run opened in Runs → its "present but not surfaced"
 * count → the item list holds exactly those items → one item's page shows the image, the
 * prompt as tokenized, the answer probabilities the run stored, and each stage's readout for
 * that item, consistent with the definition (the answer is wrong, some stage is right). The run
 * blocks text → image attention in the LLM, so the answer cannot see what the vision stages hold.
 */
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import type { ResultOf } from '../../src-shared/contract/methods.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';
import { waitForRun } from '../helpers/runs.ts';

const SHOTS = join(import.meta.dirname, 'screenshots');
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;
let runId: string;
let summary: ResultOf<'readout/summary'>;
/** Shape at a marker: the bundled model answers it right, so "present but not surfaced" needs an answer that cannot see the image. */
const DATASET_ID = 'shape-at-point';
/** Text tokens blocked from every image token in every LLM layer: the answer goes blind, the vision stages still hold the shape. */
const ABLATION = { edits: [{ op: 'block' as const, part: 'llm' as const, layers: 'all' as const, queries: { kind: 'text' as const }, keys: { kind: 'image' as const } }] };

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
  client = await connectEngine(server);
  const run = await client.call('jobs/start', { kind: 'readout', modelId: MODEL_ID, datasetId: DATASET_ID, spec: { limit: 48, ablation: ABLATION } });
  runId = run.id;
  await waitForRun(client, runId, 240_000, 500);
  summary = await client.call('readout/summary', { runId });
}, 300_000);
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

const open = (hash: string): Promise<Page> => openWorkbench(browser, `${server.url}${hash}`, { width: 1360, height: 1500 });

describe('item drill-down', () => {
  it('present-but-not-surfaced count → item list → item page with image, prompt, probabilities and per-stage readouts', async () => {
    expect(summary.presentNotSurfaced.length).toBeGreaterThan(0);
    const page = await open('#/runs');
    await page.locator(`[data-testid="run-row"][data-run="${runId}"]`).click();
    const pns = page.getByTestId('pns');
    await expect.poll(() => pns.textContent(), { timeout: 60_000 }).toBe(String(summary.presentNotSurfaced.length));
    await pns.click();

    // The item list, filtered to exactly the summary's present-but-not-surfaced items.
    await expect.poll(() => page.getByTestId('item-filter').inputValue()).toBe('pns');
    const links = page.getByTestId('item-link');
    await expect.poll(() => links.count(), { timeout: 30_000 }).toBe(summary.presentNotSurfaced.length);
    const listed = await links.evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-item')));
    expect(listed.sort()).toEqual([...summary.presentNotSurfaced].sort());

    const itemId = listed[0]!;
    await links.first().click();
    await expect.poll(() => page.getByTestId('item-page').getAttribute('data-item')).toBe(itemId);
    const { results } = await client.call('runs/get', { runId });
    const result = results.find((r) => r.itemId === itemId)!;
    const item = (await client.call('datasets/items', { datasetId: DATASET_ID, offset: 0, limit: 1000 })).items.find((i) => i.id === itemId)!;

    // Image: the canvas holds the dataset image at its own size, with the item's labels drawn over it.
    const img = (await client.callTensor('datasets/image', { datasetId: DATASET_ID, itemId, index: 0 })).tensor;
    await expect.poll(() => page.locator('[data-testid="item-image"] canvas.img').evaluate((c) => (c as unknown as { width: number }).width)).toBe(img.shape[1]);
    await expect(page.getByTestId('item-overlay').count()).resolves.toBe(1);

    // Prompt as tokenized: the question's words are among the tokens, with the chat template around them.
    await expect.poll(() => page.getByTestId('item-prompt').textContent(), { timeout: 30_000 }).toContain('marker');
    expect(await page.locator('[data-testid="item-prompt"] .tok').count()).toBeGreaterThan(item.prompt!.split(' ').length);

    // Answer probabilities: one row per choice with the stored value.
    const probs = result.values.answerProbs as Record<string, number>;
    const rows = page.getByTestId('prob-row');
    await expect.poll(() => rows.count()).toBe(item.choices!.length);
    for (const choice of item.choices!) expect(await page.locator(`[data-testid="prob-row"][data-choice="${choice}"] .mono`).first().textContent()).toBe(probs[choice]!.toFixed(3));
    expect(await page.getByTestId('item-truth').textContent()).toBe(item.answer);

    // Each stage's readout for this item: one chip per stage plus answer and blind.
    const chips = page.getByTestId('item-stage');
    await expect.poll(() => chips.count()).toBe(summary.stages.length + 2);
    const outcome = async (stage: string) => (await page.locator(`[data-testid="item-stage"][data-stage="${stage}"]`).getAttribute('data-correct')) === 'true';
    // Present but not surfaced, by definition: the answer is wrong and some stage read the truth out.
    expect(await outcome('answer')).toBe(false);
    expect(result.values.answer).not.toBe(item.answer);
    expect(await outcome('blind')).toBe(result.metrics.blindCorrect === 1);
    const stageOutcomes = await Promise.all(summary.stages.map((s) => outcome(s.stage)));
    expect(stageOutcomes.some(Boolean)).toBe(true);
    // And the per-stage counts over all items agree with the stage accuracies of the summary.
    const all = await client.call('runs/items', { runId });
    for (const s of summary.stages) expect(all.items.filter((i) => i.stages?.[s.stage]).length / summary.items).toBeCloseTo(s.accuracy, 12);

    // Tensors by meaning, and a heatmap of one.
    const tensorRows = page.getByTestId('tensor-row');
    expect(await tensorRows.count()).toBe(result.tensors.length);
    expect(await tensorRows.first().textContent()).toContain('vision layer 0');
    await page.locator('[data-testid="tensor-row"][data-name="readout.vision.hidden_states.0"]').click();
    const t = result.tensors.find((x) => x.name === 'readout.vision.hidden_states.0')!;
    await expect.poll(() => page.getByTestId('tensor-heatmap').evaluate((c) => (c as unknown as { width: number }).width)).toBe(t.shape.at(-1));
    await page.screenshot({ path: join(SHOTS, 'item.png') });

    // Next walks the filtered list.
    if (listed.length > 1) {
      await page.getByTestId('item-next').click();
      await expect.poll(() => page.getByTestId('item-page').getAttribute('data-item')).toBe(listed[1]);
    }
    // Every run table row opens its item.
    await page.goto(`${server.url}#/runs?run=${runId}`);
    // Wait for the chart: it lands above the table and would move the row under the click.
    await page.getByTestId('readout-chart').waitFor({ timeout: 60_000 });
    await page.locator('[data-testid="result-row"]').nth(2).click();
    await expect.poll(() => page.getByTestId('item-page').getAttribute('data-item')).toBe(results[2]!.itemId);
    await page.close();
  });
});
