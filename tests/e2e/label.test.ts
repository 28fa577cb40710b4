/** Labelling in the browser: import images, label a point pair and a box, undo/redo, reload and find them. */
import type { Browser, Page } from 'playwright-core';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';

let browser: Browser;
let server: ServerProcess;

beforeAll(async () => {
  browser = await launchChromium();
  server = await startServer(tempDir());
});
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

function imageFolder(): string {
  const dir = tempDir('loupe-images-');
  mkdirSync(dir, { recursive: true });
  const items = (JSON.parse(readFileSync(join(DATASET_DIR, 'dataset.json'), 'utf8')) as { items: { images: string[] }[] }).items.slice(0, 3);
  items.forEach((it, i) => copyFileSync(join(DATASET_DIR, it.images[0]!), join(dir, `photo-${i}.png`)));
  return dir;
}

/** Clicks at image pixel (x, y) of a 64×64 image on the label surface. */
async function at(page: Page, x: number, y: number) {
  const box = (await page.getByTestId('label-surface-0').boundingBox())!;
  return { x: box.x + ((x + 0.5) / 64) * box.width, y: box.y + ((y + 0.5) / 64) * box.height };
}

describe('dataset labelling', () => {
  it('labels a point pair and a box that survive a reload; undo and redo go through storage', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await page.goto(server.url);
    await page.getByTestId('nav-label').click();
    await page.getByTestId('new-dataset-name').fill('my probes');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByTestId('image-folder').fill(imageFolder());
    await page.getByTestId('import-images').click();
    await page.getByText('added 3 images').waitFor();
    await page.getByTestId('label-surface-0').waitFor();

    // Point pair: two clicks with the pair tool.
    await page.getByTestId('tool-pair').click();
    let p = await at(page, 10, 12);
    await page.mouse.click(p.x, p.y);
    p = await at(page, 40, 44);
    await page.mouse.click(p.x, p.y);
    // Box: a drag with the box tool.
    await page.getByTestId('tool-box').click();
    const a = await at(page, 20, 20);
    const b = await at(page, 50, 36);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 5 });
    await page.mouse.up();
    const list = page.getByTestId('label-list').locator('li');
    await expect.poll(() => list.count()).toBe(2);

    // Undo removes the box from storage, redo restores it.
    await page.keyboard.press('Control+z');
    await expect.poll(() => list.count()).toBe(1);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => list.count()).toBe(2);
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'label.png') });

    await page.reload();
    await page.getByTestId('nav-label').click();
    await page.getByTestId('label-surface-0').waitFor();
    await expect.poll(() => list.count()).toBe(2);
    const labels = await list.evaluateAll((lis) => lis.map((li) => ({ kind: li.getAttribute('data-kind'), json: li.querySelector('.mono')?.textContent ?? '' })));
    const byKind = Object.fromEntries(labels.map((l) => [l.kind, JSON.parse(l.json)]));
    expect(byKind.pointPair.a.at).toEqual([10.5, 12.5]);
    expect(byKind.pointPair.b.at).toEqual([40.5, 44.5]);
    expect(byKind.box.box).toEqual([20.5, 20.5, 50.5, 36.5]);
  });
});
