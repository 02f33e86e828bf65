/**
 * A real headless browser for the dashboard tests: Debian's chromium driven by playwright-core,
 * one context and page, every console error, page error and CSP violation collected, and
 * full-page screenshots into test-output/screenshots/ (or $SHOAL_SCREENSHOTS) for a person.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './helpers.js';

export const CHROMIUM = '/usr/bin/chromium';
export const SHOTS = process.env.SHOAL_SCREENSHOTS ?? path.join(ROOT, 'test-output', 'screenshots');
export const VIEWPORT = { width: 1280, height: 800 };

export interface BrowserRun {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console errors, failed scripts and CSP violations seen so far. */
  problems: string[];
  /** Save a screenshot of the page as `<name>.png` and print its path. */
  shot(name: string, fullPage?: boolean): Promise<void>;
  close(): Promise<void>;
}

/** Null (after saying why) when there is no chromium: the caller skips. */
export async function launchBrowser(): Promise<BrowserRun | null> {
  if (!existsSync(CHROMIUM)) {
    console.log(`      skipped: no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
    return null;
  }
  await fsp.mkdir(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light' });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return {
    browser,
    context,
    page,
    problems,
    async shot(name, fullPage = true) {
      const file = path.join(SHOTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage });
      console.log(`      screenshot: ${path.relative(process.cwd(), file)}`);
    },
    async close() {
      await context.close().catch(() => {});
      await browser.close().catch(() => {});
    },
  };
}

/** Mark the page's window; `sameWindow` is then true until the page reloads. */
export async function markWindow(page: Page): Promise<void> {
  await page.evaluate(() => ((window as unknown as { __mark: number }).__mark = 1));
}
export async function sameWindow(page: Page): Promise<boolean> {
  return (await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)) === 1;
}

/**
 * Drag files over the page and drop them on `selector`, as a person would from a file
 * manager: dragenter, dragover, then drop, each with a DataTransfer holding the files.
 */
export async function dropFiles(page: Page, selector: string, files: Array<{ name: string; type: string; bytes: Buffer }>, opts: { beforeDrop?: () => Promise<void> } = {}): Promise<void> {
  const dt = await page.evaluateHandle((list) => {
    const t = new DataTransfer();
    for (const f of list) t.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: f.type }));
    return t;
  }, files.map((f) => ({ name: f.name, type: f.type, b64: f.bytes.toString('base64') })));
  await page.dispatchEvent(selector, 'dragenter', { dataTransfer: dt });
  await page.dispatchEvent(selector, 'dragover', { dataTransfer: dt });
  await opts.beforeDrop?.();
  await page.dispatchEvent(selector, 'drop', { dataTransfer: dt });
  await dt.dispose();
}
