/**
 * Run management (issue 24): runs named by what differs, renamed, tagged and annotated in the
 * view; a run created or renamed from another client shows up without a reload; a delete is
 * undoable, and "Delete now" removes the run and its blob files from disk — except blobs another
 * run still references (content-addressed files are shared).
 */
import type { Browser, Page } from 'playwright-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineClient } from '../../src-shared/contract/client.ts';
import { launchChromium, openWorkbench } from '../helpers/browser.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, connectEngine, startServer } from '../helpers/server-process.ts';
import { waitForRun } from '../helpers/runs.ts';

const SHOTS = join(import.meta.dirname, 'screenshots');
const DATASET_ID = 'colour-at-point';
let browser: Browser;
let server: ServerProcess;
let client: EngineClient;
let dataDir: string;

async function run(spec: object): Promise<string> {
  const id = (await client.call('jobs/start', { kind: 'vlm-forward', modelId: MODEL_ID, datasetId: DATASET_ID, spec })).id;
  await waitForRun(client, id, 120_000);
  return id;
}
const blobPath = (sha: string) => join(dataDir, 'blobs', sha.slice(0, 2), `${sha}.safetensors`);
const blobsOf = async (runId: string) => [...new Set((await client.call('runs/get', { runId })).results.flatMap((r) => r.tensors.map((t) => t.blob)))];

beforeAll(async () => {
  browser = await launchChromium();
  dataDir = tempDir();
  server = await startServer(dataDir);
  client = await connectEngine(server);
}, 60_000);
afterAll(async () => {
  client?.close();
  await browser?.close();
  await server?.stop();
});

describe('run management', () => {
  it('names, renames, tags, refreshes live, deletes with undo, and purges only unshared blobs', async () => {
    const projector = await run({ limit: 3, taps: { projector: true } });
    const twin = await run({ limit: 3, taps: { projector: true } });
    const vision = await run({ limit: 3, taps: { visionLayers: true }, storeDtype: 'float32' });
    const page: Page = await openWorkbench(browser, `${server.url}#/runs`, { width: 1360, height: 1000 });
    const row = (id: string) => page.locator(`[data-testid="run-row"][data-run="${id}"]`);
    await expect.poll(() => row(vision).locator('[data-testid="run-summary"]').textContent()).toBe('vlm-forward · taps visionLayers · store float32 · limit 3');

    // Rename, tag and annotate in the view; search finds it by tag.
    await row(vision).locator('[data-testid="run-name"]').click();
    await page.getByTestId('run-rename').fill('vision layers fp32');
    await page.getByTestId('run-tags').fill('baseline, fp32');
    await page.getByTestId('run-notes').fill('all vision layers stored in float32');
    await page.getByTestId('run-save').click();
    await page.getByTestId('run-saved').waitFor();
    await expect.poll(() => row(vision).locator('[data-testid="run-name"]').textContent()).toBe('vision layers fp32');
    expect((await client.call('runs/catalog', {})).find((e) => e.run.id === vision)).toMatchObject({ tags: ['baseline', 'fp32'], notes: 'all vision layers stored in float32' });
    await page.getByTestId('run-search').fill('fp32');
    await expect.poll(() => page.getByTestId('run-row').count()).toBe(1);
    await page.getByTestId('run-search').fill('');

    // Another client renames a run: the view picks it up from runs/version without a reload.
    await client.call('runs/annotate', { runId: twin, name: 'renamed elsewhere' });
    await expect.poll(() => row(twin).locator('[data-testid="run-name"]').textContent(), { timeout: 10_000 }).toBe('renamed elsewhere');

    // Delete → gone from the list, Undo → back.
    await page.getByTestId('run-delete').click();
    await page.getByTestId('undo-toast').waitFor();
    await expect.poll(() => row(vision).count()).toBe(0);
    await page.getByTestId('undo-delete').click();
    await expect.poll(() => row(vision).count()).toBe(1);

    // Delete again and purge now: the run and its blob files are gone from disk.
    const visionBlobs = await blobsOf(vision);
    expect(visionBlobs.length).toBeGreaterThan(0);
    expect(visionBlobs.every((b) => existsSync(blobPath(b)))).toBe(true);
    await row(vision).locator('[data-testid="run-name"]').click();
    await page.getByTestId('run-delete').click();
    await page.screenshot({ path: join(SHOTS, 'runs-manage.png') });
    await page.getByTestId('purge-now').click();
    await expect.poll(() => visionBlobs.filter((b) => existsSync(blobPath(b))).length).toBe(0);
    await expect(client.call('runs/get', { runId: vision })).rejects.toThrow(/no run with id/);

    // A run whose blobs another run shares: purging it keeps the shared files.
    const mine = await blobsOf(projector);
    const shared = new Set(await blobsOf(twin));
    await client.call('runs/delete', { runIds: [projector] });
    const purged = await client.call('runs/purge', { runIds: [projector] });
    expect(purged.runs).toEqual([projector]);
    for (const b of mine) expect(existsSync(blobPath(b))).toBe(shared.has(b));
    expect(purged.blobsRemoved.sort()).toEqual(mine.filter((b) => !shared.has(b)).sort());
    await expect.poll(() => row(projector).count(), { timeout: 10_000 }).toBe(0);
    await page.close();
  });
});
