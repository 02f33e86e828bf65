/**
 * The bootstrap monitor in a real headless browser (Debian's chromium driven by
 * playwright-core): the totals on the page follow registrations live, the search box finds
 * files in the index and shows the server's own refusal of a bad query, nothing reloads, and
 * the page cannot change the registry. Then the same page from another machine (chromium
 * started inside a second network namespace cabled to ours): refused without the token,
 * live with it after opening the `?token=` address once.
 *
 * Screenshots land in test-output/screenshots/ (or $SHOAL_SCREENSHOTS).
 */
import { existsSync, promises as fsp } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, cleanup, tempDir } from '../helpers.js';
import { inPrivateNetns } from '../helpers-netns.js';
import { netnsSupport } from '../netns.js';
import { call } from '../web-http.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import type { RegisterBody } from '../../network/wire/bootstrap-api.js';
import { idOf } from '../identities.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.SHOAL_SCREENSHOTS ?? path.join(ROOT, 'test-output', 'screenshots');
const MiB = 1024 * 1024;
const hash = (n: number) => n.toString(16).padStart(40, '0');
/** The node called `name`: its id derives from that test identity's key, which signs its requests (test/identities.ts). */
const body = (name: string, extra: Partial<RegisterBody> = {}): RegisterBody => ({ id: idOf(name), instance: `${name}-i1`, name, port: 7000, files: [], downloads: [], ...extra });

/** Console errors, failed scripts and CSP violations a page reports. */
function watch(page: Page, problems: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}

/** Problems other than the 4xx answers a test asked for. */
const unexpected = (problems: string[]) => problems.filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p));

describe('bootstrap monitor in a browser', function () {
  this.timeout(120_000);
  this.slow(10_000);

  let dir = '';
  let server: BootstrapServer | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let base = '';
  const problems: string[] = [];

  const register = async (b: RegisterBody) => expect((await call(base, 'POST', '/api/nodes', { json: b })).status).to.equal(200);
  const text = async (selector: string) => (await page.textContent(selector))?.trim();

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      skipped: no chromium at ${CHROMIUM} (apt-get install chromium; .ci/run installs it)`);
      return this.skip();
    }
    await fsp.mkdir(SHOTS, { recursive: true });
    dir = await tempDir('shoal-monitor-browser-');
    // Every interface, so the other machine below can reach it too.
    server = new BootstrapServer({ port: 0, host: '0.0.0.0', dataDir: path.join(dir, 'data'), heartbeatMs: 60_000 });
    await server.start();
    base = server.url;
    await register(body('studio', { port: 7001, files: [{ name: 'sunrise-timelapse.mp4', size: 700 * MiB, infohash: hash(1) }, { name: 'field-recording.wav', size: 50 * MiB, infohash: hash(2) }] }));
    await register(body('laptop', { port: 7002, files: [{ name: 'sunrise-timelapse.mp4', size: 700 * MiB, infohash: hash(1) }], downloads: [{ infohash: hash(2), name: 'field-recording.wav', progress: 0.4 }] }));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
    page = await context.newPage();
    watch(page, problems);
  });

  after(async function () {
    await browser?.close().catch(() => {});
    await server?.stop();
    if (dir) await cleanup(dir);
  });

  it('shows the network’s totals and follows registrations live, without a reload', async function () {
    await page.goto(`${base}/`);
    await page.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
    expect([await text('#stat-nodes'), await text('#stat-seeders'), await text('#stat-leechers')]).to.deep.equal(['2', '1', '1']);
    expect(await text('#stat-files'), 'the film on two nodes counts once').to.equal('2');
    expect(await text('#stat-bytes')).to.equal('750.0 MiB');
    await page.evaluate(() => ((window as unknown as { __mark: number }).__mark = 1));
    await register(body('attic', { port: 7003, files: [{ name: 'archive.tar', size: 2 * 1024 * MiB, infohash: hash(3) }] }));
    await page.waitForFunction(() => document.getElementById('stat-files')?.textContent === '3', undefined, { timeout: 10_000 });
    expect(await text('#stat-bytes')).to.equal('2.73 GiB');
    expect(await text('#stat-nodes')).to.equal('3');
    expect(await page.locator('#nodes tr', { hasText: 'attic' }).count()).to.equal(1);
    expect(await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)).to.equal(1, 'the page was reloaded');
  });

  it('searches the index from the search box and shows the hits, and the server’s refusal of a bad query', async function () {
    await page.fill('#q', 'SUNRISE');
    await page.click('#search button[type="submit"]');
    const hit = page.locator('#hits-body tr');
    await hit.first().waitFor({ timeout: 10_000 });
    expect(await hit.count()).to.equal(1);
    expect(await hit.locator('td.name').textContent()).to.equal('sunrise-timelapse.mp4');
    expect(await hit.locator('td.size').textContent()).to.equal('700.0 MiB');
    expect(await hit.locator('td.size').getAttribute('title')).to.equal(`${700 * MiB} bytes`);
    expect(await hit.locator('td.id').textContent()).to.equal(hash(1));
    const holders = (await hit.locator('.holders li').allTextContents()).sort();
    expect(holders).to.deep.equal(['laptop 127.0.0.1:7002', 'studio 127.0.0.1:7001']);
    expect(await text('#search-status')).to.equal('1 file matches “SUNRISE”');
    expect(new URL(page.url()).search).to.equal('?q=SUNRISE');
    await page.screenshot({ path: path.join(SHOTS, 'bootstrap-monitor.png'), fullPage: true });
    console.log(`      screenshot: ${path.relative(process.cwd(), path.join(SHOTS, 'bootstrap-monitor.png'))}`);

    // maxlength stops typing at 256; a script can still send more, and the server says no.
    await page.evaluate(() => ((document.getElementById('q') as HTMLInputElement).value = 'x'.repeat(257)));
    await page.click('#search button[type="submit"]');
    await page.waitForSelector('#search-status.error', { timeout: 10_000 });
    expect(await text('#search-status')).to.match(/at most 256 characters/);
    expect(await page.isHidden('#hits')).to.equal(true);
    expect(await page.evaluate(() => (window as unknown as { __mark?: number }).__mark)).to.equal(1, 'the page was reloaded');
  });

  it('cannot change the registry from the page, not even with a same-origin request', async function () {
    const studio = idOf('studio');
    const statuses = await page.evaluate(async (studio) => {
      const json = { 'content-type': 'application/json' };
      const post = await fetch('/api/nodes', { method: 'POST', headers: json, body: JSON.stringify({ id: 'planted', instance: 'p1', name: 'p', port: 9, files: [] }) });
      const del = await fetch(`/api/nodes/${studio}?instance=studio-i1`, { method: 'DELETE' });
      return [post.status, del.status];
    }, studio);
    expect(statuses).to.deep.equal([403, 403]);
    expect(server!.registry.list().map((n) => n.name).sort()).to.deep.equal(['attic', 'laptop', 'studio']);
    expect(unexpected(problems)).to.deep.equal([]);
  });

  describe('from another machine', function () {
    let ns = '';
    let remote: Browser | undefined;

    before(async function () {
      const support = netnsSupport();
      if (!inPrivateNetns() || !support.ok) {
        console.log(`      skipped: needs the private network namespace of \`npm test\` and ip netns (${support.reason || 'not in it'})`);
        return this.skip();
      }
      const tag = randomBytes(3).toString('hex');
      ns = `shoal-monb-${process.pid}-${tag}`;
      const veth = `smonb${tag}`;
      for (const args of [
        ['netns', 'add', ns],
        ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns],
        ['addr', 'add', '10.97.0.1/24', 'dev', veth],
        ['link', 'set', veth, 'up'],
        ['-n', ns, 'link', 'set', 'lo', 'up'],
        ['-n', ns, 'addr', 'add', '10.97.0.2/24', 'dev', 'eth0'],
        ['-n', ns, 'link', 'set', 'eth0', 'up'],
      ]) {
        const r = spawnSync('ip', args, { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
      }
      // chromium itself runs over there; playwright talks to it over inherited pipes.
      const wrapper = path.join(dir, 'chromium-elsewhere');
      await fsp.writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} ${CHROMIUM} "$@"\n`, { mode: 0o755 });
      remote = await chromium.launch({ executablePath: wrapper, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    });

    after(async function () {
      await remote?.close().catch(() => {});
      if (ns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    });

    it('refuses the monitor without the token, and shows it live once the ?token= address was opened', async function () {
      const far = `http://10.97.0.1:${server!.port}`;
      const context = await remote!.newContext({ viewport: { width: 1280, height: 800 } });
      const p = await context.newPage();
      const seen: string[] = [];
      watch(p, seen);
      const refused = await p.goto(`${far}/`);
      expect(refused!.status()).to.equal(401);
      expect(await p.textContent('body')).to.match(/needs its access token/);
      expect(await p.locator('#stat-nodes').count()).to.equal(0);

      const opened = await p.goto(`${far}/?token=${encodeURIComponent(server!.monitorToken)}`);
      expect(opened!.status()).to.equal(200);
      expect(p.url(), 'the token leaves the address bar').to.equal(`${far}/`);
      await p.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
      expect(await p.textContent('#stat-files')).to.equal('3');
      await register(body('shed', { port: 7004, files: [{ name: 'tools.zip', size: MiB, infohash: hash(4) }] }));
      await p.waitForFunction(() => document.getElementById('stat-files')?.textContent === '4', undefined, { timeout: 10_000 });
      await p.fill('#q', 'tools');
      await p.click('#search button[type="submit"]');
      await p.locator('#hits-body tr', { hasText: 'tools.zip' }).waitFor({ timeout: 10_000 });
      // The node registered from the server's own machine, as this visitor would dial it.
      expect(await p.locator('#hits-body .holders li').textContent()).to.equal('shed 10.97.0.1:7004');
      await p.reload();
      await p.waitForSelector('#live.on', { state: 'attached', timeout: 10_000 });
      expect(await p.textContent('#stat-nodes'), 'the cookie outlives the page').to.equal('4');
      await p.screenshot({ path: path.join(SHOTS, 'bootstrap-monitor-remote.png'), fullPage: true });
      expect(unexpected(seen)).to.deep.equal([]);
      await context.close();
    });
  });
});
