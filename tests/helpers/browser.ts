/** Debian's Chromium driven by playwright-core (no browser download). */
import { type Browser, type Page, chromium } from 'playwright-core';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/** A new page on the served workbench, once its engine connection is up. */
export async function openWorkbench(browser: Browser, url: string, viewport = { width: 1360, height: 860 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.goto(url);
  await page.getByText('engine connected').waitFor();
  return page;
}
