/**
 * The dashboard in a real headless browser (Debian's chromium driven by playwright-core):
 * two real nodes on loopback, A with its dashboard, B sharing a file at a limited upload
 * rate so the download takes a few seconds. Through A's pages: B is added by hand and
 * appears without a reload, a file is uploaded, B's file is found and downloaded, its
 * progress bar climbs to 100% live, and the file opens with the right bytes; pause, resume
 * and cancel work from the Transfers page; an upload limit set on the Settings page reaches
 * the node and its config file. Nothing reloads a page that is being watched.
 *
 * A full-page screenshot of each page lands in test-output/screenshots/ (or
 * $SHOAL_SCREENSHOTS) for a person to look at; the paths are printed.
 */
import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Node } from '../../network/index.js';
import { WebServer } from '../../web/server.js';
import { ROOT, cleanup, randomFile, sha1File, startNode, tempDir, waitFor } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const KiB = 1024;
const MiB = 1024 * KiB;
const SHOTS = process.env.SHOAL_SCREENSHOTS ?? path.join(ROOT, 'test-output', 'screenshots');
const VIEWPORT = { width: 1280, height: 800 };

describe('dashboard in a browser', function () {
  this.timeout(120_000);
  this.slow(10_000);

  const big = 'sunrise-timelapse.mp4';
  const second = 'field-recording.wav';
  const BIG_SIZE = 4 * MiB;
  let dir = '';
  let a: Node | undefined;
  let b: Node | undefined;
  let web: WebServer | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page;
  let base = '';
  let bigInfohash = '';
  /** Console errors, failed scripts and CSP violations seen on any page. */
  const problems: string[] = [];

  async function shot(name: string, fullPage = true): Promise<void> {
    const file = path.join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage });
    console.log(`      screenshot: ${path.relative(process.cwd(), file)}`);
  }

  /** Open a page of the dashboard and wait until its live connection is up. */
  async function open(route: string): Promise<void> {
    await page.goto(base + route);
    await page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
  }

  /** Mark the window; `stillSameWindow` fails if the page was reloaded since. */
  const mark = () => page.evaluate(() => ((window as unknown as { __mark: number }).__mark = 1));
  const stillSameWindow = async () => expect(await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)).to.equal(1, 'the page was reloaded');

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
      this.skip();
    }
    await fsp.mkdir(SHOTS, { recursive: true });
    dir = await tempDir('shoal-web-browser-');
    await randomFile(path.join(dir, 'b', 'shared', big), BIG_SIZE);
    await randomFile(path.join(dir, 'b', 'shared', second), BIG_SIZE);
    // B uploads at 640 KiB/s: about six seconds for the big file, long enough to watch.
    b = await startNode(path.join(dir, 'b'), { name: 'studio', maxUploadRate: 640 * KiB, pieceLength: 64 * KiB });
    a = await startNode(path.join(dir, 'a'), { name: 'laptop' });
    web = new WebServer({ node: a, port: 0 });
    await web.start();
    base = web.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, colorScheme: 'light' });
    page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async function () {
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await web?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    if (dir) await cleanup(dir);
  });

  it('shows the overview of node A', async function () {
    await open('/');
    expect(await page.textContent('#kv-id')).to.equal(a!.id);
    expect(await page.textContent('#kv-name')).to.equal('laptop');
    expect(await page.title()).to.match(/Overview/);
    // the totals follow the status events
    await page.waitForFunction(() => document.getElementById('t-peers')?.textContent === '0');
  });

  it('shows B on the Peers page as soon as it is added by hand, without a reload', async function () {
    await open('/peers');
    expect(await page.locator('#peers tr[data-key]').count()).to.equal(0);
    expect(await page.locator('#peers .empty-row').textContent()).to.match(/No peer known yet/);
    await mark();
    await page.fill('#peer-host', '127.0.0.1');
    await page.fill('#peer-port', String(b!.port));
    await page.click('#add-peer button[type="submit"]');
    const row = page.locator('#peers tr[data-key]', { hasText: `127.0.0.1:${b!.port}` });
    await row.waitFor({ timeout: 5000 });
    expect(await row.locator('.badge.src-manual').textContent()).to.equal('by hand');
    expect(await page.locator('#peers .empty-row').count()).to.equal(0);
    await page.waitForFunction(() => document.getElementById('nav-peers')?.textContent === '1'); // the next status event
    // the filter hides it under "multicast" and shows it again under "by hand"
    await page.click('#filters button[data-filter="multicast"]');
    expect(await row.isHidden()).to.equal(true);
    await page.click('#filters button[data-filter="manual"]');
    expect(await row.isVisible()).to.equal(true);
    await page.click('#filters button[data-filter="all"]');
    await stillSameWindow();
    await shot('peers');
  });

  it('adds a file to share by uploading it on the Files page', async function () {
    await open('/files');
    await mark();
    const body = Buffer.from('Shopping list\n- bread\n- coffee\n'.repeat(2048)); // 62 KiB
    await page.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: body });
    const row = page.locator('#files tr[data-infohash]', { hasText: 'notes.txt' });
    await row.waitFor({ timeout: 15_000 });
    await page.locator('#uploads .upload.ok').waitFor({ timeout: 5000 });
    expect(await row.locator('td').nth(1).textContent()).to.equal('62.0 KiB');
    expect(await row.locator('a[download]').getAttribute('href')).to.match(/torrent/);
    expect(await row.locator('[data-copy^="magnet:"]').count()).to.equal(1);
    expect(await fsp.readFile(path.join(a!.sharedDir, 'notes.txt'))).to.deep.equal(body);
    // the same name again is refused: the server's message shows on the upload and in a toast
    await page.setInputFiles('#file-input', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('other notes') });
    const refused = page.locator('#uploads .upload.error');
    await refused.waitFor({ timeout: 5000 });
    expect(await refused.locator('.state').textContent()).to.have.length.above(3);
    await page.locator('.toast.error', { hasText: 'notes.txt' }).waitFor({ timeout: 5000 });
    await stillSameWindow();
    await shot('files');
  });

  it('finds B’s file on the Search page and starts its download', async function () {
    await open('/search');
    await page.fill('#q', 'timelapse');
    await page.press('#q', 'Enter');
    const row = page.locator('#results tr[data-infohash]', { hasText: big });
    await row.waitFor({ timeout: 10_000 });
    bigInfohash = (await row.getAttribute('data-infohash'))!;
    expect(bigInfohash).to.match(/^[0-9a-f]{40}$/);
    expect(await row.textContent()).to.contain('4.0 MiB').and.to.contain('1 node');
    expect(page.url()).to.match(/\/search\?q=timelapse$/);
    await row.locator('button[data-download]').click();
    await row.locator('.result-action progress').waitFor({ timeout: 10_000 });
    await shot('search');
    await row.locator('a[href="/transfers"]').click();
    await page.waitForURL(/\/transfers$/);
  });

  it('shows the progress bar on Transfers climb to 100% without a reload, then opens the file', async function () {
    await page.waitForSelector('#live.on', { state: 'attached' });
    await mark();
    const row = page.locator(`#transfers tr.xfer[data-infohash="${bigInfohash}"]`);
    await row.waitFor();
    const progress = () => row.locator('progress').evaluate((p) => (p as HTMLProgressElement).value);
    const before = await progress();
    expect(before, 'the download was already over when Transfers opened').to.be.below(1);
    expect(await row.locator('.pct').textContent()).to.not.equal('100%');
    expect(await row.locator('.badge.state').textContent()).to.equal('downloading');

    // the detail row: piece map and the peer it downloads from
    await row.locator('button.toggle').click();
    const detail = page.locator(`#transfers tr.detail[data-infohash="${bigInfohash}"]`);
    await detail.locator('.peer-rows tr', { hasText: `127.0.0.1:${b!.port}` }).waitFor({ timeout: 5000 });
    expect(await detail.locator('canvas.piece-map').evaluate((c) => (c as HTMLCanvasElement).width)).to.be.above(0);
    await page.waitForFunction(() => {
      const bar = document.querySelector('tr.xfer progress') as HTMLProgressElement | null;
      return bar !== null && bar.value > 0.2;
    });
    await page.waitForTimeout(300); // the chevron's turn
    await shot('transfers');

    // it climbs, live, to 100% and done
    await page.waitForFunction((h) => {
      const tr = document.querySelector(`tr.xfer[data-infohash="${h}"]`);
      return tr?.querySelector('.pct')?.textContent === '100%' && tr.querySelector('.badge.state')?.textContent === 'done';
    }, bigInfohash, { timeout: 60_000 });
    expect(await progress()).to.equal(1);
    expect(await row.locator('.progress-sub').textContent()).to.match(/complete/);
    await stillSameWindow();
    await waitFor(() => page.locator('#nav-transfers').textContent().then((t) => t === '0'), 5000, 'no active download in the navigation');

    // Open: the link serves the file's bytes
    const href = await row.locator('td.actions a').getAttribute('href');
    expect(href).to.be.a('string');
    const got = await page.evaluate(async (url) => {
      const res = await fetch(url);
      const bytes = await res.arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', bytes));
      return { status: res.status, length: bytes.byteLength, sha1: [...digest].map((x) => x.toString(16).padStart(2, '0')).join('') };
    }, href!);
    expect(got.status).to.equal(200);
    expect(got.length).to.equal(BIG_SIZE);
    expect(got.sha1).to.equal(await sha1File(path.join(b!.sharedDir, big)));
    await stillSameWindow();
  });

  it('pauses, resumes and cancels a download from the Transfers page', async function () {
    await mark();
    // Started from elsewhere (the API): the row appears here by itself.
    const started = await page.evaluate(async (name) => {
      const res = await fetch('/api/downloads', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ target: name }) });
      return { status: res.status, body: (await res.json()) as { infohash: string } };
    }, second);
    expect(started.status).to.equal(202);
    const row = page.locator(`#transfers tr.xfer[data-infohash="${started.body.infohash}"]`);
    await row.waitFor({ timeout: 10_000 });
    const state = row.locator('.badge.state');

    await row.locator('button[data-act="pause"]').click();
    await waitFor(async () => (await state.textContent()) === 'paused', 10_000, 'the paused state');
    await row.locator('button[data-act="resume"]').waitFor();
    const pausedAt = await row.locator('progress').evaluate((p) => (p as HTMLProgressElement).value);
    expect(pausedAt).to.be.below(1);

    await row.locator('button[data-act="resume"]').click();
    await waitFor(async () => (await state.textContent()) === 'downloading', 10_000, 'the downloading state');

    // Cancel asks first; "Keep" leaves it alone, "Yes, cancel" removes it.
    await row.locator('button[data-act="cancel"]').click();
    await row.locator('button[data-act="cancel-no"]').click();
    await row.locator('button[data-act="pause"]').waitFor();
    await row.locator('button[data-act="cancel"]').click();
    await row.locator('button[data-act="cancel-yes"]').click();
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    expect(a!.listDownloads().some((d) => d.infohash === started.body.infohash)).to.equal(false);
    await stillSameWindow();
  });

  it('changes the upload limit on the Settings page: the node and shoal.json follow, without a reload', async function () {
    await open('/settings');
    await mark();
    expect(await page.textContent('#upload-rate-now')).to.equal('no limit');
    expect(await page.textContent('#config-file')).to.equal(a!.settings().configFile);
    const kept = async () => (JSON.parse(await fsp.readFile(a!.settings().configFile, 'utf8')) as { maxUploadRate?: number }).maxUploadRate;

    await page.fill('#upload-rate', '1.5');
    await page.selectOption('#upload-rate-unit', String(MiB));
    await page.click('#rate-form button[type="submit"]');
    await page.locator('.toast.ok', { hasText: 'Upload limited to 1.5 MiB/s' }).waitFor({ timeout: 10_000 });
    expect(await page.textContent('#upload-rate-now')).to.equal('1.5 MiB/s');
    expect(a!.settings().maxUploadRate, "the node's limit").to.equal(1.5 * MiB);
    expect(await kept(), 'kept in shoal.json').to.equal(1.5 * MiB);
    await shot('settings');

    // Changed elsewhere (the API): the page follows by itself.
    const patched = await page.evaluate(async () => {
      const res = await fetch('/api/settings', { method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ maxUploadRate: 2 * 1024 * 1024 }) });
      return res.status;
    });
    expect(patched).to.equal(200);
    await page.waitForFunction(() => document.getElementById('upload-rate-now')?.textContent === '2.0 MiB/s');
    expect(await page.inputValue('#upload-rate')).to.equal('2');

    // 0 lifts it
    await page.fill('#upload-rate', '0');
    await page.click('#rate-form button[type="submit"]');
    await page.waitForFunction(() => document.getElementById('upload-rate-now')?.textContent === 'no limit');
    expect(a!.settings().maxUploadRate).to.equal(0);
    expect(await kept()).to.equal(0);
    await stillSameWindow();
  });

  it('rotates the access token from the Settings page and stays signed in, live updates included', async function () {
    // A second dashboard of node A that asks for a token even on loopback.
    const guarded = new WebServer({ node: a!, port: 0, requireToken: true });
    await guarded.start();
    try {
      const old = guarded.token!;
      expect(old).to.equal(a!.accessToken(), "the node's kept token");
      await page.goto(`${guarded.url}/settings?token=${encodeURIComponent(old)}`); // exchanged for a cookie
      expect(page.url()).to.equal(`${guarded.url}/settings`);
      await page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
      await mark();
      // Every state the live indicator goes through from now on.
      await page.evaluate(() => {
        const w = window as unknown as { __live: string[] };
        w.__live = [];
        const live = document.getElementById('live')!;
        new MutationObserver(() => w.__live.push(`${live.className}|${live.textContent}`)).observe(live, { childList: true, characterData: true, subtree: true, attributes: true });
      });
      await page.click('#rotate-token');
      await page.click('#rotate-yes');
      await page.locator('#token-result').waitFor({ timeout: 10_000 });
      const fresh = guarded.token!;
      expect(fresh).to.not.equal(old);
      expect(await page.textContent('#token-url')).to.equal(`${guarded.url}/?token=${encodeURIComponent(fresh)}`);
      await shot('settings-token', false);
      // The server ended the live connection made with the old token; it came back with the new one.
      await page.waitForFunction(() => {
        const seen = (window as unknown as { __live: string[] }).__live;
        return seen.some((s) => s.includes('reconnecting')) && document.getElementById('live')?.className === 'live on';
      }, undefined, { timeout: 15_000 });
      // The page still acts (its cookie is the new token), and the old token no longer opens anything.
      await page.fill('#upload-rate', '0');
      await page.click('#rate-form button[type="submit"]');
      await page.locator('.toast.ok', { hasText: 'No upload limit' }).last().waitFor({ timeout: 10_000 });
      const withOld = await page.evaluate(async (t) => (await fetch('/api/settings', { headers: { Authorization: `Bearer ${t}` } })).status, old);
      expect(withOld).to.equal(401);
      await stillSameWindow();
    } finally {
      // Leave its pages first: a page still polling a server that stops logs a network error.
      await page.goto('about:blank').catch(() => {});
      await guarded.stop();
    }
  });

  it('shows the overview with the totals of what moved', async function () {
    await open('/');
    await page.waitForFunction(() => document.getElementById('t-peers')?.textContent === '1');
    await page.waitForFunction((n) => document.getElementById('t-files')?.textContent === n, String(a!.status().files));
    expect(await page.locator('#mini-transfers li', { hasText: big }).count()).to.equal(1);
    await page.waitForTimeout(1500); // a few points on the throughput chart
    await shot('overview');
  });

  it('fits a phone screen and follows a dark colour scheme', async function () {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const route of ['/', '/peers', '/files', '/search?q=timelapse', '/transfers', '/settings']) {
      await open(route);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${route} is wider than a phone`).to.be.at.most(0);
    }
    await shot('transfers-phone');
    await page.setViewportSize(VIEWPORT);
    await page.emulateMedia({ colorScheme: 'dark' });
    await open('/transfers');
    await page.locator('tr.xfer button.toggle').first().click();
    await page.locator('tr.detail .peer-rows tr').first().waitFor();
    await page.waitForTimeout(300); // the chevron's turn
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(background).to.not.equal('rgb(244, 246, 249)');
    await shot('transfers-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('answers an unknown page with the error page', async function () {
    const res = await page.goto(base + '/no/such/page');
    expect(res?.status()).to.equal(404);
    expect(await page.textContent('.error-page .code')).to.equal('404');
    await page.locator('.error-page a[href="/"]').click();
    await page.waitForSelector('#kv-id');
  });

  it('ran without a script error or a Content-Security-Policy violation', function () {
    // 4xx answers the tests asked for (the refused upload, the unknown page) are not problems.
    expect(problems.filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p))).to.deep.equal([]);
  });
});
