/**
 * The sweep composer on the bundled micro-llava: family (a) previewed with the mask builder's
 * edge counts, started, streamed (the recovery table fills in while runs are unfinished),
 * finished with one row per stage whose values are exactly what sweeps/summary returns, and
 * reopened from the saved-sweeps list.
 */
import type { Browser, Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockedEdges, modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';

const LIMIT = 8;
/** Two choices (left/right-of), so 8 items give the probes something to read. */
const DATASET_ID = 'relation';
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
  client = await connectEngine(server);
});
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

const open = (hash: string): Promise<Page> => openWorkbench(browser, `${server.url}${hash}`, { width: 1360, height: 1900 });

// Runs in the page; typed structurally because this file is type-checked without DOM types.
type El = { querySelectorAll(s: string): { length: number; [i: number]: { getAttribute(a: string): string | null } } };
type Win = { document: El & { body: unknown }; MutationObserver: new (cb: () => void) => { observe(n: unknown, o: object): void }; __partial?: boolean };

describe('sweeps view', () => {
  it('composes family (a), streams the recovery table while runs finish, and matches sweeps/summary', async () => {
    const page = await open('#/sweeps');
    await page.getByTestId('sweep-empty').waitFor();
    await page.getByTestId('no-sweeps').waitFor();

    await page.getByTestId('sweep-model').selectOption(MODEL_ID);
    await page.getByTestId('sweep-dataset').selectOption(DATASET_ID);
    await page.getByTestId('sweep-limit').fill(String(LIMIT));
    await page.getByTestId('family-vision-patches').check();

    // Preview: intact + k = 1…3 (micro-llava exports vision layers 0..2), edges from the mask builder.
    const shape = modelShape(JSON.parse(readFileSync(join(RESOURCES_DIR, 'models', MODEL_ID, 'config.json'), 'utf8')) as Record<string, unknown>);
    const grid = sweepGrid({ kind: 'vision-patches' }, shape);
    const rows = page.getByTestId('preview-row');
    await expect.poll(() => rows.count()).toBe(grid.length + 1);
    const edges = await page.locator('[data-testid="preview-row"] [data-edges]').evaluateAll((els) => els.map((e) => Number((e as unknown as { getAttribute(a: string): string }).getAttribute('data-edges'))));
    // k layers × 4 heads × every patch to the 63 others (CLS untouched).
    expect(edges).toEqual([0, ...[1, 2, 3].map((k) => k * 4 * 64 * 63)]);
    expect(edges.slice(1)).toEqual(grid.map((g) => blockedEdges(g.spec, shape).blocked));
    await expect.poll(() => rows.nth(3).textContent()).toContain('vision 0, 1, 2');

    // Record whether the table ever shows recovery rows while some run is still unfinished.
    await page.evaluate(() => {
      const w = globalThis as unknown as Win;
      w.__partial = false;
      new w.MutationObserver(() => {
        const d = w.document;
        const runs = d.querySelectorAll('[data-testid="sweep-run"]');
        let unfinished = false;
        for (let i = 0; i < runs.length; i++) if (runs[i]!.getAttribute('data-status') !== 'done') unfinished = true;
        if (unfinished && d.querySelectorAll('[data-testid="recovery-row"]').length > 0) w.__partial = true;
      }).observe(w.document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    });

    await page.getByTestId('start-sweep').click();
    const results = page.getByTestId('sweep-results');
    await results.waitFor();
    const sweepId = (await results.getAttribute('data-sweep'))!;
    expect(sweepId).toMatch(/^sweep-/);
    // One progress bar per run while it runs.
    await expect.poll(() => page.locator('[data-testid="sweep-run"] [role="progressbar"]').count()).toBe(grid.length + 1);

    const runs = page.getByTestId('sweep-run');
    await expect.poll(async () => (await runs.evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-status')))).join(','), { timeout: 150_000, interval: 500 }).toBe('done,done,done,done');
    expect(await page.evaluate(() => (globalThis as unknown as Win).__partial)).toBe(true);

    // One table row per stage of the summary (encoder layers, projector, LLM layers, answer).
    const summary = await client.call('sweeps/summary', { sweepId, floor: 'chance' });
    const tableRows = page.getByTestId('recovery-row');
    await expect.poll(() => tableRows.count()).toBe(summary.stages.length);
    expect(await tableRows.evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-stage')))).toEqual(summary.stages.map((s) => s.stage));
    expect(summary.runs.map((r) => r.label)).toEqual(['intact', ...grid.map((g) => g.label)]);

    // Every recovery cell carries exactly the engine's number ('' for null), and shows it rounded.
    const cell = (stage: string, j: number) => page.locator(`[data-testid="recovery-row"][data-stage="${stage}"] [data-testid="recovery-cell"][data-run="${summary.runIds[j + 1]}"]`);
    const shown = await page.getByTestId('recovery-cell').evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-value')));
    const want = summary.stages.flatMap((s) => s.recovery);
    expect(shown.map((v) => (v === '' ? null : Number(v)))).toEqual(want);
    const defined = summary.stages.flatMap((s) => s.recovery.map((v, j) => ({ stage: s.stage, j, v }))).filter((c) => c.v !== null);
    expect(defined.length).toBeGreaterThan(0);
    // Shown rounded, then its 95% interval in brackets.
    for (const c of [defined[0]!, defined.at(-1)!]) expect((await cell(c.stage, c.j).textContent())!.split('[')[0]!.trim()).toBe(c.v!.toFixed(2));
    // One chart line per spec, each with its own dash pattern and marker (lines that coincide stay distinguishable), and a legend entry each.
    expect(await page.getByTestId('recovery-line').count()).toBe(grid.length);
    const styles = await page.getByTestId('recovery-line').evaluateAll((els) => els.map((e) => `${(e as unknown as { getAttribute(a: string): string }).getAttribute('data-dash')}|${(e as unknown as { getAttribute(a: string): string }).getAttribute('data-marker')}`));
    expect(new Set(styles).size).toBe(grid.length);
    expect((await page.getByTestId('recovery-legend').allTextContents()).map((t) => t.trim())).toEqual(grid.map((g) => g.label));

    // The blind floor comes from the engine too.
    await page.getByTestId('results-floor').selectOption('blind');
    const blind = await client.call('sweeps/summary', { sweepId, floor: 'blind' });
    await expect.poll(() => page.getByTestId('floor-value').textContent()).toBe(`floor = ${blind.floor!.toFixed(3)}`);
    await page.getByTestId('results-floor').selectOption('chance');
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'sweeps.png'), fullPage: true });

    // Saved, and reopened on a fresh page from the list.
    const again = await open('#/sweeps');
    const saved = again.locator(`[data-testid="saved-sweep"][data-sweep="${sweepId}"]`);
    await saved.waitFor();
    expect(await saved.textContent()).toContain('4 / 4');
    await saved.getByTestId('open-sweep').click();
    await expect.poll(() => again.getByTestId('recovery-row').count()).toBe(summary.stages.length);
    const reopened = await again.getByTestId('recovery-cell').evaluateAll((els) => els.map((e) => (e as unknown as { getAttribute(a: string): string }).getAttribute('data-value')));
    expect(reopened).toEqual(shown);
    await again.close();
    await page.close();
  });

  it('custom family: takes the spec composed in the Ablation view and validated pasted JSON', async () => {
    const page = await open('#/ablation');
    await page.getByTestId('mask-preview').waitFor();
    await page.getByTestId('nav-sweeps').click();
    await page.getByTestId('sweep-model').selectOption(MODEL_ID);
    await page.getByTestId('family-custom').check();
    const rows = page.getByTestId('preview-row');
    await expect.poll(() => rows.count()).toBe(1); // just the intact run
    expect(await page.getByTestId('start-sweep').isDisabled()).toBe(true);

    // The Ablation view's default draft: vision patch → other patches in every (exported) layer.
    await page.getByTestId('add-composed').click();
    await expect.poll(() => rows.count()).toBe(2);
    expect(await rows.nth(1).locator('[data-edges]').getAttribute('data-edges')).toBe(String(3 * 4 * 64 * 63));

    // Pasted JSON is validated with the AblationSpec schema before it is added.
    const paste = page.getByTestId('paste-spec');
    await paste.fill('{"edits":[{"op":"block","part":"llm","layers":[0,1],"queries":{"kind":"txt"},"keys":{"kind":"image"}}]}');
    await page.getByTestId('add-pasted').click();
    await expect.poll(() => page.getByRole('alert').first().textContent()).toContain('edits.0.queries.kind');
    await paste.fill('{"edits":[{"op":"block","part":"llm","layers":[0,1],"queries":{"kind":"text"},"keys":{"kind":"image"}}]}');
    await page.getByTestId('add-pasted').click();
    await expect.poll(() => rows.count()).toBe(3);
    // Text → image in 2 LLM layers × 4 heads: the 12 text tokens after the 64 image tokens of the sample prompt.
    expect(await rows.nth(2).locator('[data-edges]').getAttribute('data-edges')).toBe(String(2 * 4 * 12 * 64));
    // A layer the model lacks is flagged in the preview and blocks the start.
    await paste.fill('{"edits":[{"op":"block","part":"llm","layers":[7],"queries":{"kind":"text"},"keys":{"kind":"image"}}]}');
    await page.getByTestId('add-pasted').click();
    await expect.poll(() => rows.count()).toBe(4);
    expect(await rows.nth(3).textContent()).toContain('llm layer(s) 7 are not in the model\'s graph');
    expect(await page.getByTestId('start-sweep').isDisabled()).toBe(true);
    await page.close();
  });
});
