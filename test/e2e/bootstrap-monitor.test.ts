/**
 * The bootstrap monitor over HTTP: the network's totals (nodes, seeders, leechers, distinct
 * files and bytes) on the page, in GET /api/nodes and live in the socket.io feed; the index
 * searched from the page; who may see the monitor (on the server's host without a token,
 * from anywhere else with it, DNS rebinding and relayed visitors like anyone else); that no
 * browser can change the registry; the token kept in the data dir; and, from a second
 * network namespace cabled to ours by a veth pair, a real visitor from another machine: no
 * token, no monitor, while the node API and the tracker stay open to it.
 * The page in a real browser is in bootstrap-monitor-browser.test.ts.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';
import { Children, ROOT, cleanup, rejection, tempDir, waitFor } from '../helpers.js';
import { inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { netnsSupport } from '../netns.js';
import { call, client, liveClient } from '../web-http.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { MonitorTokenError } from '../../bootstrap/monitor-token.js';
import type { RegisterBody } from '../../network/wire/bootstrap-api.js';
import { idOf } from '../identities.js';

const hash = (n: number) => n.toString(16).padStart(40, '0');
const file = (name: string, n: number, size: number, extra: { complete?: boolean } = {}) => ({ name, size, infohash: hash(n), ...extra });
/** A register body for the node called `name`: its id derives from that test identity's key (test/identities.ts), which signs its requests. */
const body = (name: string, extra: Partial<RegisterBody> = {}): RegisterBody => ({ id: idOf(name), instance: `${name}-i1`, name: `name-${name}`, port: 7000, files: [], downloads: [], ...extra });
const A = () => idOf('a');
const GiB = 1024 ** 3;
const TOKEN = 'monitor-token-for-tests-0123456789';

interface Totals {
  nodes: number;
  seeders: number;
  leechers: number;
  files: number;
  bytes: number;
}

/** The text of the element with `id` in a server-rendered page (EJS escapes & < > " '). */
function textOf(html: string, id: string): string | undefined {
  const raw = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];
  const entities: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&#34;': '"', '&#39;': "'" };
  return raw?.replace(/&(amp|lt|gt|#34|#39);/g, (e) => entities[e]!);
}

describe('bootstrap monitor', function () {
  let dir = '';
  let server: BootstrapServer | null = null;
  let base = '';

  async function start(init: ConstructorParameters<typeof BootstrapServer>[0] = {}): Promise<BootstrapServer> {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dir, 'data'), heartbeatMs: 60_000, ...init });
    await server.start();
    base = server.url;
    return server;
  }
  const register = async (b: RegisterBody) => expect((await call(base, 'POST', '/api/nodes', { json: b })).status).to.equal(200);

  beforeEach(async () => {
    dir = await tempDir('shoal-monitor-');
  });
  afterEach(async () => {
    await server?.stop();
    server = null;
    await cleanup(dir);
  });

  describe('totals and search', function () {
    it('counts nodes, seeders, leechers, and each distinct file and its bytes once, on the page and in GET /api/nodes', async function () {
      await start();
      // The same film on two nodes counts once; a file still downloading is not held yet.
      await register(body('a', { files: [file('film.mkv', 1, 3 * GiB), file('notes.txt', 2, 1000)] }));
      await register(body('b', { files: [file('film.mkv', 1, 3 * GiB), file('half.iso', 3, 5000, { complete: false })], downloads: [{ infohash: hash(3), name: 'half.iso', progress: 0.5 }] }));
      const api = (await call(base, 'GET', '/api/nodes')).json<{ nodes: unknown[]; totals: Totals }>();
      expect(api.totals).to.deep.equal({ nodes: 2, seeders: 1, leechers: 1, files: 2, bytes: 3 * GiB + 1000 });
      const page = await call(base, 'GET', '/');
      expect(page.status).to.equal(200);
      expect([textOf(page.text, 'stat-nodes'), textOf(page.text, 'stat-seeders'), textOf(page.text, 'stat-leechers'), textOf(page.text, 'stat-files')]).to.deep.equal(['2', '1', '1', '2']);
      expect(textOf(page.text, 'stat-bytes')).to.equal('3.00 GiB');
      expect(page.text).to.include(`data-bytes="${3 * GiB + 1000}"`);
    });

    it('pushes new totals over socket.io when what the nodes share changes', async function () {
      await start();
      await register(body('a', { files: [file('one.bin', 1, 2048)] }));
      const feed = await liveClient(base);
      try {
        const first = (await feed.waitEvent('nodes')) as { totals: Totals };
        expect(first.totals).to.deep.include({ nodes: 1, files: 1, bytes: 2048 });
        const hb = await call(base, 'PUT', `/api/nodes/${A()}`, { json: { instance: 'a-i1', files: [file('one.bin', 1, 2048), file('two.bin', 2, 4096)] } });
        expect(hb.status).to.equal(200);
        const next = (await feed.waitEvent('nodes', (p) => (p as { totals: Totals }).totals.files === 2, 10_000)) as { totals: Totals };
        expect(next.totals).to.deep.equal({ nodes: 1, seeders: 1, leechers: 0, files: 2, bytes: 6144 });
      } finally {
        await feed.close();
      }
    });

    it('searches the index from the page, as GET /api/search does, with the same checks', async function () {
      await start();
      await register(body('a', { name: 'kitchen <pc>', files: [file('Big Buck Bunny.mkv', 1, 1536), file('readme.txt', 2, 10)] }));
      await register(body('b', { name: 'attic', port: 7001, files: [file('big buck bunny.mkv', 1, 1536)] }));
      const page = await call(base, 'GET', `/?q=${encodeURIComponent('BUNNY')}`);
      expect(page.status).to.equal(200);
      const hits = /<tbody id="hits-body">([\s\S]*?)<\/tbody>/.exec(page.text)![1]!;
      expect(hits).to.match(/big buck bunny\.mkv/i).and.include('1.50 KiB').and.include('title="1536 bytes"').and.include(hash(1));
      expect(hits, 'the nodes that have it, by name and address').to.include('kitchen &lt;pc&gt;').and.include('127.0.0.1:7000').and.include('attic').and.include('127.0.0.1:7001');
      expect(hits).to.not.include('readme.txt');
      expect(textOf(page.text, 'search-status')).to.equal('1 file matches “BUNNY”');
      expect(page.text).to.match(/id="hits"\s*>/); // shown
      const api = (await call(base, 'GET', '/api/search?q=BUNNY')).json<{ files: Array<{ infohash: string }> }>();
      expect(api.files.map((f) => f.infohash)).to.deep.equal([hash(1)]);

      const none = await call(base, 'GET', `/?q=${encodeURIComponent('(a+)+$')}`);
      expect(none.status).to.equal(200);
      expect(textOf(none.text, 'search-status')).to.match(/0 files match/);
      expect(none.text).to.match(/id="hits" hidden/);
      const long = await call(base, 'GET', `/?q=${'x'.repeat(257)}`);
      const apiLong = await call(base, 'GET', `/api/search?q=${'x'.repeat(257)}`);
      expect([long.status, apiLong.status]).to.deep.equal([400, 400]);
      expect(textOf(long.text, 'search-status')).to.equal(apiLong.json<{ error: string }>().error).and.match(/at most 256/);
      expect((await call(base, 'GET', '/?q=a&q=b')).status, 'q twice').to.equal(400);
      expect((await call(base, 'GET', `/?q=${'x'.repeat(256)}`)).status).to.equal(200);
    });

    it('serves the page with a strict policy: no inline script, never framed', async function () {
      await start();
      const page = await call(base, 'GET', '/');
      expect(page.headers['content-security-policy']).to.match(/script-src 'self'/).and.match(/frame-ancestors 'none'/);
      expect(page.headers['x-frame-options']).to.equal('DENY');
      expect(page.headers['x-content-type-options']).to.equal('nosniff');
      expect(page.text.match(/<script(?![^>]*\ssrc=)[^>]*>/g), 'every script is a file').to.equal(null);
    });
  });

  describe('who may see it', function () {
    it('needs no token on the server’s own host, by its own names', async function () {
      await start();
      expect((await call(base, 'GET', '/')).status).to.equal(200);
      expect((await call(base, 'GET', '/api/nodes')).status).to.equal(200);
      expect((await call(base, 'GET', '/', { headers: { host: `localhost:${server!.port}` } })).status).to.equal(200);
      const feed = await liveClient(base);
      try {
        expect(feed.connect).to.match(/^40/);
        await feed.waitEvent('nodes');
      } finally {
        await feed.close();
      }
    });

    it('treats a page of another name resolving here (DNS rebinding) and a relayed visitor as remote: token or 401', async function () {
      await start({ monitorToken: TOKEN });
      const port = server!.port;
      const visitors: Array<Record<string, string>> = [{ host: `evil.example:${port}` }, { 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9' }, { 'x-real-ip': '203.0.113.9' }];
      for (const headers of visitors) {
        const what = JSON.stringify(headers);
        const page = await call(base, 'GET', '/', { headers });
        expect(page.status, what).to.equal(401);
        expect(page.text, what).to.match(/needs its access token/);
        expect(page.text, 'no node data').to.not.include('stat-nodes');
        const api = await call(base, 'GET', '/api/nodes', { headers });
        expect(api.status, what).to.equal(401);
        expect(api.json<{ error: string }>().error).to.match(/needs its access token/);
        const feed = await liveClient(base, headers);
        try {
          await waitFor(() => feed.connect, 10_000, 'the CONNECT answer');
          expect(feed.connect, what).to.match(/^44/);
          expect(feed.events.filter(([n]) => n === 'nodes'), 'no node data').to.deep.equal([]);
        } finally {
          await feed.close();
        }
        const token = { ...headers, authorization: `Bearer ${TOKEN}` };
        expect((await call(base, 'GET', '/', { headers: token })).status, `${what} with the token`).to.equal(200);
        expect((await call(base, 'GET', '/api/nodes', { headers: token })).status).to.equal(200);
        const authed = await liveClient(base, headers, { token: TOKEN });
        try {
          expect(authed.connect, `${what} with auth.token`).to.match(/^40/);
        } finally {
          await authed.close();
        }
      }
      // Search stays open to everyone: nodes use it.
      expect((await call(base, 'GET', '/api/search?q=x', { headers: { host: `evil.example:${port}` } })).status).to.equal(200);
    });

    it('exchanges ?token= for an HttpOnly SameSite=Strict cookie and drops it from the address', async function () {
      await start({ monitorToken: TOKEN });
      const rebound = { host: `evil.example:${server!.port}` };
      const wrong = await call(base, 'GET', '/?token=not-the-token', { headers: rebound });
      expect(wrong.status).to.equal(401);
      expect(wrong.headers['set-cookie']).to.equal(undefined);
      const ok = await call(base, 'GET', `/?token=${encodeURIComponent(TOKEN)}&q=song`, { headers: rebound });
      expect(ok.status).to.equal(303);
      expect(ok.headers.location).to.equal('/?q=song');
      const setCookie = String(ok.headers['set-cookie']);
      expect(setCookie).to.match(/HttpOnly/).and.match(/SameSite=Strict/).and.match(new RegExp(`^shoal_monitor_${server!.port}=`));
      const cookie = setCookie.split(';')[0]!;
      const page = await call(base, 'GET', '/?q=song', { headers: { ...rebound, cookie } });
      expect(page.status).to.equal(200);
      const feed = await liveClient(base, { ...rebound, cookie });
      try {
        expect(feed.connect, 'the cookie opens the feed too').to.match(/^40/);
      } finally {
        await feed.close();
      }
      expect((await call(base, 'GET', '/', { headers: { ...rebound, cookie: `${cookie}x` } })).status).to.equal(401);
    });

    it('keeps a page of another site off the feed (Origin, Sec-Fetch-Site), even on this host', async function () {
      await start();
      const pages: Array<Record<string, string>> = [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null' }];
      for (const headers of pages) {
        const err = await rejection(liveClient(base, headers));
        expect(err.message, JSON.stringify(headers)).to.match(/socket\.io open: 403/);
      }
      const same = await liveClient(base, { origin: base });
      try {
        expect(same.connect).to.match(/^40/);
      } finally {
        await same.close();
      }
    });

    it('refuses every state-changing request a browser sends to the node API (Origin or Sec-Fetch-Site), even from this host', async function () {
      await start();
      await register(body('a'));
      const self = { origin: base };
      const cases: Array<[string, string, Record<string, string>, unknown]> = [
        ['/api/nodes', 'POST', self, body('web')],
        ['/api/nodes', 'POST', { 'sec-fetch-site': 'same-origin' }, body('web')],
        [`/api/nodes/${A()}`, 'PUT', self, { instance: 'a-i1', files: [file('planted', 9, 1)] }],
        [`/api/nodes/${A()}?instance=a-i1`, 'DELETE', { 'sec-fetch-site': 'same-origin' }, undefined],
        [`/api/nodes/${A()}?instance=a-i1`, 'DELETE', { origin: 'http://evil.example' }, undefined],
        [`/api/nodes/${A()}/reports`, 'POST', self, { reporter: A() }],
      ];
      for (const [route, method, headers, json] of cases) {
        const r = await call(base, method, route, { headers, json });
        expect(r.status, `${method} ${route} ${JSON.stringify(headers)}`).to.equal(403);
        expect(r.json<{ error: string }>().error).to.match(/not web pages/);
      }
      expect(server!.registry.list().map((n) => [n.id, n.files.length])).to.deep.equal([[A(), 0]]);
      // Nodes, which send neither, go on as before.
      expect((await call(base, 'PUT', `/api/nodes/${A()}`, { json: { instance: 'a-i1' } })).status).to.equal(200);
      expect((await call(base, 'DELETE', `/api/nodes/${A()}?instance=a-i1`)).status).to.equal(204);
    });
  });

  describe('the token', function () {
    it('is generated once, kept in the data dir for its owner only, and the same after a restart', async function () {
      await start();
      const first = server!.monitorToken;
      expect(first).to.match(/^[\x21-\x7e]{32}$/);
      const kept = path.join(dir, 'data', 'monitor-token');
      expect((await fsp.readFile(kept, 'utf8')).trim()).to.equal(first);
      expect((await fsp.stat(kept)).mode & 0o777).to.equal(0o600);
      await server!.stop();
      await start();
      expect(server!.monitorToken, 'the same across restarts').to.equal(first);
      await server!.stop();
      await start({ monitorToken: TOKEN });
      expect(server!.monitorToken, 'a given token wins').to.equal(TOKEN);
      expect((await fsp.readFile(kept, 'utf8')).trim(), 'and the kept one is left alone').to.equal(first);
    });

    it('refuses to start on a token file that holds no token, and leaves the file as it was', async function () {
      const data = path.join(dir, 'data');
      await fsp.mkdir(data, { recursive: true });
      await fsp.writeFile(path.join(data, 'monitor-token'), 'my notes\n');
      const s = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: data });
      const err = await rejection(s.start());
      await s.stop();
      expect(err).to.be.instanceOf(MonitorTokenError);
      expect(err.message).to.include(path.join(data, 'monitor-token')).and.match(/does not hold a monitor token/);
      expect(await fsp.readFile(path.join(data, 'monitor-token'), 'utf8')).to.equal('my notes\n');
    });
  });
});

describe('bootstrap command: the monitor token', function () {
  const children = new Children();
  let dir = '';
  afterEach(async () => {
    await children.killAll();
    await cleanup(dir);
  });

  async function run(args: string[]): Promise<{ lines: string[]; stop: () => Promise<number | null> }> {
    const child = children.track(spawn(process.execPath, [path.join(ROOT, 'dist', 'bootstrap', 'main.js'), '--port', '0', ...args], { env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
    const lines: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => lines.some((l) => l.startsWith('  monitor token')), 10_000, `the token line (stdout: ${lines.join(' | ')})`);
    return {
      lines,
      stop: () => {
        child.kill('SIGTERM');
        return exited;
      },
    };
  }

  it('prints the token and where it is kept, and the address to open from another machine', async function () {
    dir = await tempDir('shoal-monitor-cli-');
    const data = path.join(dir, 'data');
    const { lines, stop } = await run(['--host', '0.0.0.0', '--data-dir', data]);
    const kept = (await fsp.readFile(path.join(data, 'monitor-token'), 'utf8')).trim();
    expect(lines).to.include(`  monitor token (kept in ${path.join(data, 'monitor-token')}): ${kept}`);
    expect(await stop()).to.equal(0);
    const given = await run(['--host', '127.0.0.1', '--data-dir', data, '--monitor-token', TOKEN]);
    expect(given.lines).to.include(`  monitor token: ${TOKEN}`);
    expect(given.lines.some((l) => l.includes('from another machine')), 'a loopback server has no address for other machines').to.equal(false);
    expect(await given.stop()).to.equal(0);
  });

  it('refuses a --monitor-token that is too short with one line and exit status 2', async function () {
    const child = children.track(spawn(process.execPath, [path.join(ROOT, 'dist', 'bootstrap', 'main.js'), '--monitor-token', 'short'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))).to.equal(2);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.match(/--monitor-token must be 8 to 256 printable characters/);
  });
});

// ---- from another machine ---------------------------------------------------------------

/**
 * A second network namespace cabled to ours by a veth pair: `here` is our end's address,
 * `there` the other's. What runs there is another machine as far as the server can tell.
 */
function otherMachine(): { ns: string; here: string; there: string; destroy: () => void } {
  const tag = randomBytes(3).toString('hex');
  const ns = `shoal-mon-${process.pid}-${tag}`;
  const veth = `smon${tag}`;
  const ip = (...args: string[]) => {
    const r = spawnSync('ip', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  const destroy = () => void spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); // takes the pair with it
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', '10.98.0.1/24', 'dev', veth);
    ip('link', 'set', veth, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', '10.98.0.2/24', 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
  } catch (err) {
    destroy();
    throw err;
  }
  return { ns, here: '10.98.0.1', there: '10.98.0.2', destroy };
}

const WEB_HTTP = pathToFileURL(path.join(ROOT, 'dist', 'test', 'web-http.js')).href;
const IDENTITIES = pathToFileURL(path.join(ROOT, 'dist', 'test', 'identities.js')).href;

/** Run `code` (an async function body with `call`, `liveClient`, `base`, `token` in scope) in `ns`; its JSON result. */
async function runIn<T>(ns: string, env: { base: string; token: string }, code: string): Promise<T> {
  const script = `import { call, liveClient } from ${JSON.stringify(WEB_HTTP)};
import { idOf } from ${JSON.stringify(IDENTITIES)};
const { base, token } = JSON.parse(process.env.SHOAL_REMOTE);
const result = await (async () => {\n${code}\n})();
process.stdout.write(JSON.stringify(result));
process.exit(0);`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { env: { ...process.env, SHOAL_REMOTE: JSON.stringify(env) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code_ = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(timer);
  if (code_ !== 0) throw new Error(`the script in ${ns} failed (${code_}): ${err.slice(-2000)}`);
  return JSON.parse(out) as T;
}

describe('bootstrap monitor from another machine', function () {
  this.timeout(120_000);
  let machine: ReturnType<typeof otherMachine> | null = null;
  let server: BootstrapServer | null = null;
  let dir = '';

  before(async function () {
    if (!inPrivateNetns()) {
      console.log(`      skipped: ${NETNS_SKIP_REASON}`);
      return this.skip();
    }
    const support = netnsSupport();
    if (!support.ok) {
      console.log(`      skipped: ${support.reason}`);
      return this.skip();
    }
    machine = otherMachine();
    dir = await tempDir('shoal-monitor-remote-');
    server = new BootstrapServer({ port: 0, host: '0.0.0.0', dataDir: path.join(dir, 'data'), heartbeatMs: 60_000 });
    await server.start();
  });
  after(async () => {
    await server?.stop();
    machine?.destroy();
    if (dir) await cleanup(dir);
  });

  it('shows it nothing without the token, everything with it; the node API and the tracker stay open to it', async function () {
    const local = client(server!.url);
    expect((await local.post('/api/nodes', { json: body('near', { files: [file('song.ogg', 1, 5000)] }) })).status).to.equal(200);
    const base = `http://${machine!.here}:${server!.port}`;
    const r = await runIn<Record<string, unknown>>(machine!.ns, { base, token: server!.monitorToken }, `
      const out = {};
      const page = await call(base, 'GET', '/');
      out.page = [page.status, page.text.includes('stat-nodes'), /needs its access token/.test(page.text)];
      out.nodes = (await call(base, 'GET', '/api/nodes')).status;
      out.search = (await call(base, 'GET', '/?q=song')).status;
      const bare = await liveClient(base);
      for (let i = 0; i < 1000 && !bare.connect; i++) await new Promise((r) => setTimeout(r, 20));
      out.feed = [bare.connect.slice(0, 2), bare.events.filter(([n]) => n === 'nodes').length];
      await bare.close();
      const ex = await call(base, 'GET', '/?token=' + encodeURIComponent(token));
      const cookie = String(ex.headers['set-cookie']).split(';')[0];
      out.exchange = [ex.status, ex.headers.location];
      const withCookie = await call(base, 'GET', '/?q=song', { headers: { cookie } });
      out.withCookie = [withCookie.status, withCookie.text.includes('song.ogg'), /id="stat-files"[^>]*>1</.test(withCookie.text)];
      out.bearer = (await call(base, 'GET', '/api/nodes', { headers: { authorization: 'Bearer ' + token } })).json().totals;
      const feed = await liveClient(base, { cookie });
      const first = await feed.waitEvent('nodes');
      out.liveFeed = [feed.connect.slice(0, 2), first.totals.nodes];
      await feed.close();
      // The node API and the tracker: open, as nodes are remote by design.
      const reg = await call(base, 'POST', '/api/nodes', { json: { id: idOf('far'), instance: 'far-i1', name: 'far', port: 7000, files: [{ name: 'film.mkv', size: 9000, infohash: ${JSON.stringify(hash(2))} }] } });
      out.register = [reg.status, reg.json().self.host];
      out.heartbeat = (await call(base, 'PUT', '/api/nodes/' + idOf('far'), { json: { instance: 'far-i1' } })).status;
      out.apiSearch = (await call(base, 'GET', '/api/search?q=film')).json().files.map((f) => f.nodes.map((n) => n.host + ':' + n.port));
      const ih = '%aa'.repeat(20);
      out.announce = (await call(base, 'GET', '/announce?info_hash=' + ih + '&peer_id=-TT0001-000000000001&port=6881&uploaded=0&downloaded=0&left=0&compact=1')).status;
      out.unregister = (await call(base, 'DELETE', '/api/nodes/' + idOf('far') + '?instance=far-i1')).status;
      return out;
    `);
    expect(r.page, 'the page: 401, no data, says why').to.deep.equal([401, false, true]);
    expect(r.nodes, 'GET /api/nodes').to.equal(401);
    expect(r.search, 'the page search').to.equal(401);
    expect(r.feed, 'the feed refuses, sends nothing').to.deep.equal(['44', 0]);
    expect(r.exchange).to.deep.equal([303, '/']);
    expect(r.withCookie).to.deep.equal([200, true, true]);
    expect(r.bearer).to.deep.equal({ nodes: 1, seeders: 1, leechers: 0, files: 1, bytes: 5000 });
    expect(r.liveFeed).to.deep.equal(['40', 1]);
    expect(r.register).to.deep.equal([200, machine!.there]);
    expect(r.heartbeat).to.equal(200);
    expect(r.apiSearch).to.deep.equal([[`${machine!.there}:7000`]]);
    expect(r.announce).to.equal(200);
    expect(r.unregister).to.equal(204);
  });

  it('counts a visitor at one of this machine’s own addresses as on the server’s host', async function () {
    // From here to our end of the cable: not loopback, but this machine.
    const base = `http://${machine!.here}:${server!.port}`;
    expect((await call(base, 'GET', '/')).status).to.equal(200);
    expect((await call(base, 'GET', '/api/nodes')).status).to.equal(200);
  });
});
