/**
 * The acceptance path in a real browser: open the served workbench, import a dataset,
 * start a job from the UI, watch progress events arrive, cancel another job, restart the
 * server and find the finished run listed.
 */
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { makeLongDataset, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';

const SHOTS = join(import.meta.dirname, 'screenshots');
let browser: Browser;
let server: ServerProcess | undefined;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

const open = (url: string): Promise<Page> => openWorkbench(browser, url, { width: 1360, height: 820 });

describe('workbench end to end', () => {
  it('starts, streams, cancels, and keeps runs across a server restart', async () => {
    const dataDir = tempDir();
    const dataset = makeLongDataset(300);
    server = await startServer(dataDir);
    let page = await open(server.url);
    await expect(page.getByTestId('provider').locator('select').inputValue()).resolves.toBe('cpu');

    // Import a dataset through the UI.
    await page.getByTestId('nav-datasets').click();
    await page.getByPlaceholder('folder with dataset.json').fill(dataset);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText('Items 1–50 of 300').waitFor();
    await page.screenshot({ path: join(SHOTS, 'datasets.png') });

    // Start two runs on it: the second waits in the queue and is cancelled.
    await page.getByTestId('nav-experiments').click();
    const longOption = await page.getByTestId('dataset').locator('option', { hasText: 'long (300)' }).getAttribute('value');
    await page.getByTestId('kind-encode').check();
    await page.getByTestId('dataset').selectOption(longOption!);
    await page.getByTestId('start').click();
    await page.getByTestId('start').click();
    const rows = page.getByTestId('queued-run');
    await expect.poll(() => rows.count()).toBe(2);
    const [first, second] = [await rows.nth(0).getAttribute('data-run'), await rows.nth(1).getAttribute('data-run')];
    expect(first).not.toBe(second);
    // Newest first in the list: cancel the one that is queued, not running.
    const queuedRow = page.locator(`[data-testid="queued-run"]:has(.status.queued)`);
    const cancelledId = await queuedRow.getAttribute('data-run');
    await queuedRow.getByTestId('cancel').click();
    await expect.poll(() => page.locator(`[data-testid="queued-run"][data-run="${cancelledId}"]`).count()).toBe(0);

    // Progress events stream while the other runs.
    await expect.poll(async () => Number(await page.getByTestId('progress-events').getAttribute('data-count')), { timeout: 60_000 }).toBeGreaterThan(5);
    await page.screenshot({ path: join(SHOTS, 'experiments-running.png') });
    await expect.poll(async () => Number(await page.getByTestId('progress-events').getAttribute('data-count')), { timeout: 120_000 }).toBe(300);
    const doneId = first === cancelledId ? second : first;

    // Restart the server on the same data and find both runs where they were left.
    await page.close();
    await server.stop();
    server = await startServer(dataDir);
    page = await open(server.url);
    await page.getByTestId('nav-runs').click();
    await expect(page.locator(`[data-testid="run-row"][data-run="${doneId}"]`).getAttribute('data-status')).resolves.toBe('done');
    await expect(page.locator(`[data-testid="run-row"][data-run="${cancelledId}"]`).getAttribute('data-status')).resolves.toBe('cancelled');
    await page.locator(`[data-testid="run-row"][data-run="${doneId}"]`).click();
    await page.getByText(`300 results`).waitFor();
    await page.screenshot({ path: join(SHOTS, 'runs.png') });
  });
});
