/**
 * The dashboard's transfer controls in a real headless browser (Debian's chromium driven by
 * playwright-core), against real nodes on loopback: the Add dialog takes a magnet link and a
 * chosen .torrent, a .torrent dropped on a page starts its download, a finished transfer is
 * removed after the dialog asks whether to keep or delete its file, and the Seeding page shows
 * what the node uploads, to whom, with its share ratio. Then the `web` program itself is
 * stopped behind an open page (frozen with SIGSTOP, then ended with SIGTERM): the page says
 * plainly that the node is not running and greys out what it shows, and recovers by itself
 * when the program runs again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { launchBrowser, markWindow, sameWindow, dropFiles, type BrowserRun } from '../browser.js';
import { ROOT, Children, cleanup, exitWithin, freePort, randomFile, startNode, tempDir, tempDirPerTest, waitFor } from '../helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const TORRENT_TYPE = 'application/x-bittorrent';

describe('dashboard in a browser: add, drop, remove, seeding', function () {
  this.timeout(120_000);
  this.slow(10_000);
  let dir = '';
  let a: Node | undefined;
  let b: Node | undefined;
  let c: Node | undefined;
  let web: WebServer | undefined;
  let run: BrowserRun | null = null;
  let base = '';
  const hashOf = (n: Node, name: string) => n.files().find((f) => f.name === name)!.metainfo.infoHashHex;
  const row = (h: string) => run!.page.locator(`#transfers tr.xfer[data-infohash="${h}"]`);
  const doneRow = (h: string) => row(h).locator('.badge.state', { hasText: 'done' }).waitFor({ timeout: 30_000 });

  async function open(route: string): Promise<void> {
    await run!.page.goto(base + route);
    await run!.page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
  }

  before(async function () {
    run = await launchBrowser();
    if (!run) return this.skip();
    dir = await tempDir('shoal-web-browser-transfers-');
    for (const f of ['alpha.bin', 'beta.bin', 'gamma.bin']) await randomFile(path.join(dir, 'b', 'shared', f), 1 * MiB);
    await randomFile(path.join(dir, 'a', 'shared', 'from-a.bin'), 2 * MiB);
    b = await startNode(path.join(dir, 'b'), { name: 'studio', maxUploadRate: 2 * MiB });
    // A sends at 384 KiB/s: C's download of from-a.bin takes about five seconds, long enough to watch.
    a = await startNode(path.join(dir, 'a'), { name: 'laptop', peers: [{ host: '127.0.0.1', port: b.port }], maxUploadRate: 384 * KiB });
    web = new WebServer({ node: a, port: 0 });
    await web.start();
    base = web.url;
  });

  after(async function () {
    await run?.close();
    await web?.stop();
    await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
    if (dir) await cleanup(dir);
  });

  it('adds a magnet link from the Add dialog; a bad one is refused with the reason, in the dialog', async function () {
    const page = run!.page;
    await open('/transfers');
    await markWindow(page);
    await page.click('.nav-add');
    const dialog = page.locator('#add-dialog');
    await dialog.waitFor({ state: 'visible' });
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('add-target');

    await page.fill('#add-target', 'magnet:?xt=urn:btih:xyz');
    await page.click('#add-submit');
    await page.locator('#add-error').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.textContent('#add-error')).to.match(/magnet/i);
    expect(await dialog.isVisible(), 'the dialog stays open to fix the link').to.equal(true);

    const h = hashOf(b!, 'alpha.bin');
    await page.fill('#add-target', `magnet:?xt=urn:btih:${h}&dn=alpha.bin&x.pe=127.0.0.1:${b!.port}`);
    await run!.shot('add-dialog', false);
    await page.click('#add-submit');
    await dialog.waitFor({ state: 'hidden', timeout: 15_000 });
    await page.locator('.toast.ok', { hasText: 'Downloading alpha.bin' }).waitFor({ timeout: 5000 });
    await row(h).waitFor({ timeout: 10_000 });
    await doneRow(h);
    expect(await sameWindow(page)).to.equal(true);
  });

  it('starts the download of a .torrent dropped anywhere on a page; other files are refused with a word on where they go', async function () {
    const page = run!.page;
    await open('/');
    await markWindow(page);
    const h = hashOf(b!, 'beta.bin');
    const torrent = { name: 'beta.bin.torrent', type: TORRENT_TYPE, bytes: b!.torrentFile(h)! };
    await dropFiles(page, 'main', [torrent], {
      beforeDrop: async () => {
        expect(await page.locator('#drop-overlay').isVisible(), 'the page says what a drop does').to.equal(true);
      },
    });
    const started = page.locator('.toast.ok', { hasText: 'Downloading beta.bin' });
    await started.waitFor({ timeout: 10_000 });
    expect(await page.locator('#drop-overlay').isHidden()).to.equal(true);
    expect(await started.locator('a[href="/transfers"]').count(), 'a link to follow it').to.equal(1);

    await dropFiles(page, 'main', [{ name: 'holiday.jpg', type: 'image/jpeg', bytes: Buffer.from('not a torrent') }]);
    await page.locator('.toast.error', { hasText: 'only .torrent files' }).waitFor({ timeout: 5000 });
    expect(await sameWindow(page)).to.equal(true);
    await waitFor(() => a!.listDownloads().some((d) => d.infohash === h), 5000, 'the download on the node');
  });

  it('takes a .torrent chosen in the Add dialog; a bad one is refused with the reason', async function () {
    const page = run!.page;
    await open('/transfers');
    await page.click('.nav-add');
    await page.setInputFiles('#add-file', { name: 'broken.torrent', mimeType: TORRENT_TYPE, buffer: Buffer.from('this is not bencode') });
    await page.locator('#add-error').waitFor({ state: 'visible', timeout: 10_000 });
    expect(await page.textContent('#add-error')).to.match(/broken\.torrent: .*not a torrent/);
    const h = hashOf(b!, 'gamma.bin');
    await page.setInputFiles('#add-file', { name: 'gamma.bin.torrent', mimeType: TORRENT_TYPE, buffer: b!.torrentFile(h)! });
    await page.locator('#add-dialog').waitFor({ state: 'hidden', timeout: 10_000 });
    await row(h).waitFor({ timeout: 10_000 });
    await doneRow(h);
  });

  it('removes a finished transfer: a dialog asks to keep the file or delete it', async function () {
    const page = run!.page;
    await open('/transfers');
    await markWindow(page);
    const alpha = hashOf(b!, 'alpha.bin');
    const beta = hashOf(b!, 'beta.bin');
    await doneRow(alpha);
    await doneRow(beta);
    const alphaFile = path.join(a!.downloadDir, 'alpha.bin');

    // Cancel leaves it be.
    await row(alpha).locator('button[data-act="remove"]').click();
    const dialog = page.locator('dialog.remove-dialog');
    await dialog.waitFor({ state: 'visible' });
    expect(await dialog.textContent()).to.include(alphaFile);
    await dialog.locator('button', { hasText: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await row(alpha).count()).to.equal(1);

    // "Remove and delete the file": gone from the list and from the disk, no longer shared.
    await row(alpha).locator('button[data-act="remove"]').click();
    await run!.shot('remove-dialog', false);
    await dialog.locator('button', { hasText: 'Remove and delete the file' }).click();
    await row(alpha).waitFor({ state: 'detached', timeout: 10_000 });
    expect(a!.listDownloads().some((d) => d.infohash === alpha)).to.equal(false);
    await waitFor(async () => !(await fsp.readdir(a!.downloadDir)).includes('alpha.bin'), 5000, 'alpha.bin deleted');
    await waitFor(() => !a!.files().some((f) => f.name === 'alpha.bin'), 5000, 'alpha.bin no longer shared');

    // "Remove from list": gone from the list, the file stays (and stays shared).
    await row(beta).locator('button[data-act="remove"]').click();
    await dialog.locator('button', { hasText: 'Remove from list' }).click();
    await row(beta).waitFor({ state: 'detached', timeout: 10_000 });
    expect(a!.listDownloads().some((d) => d.infohash === beta)).to.equal(false);
    expect(await fsp.readdir(a!.downloadDir)).to.include('beta.bin');
    expect(await sameWindow(page)).to.equal(true);
  });

  it('shows on the Seeding page what the node uploads, to whom, and the share ratio', async function () {
    const page = run!.page;
    await open('/seeding');
    await markWindow(page);
    expect(await page.locator('#seeding .empty-row').count()).to.equal(1);
    const h = hashOf(a!, 'from-a.bin');
    c = await startNode(path.join(dir, 'c'), { name: 'phone', peers: [{ host: '127.0.0.1', port: a!.port }] });
    await c.download(h);
    const seedRow = page.locator(`#seeding tr.seed[data-infohash="${h}"]`);
    await seedRow.waitFor({ timeout: 15_000 });
    const peer = seedRow.locator('.seed-peers li', { hasText: /^127\.0\.0\.1:\d+/ });
    await peer.waitFor({ timeout: 10_000 });
    expect(await peer.locator('.client').textContent()).to.match(/^Shoal /);
    expect(await seedRow.locator('.badge').textContent()).to.equal('seeding');
    await run!.shot('seeding');
    await c.whenDone(h);
    // The whole file went out once: the ratio reaches 1.00.
    await waitFor(async () => Number(await seedRow.locator('.ratio').textContent()) >= 1, 15_000, 'a ratio of 1.00');
    expect(await seedRow.locator('.sent').textContent()).to.match(/^2\.\d MiB$/);
    await page.waitForFunction(() => document.getElementById('nav-seeding')?.textContent === '1');
    expect(await sameWindow(page)).to.equal(true);
  });

  it('ran without a script error or a Content-Security-Policy violation', function () {
    expect(run!.problems.filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p))).to.deep.equal([]);
  });
});

describe('dashboard in a browser: the node stops behind the page', function () {
  this.timeout(120_000);
  this.slow(20_000);
  const children = new Children();
  const fx = tempDirPerTest('shoal-web-offline-', () => children.killAll());
  let run: BrowserRun | null = null;

  before(async function () {
    run = await launchBrowser();
    if (!run) this.skip();
  });
  after(async () => {
    await run?.close();
  });

  /** The `web` program on `port` in the test's folder; resolves once it printed its URL. */
  async function startWeb(port: number): Promise<{ proc: ChildProcess; id: string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }> {
    const args = ['--peer-port', '0', '--http-port', String(port), '--no-multicast', '--shared', 'shared', '--downloads', 'downloads', '--log-level', 'warn'];
    const proc = children.track(spawn(process.execPath, [path.join(ROOT, 'dist', 'cli', 'web.js'), ...args], { cwd: fx.dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    const lines: string[] = [];
    const errors: string[] = [];
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => lines.push(l));
    readline.createInterface({ input: proc.stderr! }).on('line', (l) => errors.push(l));
    const exited = once(proc, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
    await waitFor(() => lines.some((l) => l.startsWith('dashboard: ')), 20_000, `the dashboard line (stderr: ${errors.join(' | ')})`);
    const id = /^Shoal node (\S+) /.exec(lines.find((l) => l.startsWith('Shoal node ')) ?? '')?.[1] ?? '';
    return { proc, id, exited };
  }

  it('says plainly that the node is not running (or not answering), greys the page out, and recovers when it is back', async function () {
    const page = run!.page;
    await fsp.mkdir(path.join(fx.dir, 'shared'), { recursive: true });
    await randomFile(path.join(fx.dir, 'shared', 'notes.bin'), 64 * KiB);
    const port = await freePort();
    const first = await startWeb(port);
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
    await page.waitForFunction((id) => document.getElementById('kv-id')?.textContent === id, first.id);
    await markWindow(page);
    const banner = page.locator('#offline');
    expect(await banner.count()).to.equal(0);

    // Frozen: the connection stays open but nothing comes. The page notices within seconds.
    first.proc.kill('SIGSTOP');
    await banner.waitFor({ state: 'visible', timeout: 20_000 });
    expect(await banner.locator('.offline-title').textContent()).to.equal('The node is not answering');
    first.proc.kill('SIGCONT');
    await banner.waitFor({ state: 'detached', timeout: 20_000 });
    expect(await page.evaluate(() => document.body.classList.contains('node-offline'))).to.equal(false);

    // Ended: the page says so, greys out what it shows and lets nothing in it be used.
    first.proc.kill('SIGTERM');
    expect((await exitWithin(first, 15_000)).code).to.equal(0);
    await banner.waitFor({ state: 'visible', timeout: 15_000 });
    expect(await banner.locator('.offline-title').textContent()).to.equal('The node is not running');
    expect(await banner.textContent()).to.include(`127.0.0.1:${port}`);
    const looks = await page.evaluate(() => {
      const p = document.querySelector('.page') as HTMLElement;
      const style = getComputedStyle(p);
      return { inert: p.inert, opacity: Number(style.opacity), filter: style.filter, title: document.title, live: document.getElementById('live')?.textContent };
    });
    expect(looks.inert, 'nothing on the stale page can be used').to.equal(true);
    expect(looks.opacity).to.be.below(0.6);
    expect(looks.filter).to.include('grayscale');
    expect(looks.title).to.match(/^\(offline\) /);
    expect(looks.live).to.equal('node not running');
    await run!.shot('node-not-running', false);

    // Back on the same port (a new node id, as it runs on peer port 0): the page recovers by itself.
    const second = await startWeb(port);
    await banner.waitFor({ state: 'detached', timeout: 30_000 });
    await page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
    await page.waitForFunction((id) => document.getElementById('kv-id')?.textContent === id, second.id, { timeout: 10_000 });
    const after = await page.evaluate(() => ({ inert: (document.querySelector('.page') as HTMLElement).inert, title: document.title }));
    expect(after.inert).to.equal(false);
    expect(after.title).to.not.match(/offline/);
    expect(await sameWindow(page), 'recovered without a reload').to.equal(true);
    second.proc.kill('SIGTERM');
    expect((await exitWithin(second, 15_000)).code).to.equal(0);
    expect(run!.problems.filter((p) => !/Failed to load resource|ERR_CONNECTION_REFUSED|WebSocket/.test(p))).to.deep.equal([]);
  });
});
