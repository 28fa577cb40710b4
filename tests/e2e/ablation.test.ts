/** Composing an ablation spec on the token grid: the mask preview counts the edges it blocks. */
import type { Browser } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.ts';
import { tempDir } from '../helpers/fixtures.ts';
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
});
