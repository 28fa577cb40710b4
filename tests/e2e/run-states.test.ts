/**
 * The run view makes failure visible (issue 23 item 9): a partial run shows its state, its reason
 * and each failed item with why; "Retry failed items" re-runs them and the view turns done. The
 * partial run is made by the CLI before the server starts (one engine per data folder): its
 * dataset's img-2 is moved away after import, so item long-0002 fails; it is put back before the retry.
 * LOUPE_E2E_RENDERER may point at another renderer build (default: out/renderer, as npm run test:e2e builds).
 */
import type { Browser, Page } from 'playwright-core';
import { spawnSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RENDERER_DIST, REPO_ROOT } from '../../src-main/paths.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, makeLongDataset, tempDir } from '../helpers/fixtures.ts';
import { E2E_TOKEN, type ServerProcess, startServer } from '../helpers/server-process.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
let browser: Browser;
let server: ServerProcess | undefined;
let page: Page;
let runId: string;
const folder = makeLongDataset(4);

beforeAll(async () => {
  const dataDir = tempDir();
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--json', '--data-dir', dataDir, '--provider', 'cpu'], { encoding: 'utf8', timeout: 240_000 });
  const datasetId = (JSON.parse(cli('import-dataset', folder).stdout.trim().split('\n').at(-1)!) as { id: string }).id;
  renameSync(join(folder, 'images/img-2.png'), join(folder, 'images/img-2.away'));
  const run = cli('run', '--model', MODEL_ID, '--dataset', datasetId);
  runId = (JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('{"result"'))!) as { result: { id: string } }).result.id;
  browser = await launchChromium();
  server = await startServer(dataDir, E2E_TOKEN, { bare: true, staticRoot: process.env.LOUPE_E2E_RENDERER ?? RENDERER_DIST });
  page = await openWorkbench(browser, server.url);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

describe('run view: states and failed items', () => {
  it('shows a partial run with its reason and failed items, and retries them to done', async () => {
    await page.getByTestId('nav-runs').click();
    const row = page.locator(`[data-testid="run-row"][data-run="${runId}"]`);
    await expect.poll(() => row.getAttribute('data-status')).toBe('partial');
    await row.click();
    await expect.poll(() => page.getByTestId('run-state').textContent()).toBe('partial');
    expect(await page.getByTestId('run-error').textContent()).toMatch(/^1 of 4 items failed: .*img-2\.png/);
    const failures = page.getByTestId('failure-row');
    await expect.poll(() => failures.count()).toBe(1);
    expect(await failures.first().textContent()).toMatch(/^long-0002.*img-2\.png.*1$/);

    renameSync(join(folder, 'images/img-2.away'), join(folder, 'images/img-2.png'));
    await page.getByTestId('retry-failed-open').click();
    await expect.poll(() => row.getAttribute('data-status'), { timeout: 60_000 }).toBe('done');
    // The open view reloads on the state change: done, no reason, no failed items.
    await expect.poll(() => page.getByTestId('run-state').textContent(), { timeout: 10_000 }).toBe('done');
    expect(await page.getByTestId('run-error').count()).toBe(0);
    expect(await page.getByTestId('failure-row').count()).toBe(0);
    await page.getByText('4 results').waitFor();
  });
});
