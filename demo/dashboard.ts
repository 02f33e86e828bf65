/**
 * `npm run demo:dashboard`: a lively dashboard to look at. Four nodes on 127.0.0.1 (no
 * multicast: they know each other by hand and by asking each other for peers): "laptop"
 * has the dashboard, three others share files behind upload limits, so laptop's downloads
 * take a while: one finishes, one is paused, one runs from all three at once. Prints the
 * dashboard's URL and runs until Ctrl-C.
 *
 * `npm run demo:dashboard -- --screenshot docs/dashboard.png [--route /transfers] [--dark]`
 * instead opens the page in Debian's chromium (playwright-core) once the big download is
 * past 45%, with the detail row open on Transfers, saves a 1280x800 screenshot, and exits:
 * this is how the README's picture is made.
 */
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startNode, tempDir, randomFile, cleanup, waitFor } from '../test/helpers.js';
import { WebServer } from '../web/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const { values: args } = parseArgs({
  options: {
    screenshot: { type: 'string' },
    route: { type: 'string', default: '/transfers' },
    dark: { type: 'boolean', default: false },
  },
});

const dir = await tempDir('shoal-demo-dashboard-');
const big = 'debian-12.8.0-amd64-netinst.iso';
const done = 'big-buck-bunny-1080p.mp4';
const paused = 'lecture-07-distributed-systems.mkv';
await randomFile(path.join(dir, 'b', 'shared', big), 40 * MiB);
for (const n of ['c', 'd']) {
  await fsp.mkdir(path.join(dir, n, 'shared'), { recursive: true });
  await fsp.copyFile(path.join(dir, 'b', 'shared', big), path.join(dir, n, 'shared', big));
}
await randomFile(path.join(dir, 'c', 'shared', done), 3 * MiB);
await randomFile(path.join(dir, 'd', 'shared', paused), 12 * MiB);
await randomFile(path.join(dir, 'a', 'shared', 'holiday-photos-2024.zip'), 5 * MiB + 12345);
await randomFile(path.join(dir, 'a', 'shared', 'thesis-final-v3.pdf'), MiB + 4567);
await randomFile(path.join(dir, 'a', 'shared', 'recipes/sourdough.md'), 9 * KiB);

const slow = { pieceLength: 128 * KiB };
const c = await startNode(path.join(dir, 'c'), { ...slow, name: 'nas', maxUploadRate: 700 * KiB });
const d = await startNode(path.join(dir, 'd'), { ...slow, name: 'office-pc', maxUploadRate: 450 * KiB });
const b = await startNode(path.join(dir, 'b'), {
  ...slow,
  name: 'studio',
  maxUploadRate: 600 * KiB,
  peers: [{ host: '127.0.0.1', port: c.port }, { host: '127.0.0.1', port: d.port }],
});
const a = await startNode(path.join(dir, 'a'), { name: 'laptop', peers: [{ host: '127.0.0.1', port: b.port }], gossipIntervalMs: 500 });
const web = new WebServer({ node: a, port: 0 });
await web.start();

let finished = false;
async function finish(code: number): Promise<never> {
  if (!finished) {
    finished = true;
    await web.stop();
    await Promise.all([a, b, c, d].map((n) => n.stop()));
    await cleanup(dir);
  }
  process.exit(code);
}
process.on('SIGINT', () => void finish(0));
process.on('SIGTERM', () => void finish(0));

try {
  await waitFor(() => a.knownPeers().length >= 3, 15_000, 'laptop to learn the three other nodes');
  const h1 = await a.download(done);
  await a.whenDone(h1);
  const h2 = await a.download(paused);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await a.pause(h2);
  const h3 = await a.download(big);

  if (!args.screenshot) {
    process.stdout.write(`dashboard: ${web.url}/ (laptop; nas, office-pc and studio share files behind upload limits)\nCtrl-C stops the nodes and removes ${dir}\n`);
  } else {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    try {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: args.dark ? 'dark' : 'light' });
      const page = await ctx.newPage();
      await page.goto(web.url + args.route);
      await page.waitForSelector('#live.on', { state: 'attached' });
      if (args.route === '/transfers') {
        await page.click(`tr.xfer[data-infohash="${h3}"] button.toggle`);
        await page.waitForSelector('tr.detail .peer-rows tr');
      }
      await page.waitForFunction(
        (h) => {
          const bar = document.querySelector<HTMLProgressElement>(`tr.xfer[data-infohash="${h}"] progress, li[data-infohash="${h}"] progress`);
          return bar !== null && bar.value > 0.45;
        },
        h3,
        { timeout: 120_000 },
      );
      await page.waitForTimeout(400);
      await page.screenshot({ path: args.screenshot });
      process.stdout.write(`saved ${args.screenshot}\n`);
    } finally {
      await browser.close();
    }
    await finish(0);
  }
} catch (err) {
  process.stderr.write(`demo:dashboard: ${(err as Error).message}\n`);
  await finish(1);
}
