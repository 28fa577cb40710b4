/**
 * Labelling in the browser: import images, label a point pair and a box, undo/redo, reload and
 * find them (a name typed for one tool stays with it); paint a brush mask and a polygon mask,
 * edit the item's question, reload and find the mask pixels on the overlay canvases (outlines by
 * default, so the objects keep their colours; filled at an adjustable opacity) and the question.
 */
import type { Browser, Page } from 'playwright-core';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paintSegment } from '../../src-shared/dataset/mask-raster.ts';
import { launchChromium } from '../helpers/browser.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';
import { type ServerProcess, startServer } from '../helpers/server-process.ts';

let browser: Browser;
let server: ServerProcess;

// Runs in the page; typed structurally because this file is type-checked without DOM types.
type Canvas = { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };

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

/** Edge pixels of a 0/1 mask (a 4-neighbour outside the mask or the image), written out here as the test's reference. */
function ring(mask: Uint8Array, w: number, h: number): number[] {
  const on = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1;
  return Array.from(mask, (v, i) => {
    const x = i % w, y = Math.floor(i / w);
    return v === 1 && !(on(x - 1, y) && on(x + 1, y) && on(x, y - 1) && on(x, y + 1)) ? 1 : 0;
  });
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

    // Point pair: two clicks with the pair tool, named.
    await page.getByTestId('tool-pair').click();
    await page.getByTestId('label-text').fill('corner');
    let p = await at(page, 10, 12);
    await page.mouse.click(p.x, p.y);
    p = await at(page, 40, 44);
    await page.mouse.click(p.x, p.y);
    // Box: a drag with the box tool. The pair's name does not come along.
    await page.getByTestId('tool-box').click();
    expect(await page.getByTestId('label-text').inputValue()).toBe('');
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
    expect(byKind.pointPair.name).toBe('corner');
    expect(byKind.box.text).toBeUndefined();
    // Each tool keeps its own field: back on the pair tool, its name is still there.
    await page.getByTestId('tool-box').click();
    await page.getByTestId('label-text').fill('a box caption');
    await page.getByTestId('tool-pair').click();
    expect(await page.getByTestId('label-text').inputValue()).toBe('');
    await page.getByTestId('tool-box').click();
    expect(await page.getByTestId('label-text').inputValue()).toBe('a box caption');
    expect(byKind.pointPair.b.at).toEqual([40.5, 44.5]);
    expect(byKind.box.box).toEqual([20.5, 20.5, 50.5, 36.5]);
  });

  it('paints a brush mask and a polygon mask and edits the question; all survive a reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 1100 } });
    await page.goto(server.url);
    await page.getByTestId('nav-label').click();
    await page.getByTestId('new-dataset-name').fill('mask probes');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => page.getByTestId('label-empty').textContent()).toMatch(/has no images yet/);
    await page.getByTestId('image-folder').fill(imageFolder());
    await page.getByTestId('import-images').click();
    await page.getByText('added 3 images').waitFor();
    await page.getByTestId('label-surface-0').waitFor();
    await expect(page.getByTestId('labels-empty').textContent()).resolves.toMatch(/No labels yet/);
    await expect(page.getByTestId('label-shortcuts').textContent()).resolves.toMatch(/mask brush/);

    // Brush: radius 1.7 (well away from the grid distances 1.41 and 2), drag along row 10 from x = 10 to 20.
    await page.keyboard.press('m');
    await page.getByTestId('label-text').fill('blob');
    await page.getByTestId('brush-radius').fill('1.7');
    await page.getByTestId('tool-brush').click();
    let p = await at(page, 10, 10);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    p = await at(page, 20, 10);
    await page.mouse.move(p.x, p.y, { steps: 8 });
    await page.mouse.up();
    await expect.poll(() => page.getByTestId('label-status').textContent()).toBe('saved brush stroke');
    const brushed = new Uint8Array(64 * 64);
    paintSegment(brushed, 64, 64, [10.5, 10.5], [20.5, 10.5], 1.7, 1);
    expect(brushed.reduce((n, v) => n + v, 0)).toBe(39); // x 9…21 × y 9…11

    // Polygon: a new mask, four clicks at pixel centres, Enter closes.
    await page.getByTestId('label-text').fill('square');
    await page.getByTestId('new-mask').click();
    await page.getByTestId('tool-polygon').click();
    for (const [x, y] of [[40, 40], [55, 40], [55, 55], [40, 55]] as const) {
      p = await at(page, x, y);
      await page.mouse.click(p.x, p.y);
    }
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('label-status').textContent()).toBe('saved polygon');
    const square = Uint8Array.from({ length: 64 * 64 }, (_, i) => (i % 64 >= 40 && i % 64 < 55 && Math.floor(i / 64) >= 40 && Math.floor(i / 64) < 55 ? 1 : 0));
    const masks = page.getByTestId('label-list').locator('li[data-kind="mask"]');
    await expect.poll(() => masks.count()).toBe(2);

    // Undo removes the polygon mask from storage, redo brings it back.
    await page.keyboard.press('Control+z');
    await expect.poll(() => masks.count()).toBe(1);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => masks.count()).toBe(2);

    // The question: prompt, choices, answer; an answer outside the choices is refused before saving.
    await page.getByTestId('question-prompt').fill('which shape is marked?');
    await page.getByTestId('question-choices').fill('circle\nsquare\nblob');
    await page.getByTestId('question-answer').selectOption('square');
    await page.getByTestId('question-save').click();
    await expect.poll(() => page.getByTestId('label-status').textContent()).toBe('question saved');
    await page.getByRole('button', { name: 'undo', exact: true }).click();
    await expect.poll(() => page.getByTestId('question-prompt').inputValue()).toBe('');
    await page.getByRole('button', { name: 'redo', exact: true }).click();
    await expect.poll(() => page.getByTestId('question-prompt').inputValue()).toBe('which shape is marked?');
    await page.getByTestId('question-choices').fill('circle\nblob');
    await expect(page.getByTestId('question-problem').textContent()).resolves.toBe('the answer "square" is not one of the choices (circle, blob)');
    await expect(page.getByTestId('question-save').isDisabled()).resolves.toBe(true);
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'label-mask.png') });

    await page.reload();
    await page.getByTestId('nav-label').click();
    await page.getByTestId('label-surface-0').waitFor();
    await expect.poll(() => masks.count()).toBe(2);
    const stored = await masks.evaluateAll((lis) => lis.map((li) => ({ id: li.getAttribute('data-id'), label: JSON.parse(li.querySelector('.mono')?.textContent ?? '{}') })));
    const byName = Object.fromEntries(stored.map((m) => [m.label.name, m]));
    expect(byName.blob.label).toMatchObject({ kind: 'mask', image: 0, ids: [1] });
    expect(byName.blob.label.polygons).toBeUndefined();
    expect(byName.square.label.polygons).toEqual([[[40.5, 40.5], [55.5, 40.5], [55.5, 55.5], [40.5, 55.5]]]);

    // By default the overlays are outlines: exactly the masks' edge pixels, opaque; the inside shows the image untouched.
    const overlayMask = (id: string) =>
      page.locator(`[data-testid="mask-overlay"][data-label="${id}"]`).evaluate((el) => {
        const c = el as unknown as Canvas & { style: { opacity: string }; getAttribute(a: string): string | null };
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return { w: c.width, h: c.height, mode: c.getAttribute('data-mode'), opacity: c.style.opacity, alpha: Array.from({ length: c.width * c.height }, (_, i) => (d[i * 4 + 3]! > 0 ? 1 : 0)) };
      });
    const blob = await overlayMask(byName.blob.id!);
    expect([blob.w, blob.h, blob.mode, blob.opacity]).toEqual([64, 64, 'outline', '1']);
    expect(blob.alpha).toEqual(ring(brushed, 64, 64));
    expect(blob.alpha.reduce<number>((n, v) => n + v, 0)).toBe(39 - 11); // the 11 inner pixels of row 10 stay clear
    expect((await overlayMask(byName.square.id!)).alpha).toEqual(ring(square, 64, 64));
    await page.screenshot({ path: join(import.meta.dirname, 'screenshots', 'label-outline.png') });

    // Fill mode: the whole mask, see-through by the opacity slider.
    await page.getByTestId('overlay-mode').selectOption('fill');
    await page.getByTestId('overlay-alpha').fill('0.6');
    await expect.poll(async () => (await overlayMask(byName.square.id!)).opacity).toBe('0.6');
    expect((await overlayMask(byName.blob.id!)).alpha).toEqual(Array.from(brushed));
    expect((await overlayMask(byName.square.id!)).alpha).toEqual(Array.from(square));

    // Selecting a mask highlights it in yellow: its outline in outline mode, the whole mask (heatmap top colour) in fill mode.
    await page.getByTestId('overlay-mode').selectOption('outline');
    await page.getByTestId('label-list').locator(`li[data-id="${byName.blob.id}"] button`).first().click();
    const selectedMask = () =>
      page.getByTestId('mask-selected').evaluate((el) => {
        const c = el as unknown as Canvas;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const on = Array.from({ length: c.width * c.height }, (_, i) => (d[i * 4 + 3]! > 0 ? 1 : 0));
        const k = on.indexOf(1);
        return { on, rgb: Array.from(d.slice(k * 4, k * 4 + 3)) };
      });
    await expect.poll(async () => (await selectedMask()).on).toEqual(ring(brushed, 64, 64));
    expect((await selectedMask()).rgb).toEqual([253, 231, 37]);
    await page.getByTestId('overlay-mode').selectOption('fill');
    await expect.poll(async () => (await selectedMask()).on).toEqual(Array.from(brushed));
    expect((await selectedMask()).rgb).toEqual([253, 231, 37]);
    // Keys go to the view, not the overlay select that has the focus.
    await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { blur(): void } | null } }).document.activeElement?.blur());
    await page.keyboard.press('m');
    await page.keyboard.press('e');
    await page.getByTestId('brush-radius').fill('1.7');
    await page.getByTestId('tool-brush').click();
    p = await at(page, 10, 10);
    await page.mouse.move(p.x, p.y);
    await page.mouse.down();
    p = await at(page, 12, 10);
    await page.mouse.move(p.x, p.y, { steps: 4 });
    await page.mouse.up();
    await expect.poll(() => page.getByTestId('label-status').textContent()).toBe('saved erase stroke');
    const erased = brushed.slice();
    paintSegment(erased, 64, 64, [10.5, 10.5], [12.5, 10.5], 1.7, 0);
    expect(erased.reduce((n, v) => n + v, 0)).toBe(39 - 15); // x 9…13 × y 9…11 gone
    await expect.poll(async () => (await selectedMask()).on).toEqual(Array.from(erased));
    await page.keyboard.press('Control+z');
    await expect.poll(async () => (await selectedMask()).on).toEqual(Array.from(brushed));

    // The question as saved (the unsaved, invalid edit is gone).
    await expect.poll(() => page.getByTestId('question-prompt').inputValue()).toBe('which shape is marked?');
    await expect(page.getByTestId('question-choices').inputValue()).resolves.toBe('circle\nsquare\nblob');
    await expect(page.getByTestId('question-answer').inputValue()).resolves.toBe('square');
  });
});
