/**
 * Settings that last, end to end: `GET` / `PATCH /api/settings` against real nodes on
 * loopback change the running node at once (its upload limit slows a real download, a
 * shared folder's files come and go, the bootstrap server is joined and left, multicast
 * goes on and off) and keep each change in shoal.json; the access token is kept across
 * restarts and rotated; and a real `web` process, stopped and started again, comes back
 * with what was changed, under what its command line says.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { expect } from 'chai';
import { Node } from '../../network/index.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { WebServer } from '../../web/server.js';
import { ErrorResponseSchema, FilesResponseSchema, SettingsViewSchema, TokenRotatedSchema, type SettingsView } from '../../web/contract.js';
import { Children, ROOT, exitWithin, nodesPerTest, randomFile, startNode, waitFor } from '../helpers.js';
import { inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { client, liveClient, type Answer, type LiveClient } from '../web-http.js';

const KiB = 1024;
const WEB = path.join(ROOT, 'dist', 'cli', 'web.js');

function settingsOf(res: Answer): SettingsView {
  expect(res.status, res.text.slice(0, 300)).to.equal(200);
  return SettingsViewSchema.parse(res.json());
}

function expectError(res: Answer, status: number, match: RegExp): void {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  expect(ErrorResponseSchema.parse(res.json()).error).to.match(match);
}

const readJson = async (file: string): Promise<Record<string, unknown>> => JSON.parse(await fsp.readFile(file, 'utf8')) as Record<string, unknown>;

describe('settings (API, real nodes on loopback)', function () {
  this.timeout(60_000);
  const webs: WebServer[] = [];
  const lives: LiveClient[] = [];
  let server: BootstrapServer | null = null;
  const fx = nodesPerTest();
  afterEach(async function () {
    await Promise.all(lives.splice(0).map((l) => l.close()));
    await Promise.all(webs.splice(0).map((w) => w.stop()));
    await server?.stop();
    server = null;
  });

  /** A node in `dir/<name>` with its dashboard (options for both). */
  async function withDashboard(name: string, init: Partial<ConstructorParameters<typeof Node>[0]> = {}, web: { requireToken?: boolean } = {}) {
    const node = await startNode(path.join(fx.dir, name), { name, ...init });
    fx.nodes.push(node);
    const w = new WebServer({ node, port: 0, ...web });
    await w.start();
    webs.push(w);
    return { node, web: w, api: client(w.url, w.token ? { Authorization: `Bearer ${w.token}` } : {}) };
  }

  it('the OpenAPI document describes the settings routes and shapes, from the contract', async function () {
    const { api } = await withDashboard('a');
    const doc = (await api.get('/api/openapi.json')).json<{ paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, { properties?: Record<string, unknown> }> } }>();
    for (const [p, m] of [['/api/settings', 'get'], ['/api/settings', 'patch'], ['/api/settings/token', 'post']] as const) expect(doc.paths[p]?.[m], `${m} ${p}`).to.be.an('object');
    expect(Object.keys(doc.components.schemas.SettingsView!.properties!)).to.have.members(Object.keys(SettingsViewSchema.shape));
    expect(Object.keys(doc.components.schemas.SettingsPatch!.properties!)).to.have.members(['maxUploadRate', 'shared', 'multicast', 'bootstrap']);
    expect(JSON.stringify(doc.paths['/api/settings']!.patch)).to.include('#/components/schemas/SettingsPatch');
  });

  it('PATCH maxUploadRate limits the running node at once: a download from it takes as long as the limit says; the change is kept in shoal.json', async function () {
    const size = 768 * KiB;
    await randomFile(path.join(fx.dir, 'a', 'shared', 'tape.bin'), size);
    const { node: a, api } = await withDashboard('a');
    const before = settingsOf(await api.get('/api/settings'));
    expect(before).to.deep.include({ maxUploadRate: 0, multicast: false, bootstrap: null, tokenInUse: false });
    expect(before.shared).to.deep.equal([path.join(fx.dir, 'a', 'shared')]);
    expect(before.configFile).to.equal(path.join(fx.dir, 'a', 'downloads', '.shoal', 'shoal.json'));

    const limit = 256 * KiB;
    const after = settingsOf(await api.call('PATCH', '/api/settings', { json: { maxUploadRate: limit } }));
    expect(after.maxUploadRate).to.equal(limit);
    expect(a.settings().maxUploadRate, "the node's own limiter").to.equal(limit);
    expect(await readJson(after.configFile)).to.deep.equal({ maxUploadRate: limit });

    // A second of tokens at once, then the limit: at least two seconds for 768 KiB (unlimited, loopback takes a few ms).
    const b = await startNode(path.join(fx.dir, 'b'), { name: 'b' });
    fx.nodes.push(b);
    b.addPeer('127.0.0.1', a.port);
    const infohash = a.files()[0]!.metainfo.infoHashHex;
    const started = Date.now();
    await b.download(infohash);
    await b.whenDone(infohash);
    const elapsed = Date.now() - started;
    expect(elapsed, 'the download went faster than the limit allows').to.be.at.least(((size - limit) * 1000) / limit - 250);
  });

  it('PATCH shared adds and removes shared folders, files and all; a bad change is refused by name and changes nothing', async function () {
    const { node: a, api } = await withDashboard('a');
    const music = path.join(fx.dir, 'music');
    await randomFile(path.join(music, 'song.mp3'), 20_000);
    const shared = path.join(fx.dir, 'a', 'shared');
    const names = async () => FilesResponseSchema.parse((await api.get('/api/files')).json()).files.map((f) => f.name);

    const added = settingsOf(await api.call('PATCH', '/api/settings', { json: { shared: [shared, music] } }));
    expect(added.shared).to.deep.equal([shared, music]);
    expect(await names()).to.include('song.mp3');
    expect(a.sharedDirs).to.deep.equal([shared, music]);
    expect((await readJson(added.configFile)).shared).to.deep.equal([shared, music]);

    const removed = settingsOf(await api.call('PATCH', '/api/settings', { json: { shared: [music] } }));
    expect(removed.shared).to.deep.equal([music]);
    expect(a.sharedDir, 'uploads go to the first folder left').to.equal(music);
    const gone = settingsOf(await api.call('PATCH', '/api/settings', { json: { shared: [] } }));
    expect(gone.shared).to.deep.equal([]);
    await waitFor(async () => !(await names()).includes('song.mp3'), 10_000, 'song.mp3 to leave the list');
    expect(a.files().map((f) => f.name)).to.not.include('song.mp3');

    const refusals: Array<[unknown, number, RegExp]> = [
      [{ shared: ['music'] }, 400, /field "shared": "music": not an absolute path/],
      [{ shared: [path.join(fx.dir, 'nowhere')] }, 400, /no such folder/],
      [{ shared: [path.join(fx.dir, 'a', 'downloads')] }, 400, /downloads folder is always shared/],
      [{ maxUploadRate: 'fast' }, 400, /field "maxUploadRate"/],
      [{ maxDownloadRate: 1000 }, 400, /unknown setting "maxDownloadRate"/],
      [{ bootstrap: 'gopher://x' }, 400, /field "bootstrap"/],
    ];
    for (const [body, status, message] of refusals) expectError(await api.call('PATCH', '/api/settings', { json: body }), status, message);
    expectError(await api.call('PATCH', '/api/settings', { body: 'maxUploadRate=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, /application\/json/);
    expect(settingsOf(await api.get('/api/settings'))).to.deep.include({ shared: [], maxUploadRate: 0, bootstrap: null });
  });

  it('PATCH bootstrap joins a bootstrap server and leaves it (what it vouched for goes too); changes reach live pages', async function () {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', heartbeatMs: 200, ttlMs: 2000 });
    await server.start();
    const registered = () => server!.monitorPayload().nodes.map((n) => n.id);
    const c = await startNode(path.join(fx.dir, 'c'), { name: 'c', bootstrap: server.url });
    fx.nodes.push(c);
    const { node: a, web, api } = await withDashboard('a');
    const live = await liveClient(web.url);
    lives.push(live);

    const on = settingsOf(await api.call('PATCH', '/api/settings', { json: { bootstrap: `${server.url}/` } }));
    expect(on.bootstrap).to.equal(server.url);
    await waitFor(() => registered().includes(a.id), 10_000, 'a registered with the server');
    expect(a.discovery().map((d) => d.source)).to.deep.equal(['bootstrap']);
    await waitFor(() => a.knownPeers('bootstrap').some((p) => p.id === c.id), 10_000, 'a to learn of c from the server');
    expect((await readJson(on.configFile)).bootstrap).to.equal(server.url);
    await live.waitEvent('settings', (s) => (s as SettingsView).bootstrap === server!.url);

    const off = settingsOf(await api.call('PATCH', '/api/settings', { json: { bootstrap: null } }));
    expect(off.bootstrap).to.equal(null);
    expect(registered(), 'unregistered on the way out').to.not.include(a.id);
    expect(a.discovery()).to.deep.equal([]);
    expect(a.knownPeers().some((p) => p.id === c.id), 'nothing vouches for c any more').to.equal(false);
    expect(await readJson(off.configFile)).to.not.have.property('bootstrap');
    await live.waitEvent('settings', (s) => (s as SettingsView).bootstrap === null);
  });

  it('PATCH multicast turns LAN beacons on and off while the node runs', async function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
    const c = await startNode(path.join(fx.dir, 'c'), { name: 'c', multicast: { intervalMs: 400 } });
    fx.nodes.push(c);
    const { node: a, api } = await withDashboard('a');
    expect(settingsOf(await api.call('PATCH', '/api/settings', { json: { multicast: true } })).multicast).to.equal(true);
    expect(a.discovery().map((d) => d.source)).to.deep.equal(['multicast']);
    await waitFor(() => a.knownPeers('multicast').some((p) => p.id === c.id), 10_000, 'a to hear c');
    await waitFor(() => c.knownPeers('multicast').some((p) => p.id === a.id), 10_000, 'c to hear a');

    expect(settingsOf(await api.call('PATCH', '/api/settings', { json: { multicast: false } })).multicast).to.equal(false);
    expect(a.discovery()).to.deep.equal([]);
    expect(a.knownPeers('multicast')).to.deep.equal([]);
    await waitFor(() => !c.knownPeers().some((p) => p.id === a.id), 10_000, 'c to drop a on its GOODBYE');
    expect((await readJson(a.settings().configFile)).multicast).to.equal(false);
  });

  it('the access token is kept across restarts (mode 0600) and rotating it shuts out the old one, live connections included', async function () {
    const { node: a, web, api } = await withDashboard('a', {}, { requireToken: true });
    const token = web.token!;
    const tokenFile = path.join(fx.dir, 'a', 'downloads', '.shoal', 'http-token');
    expect((await fsp.readFile(tokenFile, 'utf8')).trim()).to.equal(token);
    expect((await fsp.stat(tokenFile)).mode & 0o777).to.equal(0o600);
    expect(settingsOf(await api.get('/api/settings')).tokenInUse).to.equal(true);
    const old = await liveClient(web.url, { Authorization: `Bearer ${token}` }, { token });
    lives.push(old);
    expect(old.connect).to.match(/^40/);

    const res = await api.post('/api/settings/token');
    expect(res.status, res.text).to.equal(200);
    const rotated = TokenRotatedSchema.parse(res.json());
    expect(rotated.token).to.not.equal(token);
    expect(web.token).to.equal(rotated.token);
    expect(rotated.openUrl).to.equal(`${web.url}/?token=${encodeURIComponent(rotated.token)}`);
    expect(String(res.headers['set-cookie'])).to.contain(`=${encodeURIComponent(rotated.token)};`).and.contain('HttpOnly');
    expect((await fsp.readFile(tokenFile, 'utf8')).trim()).to.equal(rotated.token);

    expectError(await api.get('/api/settings'), 401, /access token/);
    expect((await client(web.url, { Authorization: `Bearer ${rotated.token}` }).get('/api/settings')).status).to.equal(200);
    const cookie = String(res.headers['set-cookie']).split(';')[0]!;
    expect((await client(web.url, { Cookie: cookie }).get('/api/status')).status, 'the cookie the answer set').to.equal(200);
    await waitFor(() => old.closed, 10_000, 'the live connection made with the old token to end');
    // The old token no longer opens an engine.io session at all.
    const refused = await liveClient(web.url, { Authorization: `Bearer ${token}` }, { token }).then(
      () => new Error('a live connection opened with the old token'),
      (e: unknown) => e,
    );
    expect(String(refused)).to.match(/socket\.io open: 403 .*access token/);
    const fresh = await liveClient(web.url, { Authorization: `Bearer ${rotated.token}` }, { token: rotated.token });
    lives.push(fresh);
    expect(fresh.connect).to.match(/^40/);

    // A restart (a new node and dashboard on the same folders) asks for the same token.
    await Promise.all(lives.splice(0).map((l) => l.close()));
    await web.stop();
    await a.stop();
    const again = await withDashboard('a', {}, { requireToken: true });
    expect(again.web.token).to.equal(rotated.token);
    // without a token in use there is nothing to rotate
    const { api: open } = await withDashboard('plain');
    expectError(await open.post('/api/settings/token'), 409, /no access token is in use/);
  });
});

describe('settings across a real restart of `web`', function () {
  this.timeout(90_000);
  const children = new Children();
  const fx = nodesPerTest();
  afterEach(() => children.killAll());

  interface Run {
    proc: ChildProcess;
    stdout: string[];
    stderr: string[];
    url: string;
  }

  async function web(args: string[]): Promise<Run> {
    const proc = children.track(spawn(process.execPath, [WEB, '--peer-port', '0', '--http-port', '0', '--log-level', 'warn', ...args], { cwd: fx.dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    const stdout: string[] = [];
    const stderr: string[] = [];
    readline.createInterface({ input: proc.stdout! }).on('line', (l) => stdout.push(l));
    readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
    const line = await waitFor(() => stdout.find((l) => l.startsWith('dashboard: ')), 20_000, `the dashboard line (stderr: ${stderr.join(' | ')})`);
    return { proc, stdout, stderr, url: /^dashboard: (http:\/\/[^/]+)/.exec(line)![1]! };
  }

  async function stop(r: Run): Promise<void> {
    r.proc.kill('SIGTERM');
    const exited = once(r.proc, 'exit');
    expect((await exitWithin({ proc: r.proc, exited }, 15_000))[0]).to.equal(0);
  }

  const stateDir = () => path.join(fx.dir, 'downloads', '.shoal');

  it('what the Settings page changed is there after a restart; the command line still wins over the file', async function () {
    await fsp.mkdir(path.join(fx.dir, 'shared_files'), { recursive: true });
    await randomFile(path.join(fx.dir, 'more', 'field-notes.txt'), 5000);
    // Multicast off from the file itself: nothing is ever beaconed from this test.
    await fsp.mkdir(stateDir(), { recursive: true });
    await fsp.writeFile(path.join(stateDir(), 'shoal.json'), JSON.stringify({ multicast: false, name: 'kept' }, null, 2));

    const first = await web([]);
    const api = client(first.url);
    const folders = [path.join(fx.dir, 'shared_files'), path.join(fx.dir, 'more')];
    const changed = settingsOf(await api.call('PATCH', '/api/settings', { json: { maxUploadRate: 300 * KiB, shared: folders } }));
    expect(changed.fromCommandLine).to.not.include('maxUploadRate');
    await stop(first);
    expect(await readJson(path.join(stateDir(), 'shoal.json'))).to.deep.equal({ multicast: false, name: 'kept', maxUploadRate: 300 * KiB, shared: folders });

    const second = await web([]);
    const after = settingsOf(await client(second.url).get('/api/settings'));
    expect(after).to.deep.include({ maxUploadRate: 300 * KiB, shared: folders, multicast: false });
    await waitFor(async () => FilesResponseSchema.parse((await client(second.url).get('/api/files')).json()).files.some((f) => f.name === 'field-notes.txt'), 15_000, 'the file of the added folder');
    await stop(second);

    const third = await web(['--max-upload-rate', '1M']);
    const pinned = settingsOf(await client(third.url).get('/api/settings'));
    expect(pinned.maxUploadRate, 'the command line wins').to.equal(1024 * KiB);
    expect(pinned.fromCommandLine).to.include('maxUploadRate');
    expect(pinned.shared, 'the rest from the file').to.deep.equal(folders);
    await stop(third);
  });

  it('a bad shoal.json stops the start with one line naming the file and the key (status 2)', async function () {
    await fsp.mkdir(stateDir(), { recursive: true });
    await fsp.writeFile(path.join(stateDir(), 'shoal.json'), JSON.stringify({ multicast: false, maxUploadRate: 'plenty' }));
    const proc = children.track(spawn(process.execPath, [WEB, '--peer-port', '0', '--http-port', '0'], { cwd: fx.dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    const stderr: string[] = [];
    readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
    const [code] = await exitWithin({ proc, exited: once(proc, 'exit') }, 15_000);
    expect(code).to.equal(2);
    expect(stderr, stderr.join('\n')).to.have.length(1);
    expect(stderr[0]).to.contain(path.join(stateDir(), 'shoal.json')).and.contain('"maxUploadRate": not a size');
  });

  it('a dashboard beyond loopback prints the same token after a restart, a new one after a rotation', async function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON}; the dashboard would listen on every interface)`);
      this.skip();
    }
    await fsp.mkdir(stateDir(), { recursive: true });
    await fsp.writeFile(path.join(stateDir(), 'shoal.json'), JSON.stringify({ multicast: false, httpHost: '0.0.0.0' }));
    const tokenOf = (r: Run) => /\?token=([^\s&]+)/.exec(r.stdout.find((l) => l.startsWith('dashboard: '))!)![1]!;
    const first = await web([]);
    const token = tokenOf(first);
    expect(token).to.have.length(32);
    await stop(first);
    const second = await web([]);
    expect(tokenOf(second), 'the same token after a restart').to.equal(token);
    const rotated = TokenRotatedSchema.parse((await client(second.url, { Authorization: `Bearer ${token}` }).post('/api/settings/token')).json());
    await stop(second);
    const third = await web([]);
    expect(tokenOf(third)).to.equal(rotated.token);
    await stop(third);
  });
});
