/**
 * Composing an ablation spec on the token grid: the mask preview counts the edges it blocks (the
 * sweeps' causal count), the layers offered are the export's, and "Run with this spec" starts
 * exactly the listed edits, confirmed by a toast that links to the run.
 */
import type { Browser } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import { launchChromium } from '../helpers/browser.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';

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

describe('ablation view', () => {
  it('previews patch→other-patch blocking, then narrows it to drag-selected query patches', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await page.goto(server.url);
    await page.getByTestId('nav-ablation').click();
    const preview = page.getByTestId('mask-preview');
    // Vision tower of micro-llava: CLS + 8×8 patches. Every patch blocked from every other patch: 64 · 63 edges.
    await expect.poll(() => preview.getAttribute('data-blocked')).toBe(String(64 * 63));
    // Drag over the first three patches of the top row: only their rows stay blocked.
    const grid = page.getByTestId('query-grid');
    const first = grid.locator('[data-index="0"]');
    const third = grid.locator('[data-index="2"]');
    const a = (await first.boundingBox())!;
    const b = (await third.boundingBox())!;
    await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 6 });
    await page.mouse.up();
    await expect.poll(() => preview.getAttribute('data-blocked')).toBe(String(3 * 63));
    // The canvas shows it: row 1 (patch 0) is red off the diagonal, the CLS row is not.
    // Runs in the page; typed structurally because this file is type-checked without DOM types.
    type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const rowColours = await preview.evaluate((el) => {
      const c = el as unknown as Canvas;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const px = (r: number, col: number) => Array.from(d.slice((r * c.width + col) * 4, (r * c.width + col) * 4 + 3));
      return { patch0ToPatch5: px(1, 6), clsToPatch5: px(0, 6), patch0ToSelf: px(1, 1) };
    });
    expect(rowColours.patch0ToPatch5).toEqual([239, 107, 107]);
    expect(rowColours.clsToPatch5).toEqual([37, 41, 50]);
    expect(rowColours.patch0ToSelf).toEqual([37, 41, 50]);
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'ablation.png') });
  });

  it('offers the exported layers, counts only causal LLM edges, and runs exactly the listed spec', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1000 } });
    await page.goto(server.url);
    await page.getByTestId('nav-ablation').click();
    const preview = page.getByTestId('mask-preview');
    await preview.waitFor();
    // micro-llava: 4 CLIP layers, vision_feature_layer −2, so the export has vision layers 0, 1, 2 only.
    expect(await page.getByTestId('layer-chip').allTextContents()).toEqual(['0', '1', '2']);
    expect(await page.getByTestId('preview-layer').locator('option').allTextContents()).toEqual(['0', '1', '2']);

    // LLM, text → image: in the sample prompt (4 text, 64 image, 12 text) only the 12 text tokens
    // after the image can attend to it: 12·64 per head, not (4 + 12)·64.
    await page.getByTestId('ablation-part').selectOption('llm');
    await page.getByTestId('ablation-queries').selectOption('text');
    await page.getByTestId('ablation-keys').selectOption('image');
    expect(await page.getByTestId('layer-chip').allTextContents()).toEqual(['0', '1', '2', '3']);
    await expect.poll(() => preview.getAttribute('data-blocked')).toBe(String(12 * 64));
    // The whole spec: 4 layers × 4 heads, the count the Sweeps composer gives the same spec.
    await expect.poll(() => page.getByTestId('spec-edges').getAttribute('data-blocked')).toBe(String(4 * 4 * 12 * 64));
    // Query row 0 (text before the image) → key 4 (first image token) is after it: drawn as causally masked, not red.
    type Canvas = { width: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const px = await preview.evaluate((el) => {
      const c = el as unknown as Canvas;
      const at = (r: number, col: number) => Array.from(c.getContext('2d').getImageData(col, r, 1, 1).data.slice(0, 3));
      return { early: at(0, 4), late: at(4 + 64, 4) };
    });
    expect(px.early).toEqual([22, 24, 29]);
    expect(px.late).toEqual([239, 107, 107]);

    // Nothing added yet: the form's edit is what is listed (once). Add it: still one, and "Add edit" is spent.
    const listed = page.getByTestId('spec-edit');
    await expect.poll(() => listed.count()).toBe(1);
    await page.getByTestId('add-edit').click();
    await expect.poll(() => listed.count()).toBe(1);
    expect(await page.getByTestId('add-edit').isDisabled()).toBe(true);
    // Change the form: it is flagged as not in the spec and does not run.
    await page.getByTestId('layer-chip').nth(0).click();
    await page.getByTestId('form-not-added').waitFor();
    expect(await listed.count()).toBe(1);

    await page.getByTestId('run-ablation').click();
    const toast = page.getByTestId('toast');
    await toast.waitFor();
    const href = (await page.getByTestId('toast-link').getAttribute('href'))!;
    const runId = decodeURIComponent(href.replace(/^#\/runs\?run=/, ''));
    expect(await toast.textContent()).toContain(runId);
    const { run } = await client.call('runs/get', { runId });
    const edits = (run.spec as { ablation: { edits: { part: string; layers: unknown; queries: unknown; keys: unknown }[] } }).ablation.edits;
    expect(edits).toHaveLength(1);
    expect(edits[0]).toMatchObject({ part: 'llm', layers: 'all', queries: { kind: 'text' }, keys: { kind: 'image' } });
    expect(run.name).toBe('ablation · block llm text→image (not self) all layers');
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'ablation-run.png') });
    await client.call('jobs/cancel', { runId }).catch(() => undefined);

    // The Experiments queue keeps the finished run (it was started in this window) with an "open run" link.
    await page.getByTestId('nav-experiments').click();
    const row = page.locator(`[data-testid="finished-run"][data-run="${runId}"]`);
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 30_000 }).toMatch(/^(cancelled|done)$/);
    expect(await row.getByTestId('open-finished-run').getAttribute('href')).toBe(`#/runs?run=${encodeURIComponent(runId)}`);
    expect(await page.locator(`[data-testid="queued-run"][data-run="${runId}"]`).count()).toBe(0);
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'queue-finished.png') });
    await page.close();
  });
});
