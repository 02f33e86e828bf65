/**
 * Private torrents (BEP 27), made by transmission-create -p: announced to their own trackers
 * only (not --tracker, not the bootstrap server's), told to nobody over the control protocol,
 * never in the bootstrap index, their file never shared under another infohash (also after a
 * rescan and a restart), and their peers only from their own trackers. Each rule is checked
 * against a public torrent in the same setup, which does reach every place the private one
 * must not. Real trackers (three bootstrap servers), real nodes, a real libtorrent client.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Node, NodeInit } from '../../network/index.js';
import { parseTorrent, type Metainfo } from '../../network/metainfo/metainfo.js';
import { parseMagnet } from '../../network/metainfo/magnet.js';
import { controlRequest } from '../../network/control/control-client.js';
import { subscribe } from '../../network/control/subscription.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { freePort, randomFile, sha1File, startNode, tempDirPerTest, waitFor, Children } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { libtorrentMissing, startLibtorrent } from '../libtorrent.js';
import { ARIA_NET, run } from '../aria2.js';

const exec = promisify(execFile);

/** A tracker nobody answers at (transmission-create wants one for a private torrent). */
const NO_TRACKER = 'http://127.0.0.1:9/announce';

/** transmission-create's torrent of `file` announcing to `tracker` (NO_TRACKER by default); `private` adds -p. */
async function torrentOf(file: string, out: string, o: { tracker?: string; private: boolean }): Promise<{ path: string; m: Metainfo }> {
  await exec('transmission-create', ['-s', '64', ...(o.private ? ['-p'] : []), '-t', o.tracker ?? NO_TRACKER, '-o', out, file], { timeout: 60_000 });
  const m = parseTorrent(await fsp.readFile(out));
  expect(m.private).to.equal(o.private);
  return { path: out, m };
}

describe('private torrents (BEP 27)', function () {
  this.timeout(90_000);
  const children = new Children();
  const nodes: Node[] = [];
  const servers: BootstrapServer[] = [];
  const fx = tempDirPerTest('shoal-private-', async () => {
    await children.killAll();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  before(function () {
    if (!findExecutable('transmission-create')) {
      console.log('    transmission-create is not installed (apt-get install transmission-cli): skipping');
      this.skip();
    }
  });

  const node = async (name: string, files: Record<string, number> = {}, init: Partial<NodeInit> = {}) => {
    for (const [f, size] of Object.entries(files)) await randomFile(path.join(fx.dir, name, 'shared', f), size);
    const n = await startNode(path.join(fx.dir, name), init);
    nodes.push(n);
    return n;
  };
  /** A real tracker (a bootstrap server's), whose swarms the test can read. */
  const tracker = async (name: string) => {
    const s = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(fx.dir, name), heartbeatMs: 200, ttlMs: 5000 });
    await s.start();
    servers.push(s);
    return s;
  };
  const heard = (s: BootstrapServer, h: string) => {
    const c = s.tracker.store.counts(h);
    return c.complete + c.incomplete;
  };

  it('are announced to their own trackers only, seeding or downloading; their .torrent and magnet name no other tracker', async function () {
    const [own, extra, boot] = [await tracker('own'), await tracker('extra'), await tracker('boot')];
    const a = await node('a', { 'secret.iso': 600_000, 'open.iso': 500_000 }, { trackers: [`${extra.url}/announce`], bootstrap: boot.url });
    const absent = path.join(fx.dir, 'elsewhere', 'absent.bin');
    await randomFile(absent, 300_000);
    const ownUrl = `${own.url}/announce`;
    const secret = await torrentOf(path.join(a.sharedDir, 'secret.iso'), path.join(fx.dir, 'secret.torrent'), { tracker: ownUrl, private: true });
    const open = await torrentOf(path.join(a.sharedDir, 'open.iso'), path.join(fx.dir, 'open.torrent'), { tracker: ownUrl, private: false });
    const missing = await torrentOf(absent, path.join(fx.dir, 'absent.torrent'), { tracker: ownUrl, private: true });
    await a.download(secret.path);
    await a.download(open.path);
    await a.download(missing.path);
    expect(a.listDownloads().map((d) => [d.name, d.state]).sort()).to.deep.equal([['absent.bin', 'downloading'], ['open.iso', 'done'], ['secret.iso', 'done']]);
    // The public one reaches all three trackers: the private ones could have too.
    await waitFor(() => heard(own, open.m.infoHashHex) && heard(extra, open.m.infoHashHex) && heard(boot, open.m.infoHashHex), 15_000, 'the public torrent announced everywhere');
    await waitFor(() => own.tracker.store.counts(secret.m.infoHashHex).complete === 1 && own.tracker.store.counts(missing.m.infoHashHex).incomplete === 1, 15_000, 'the private ones at their own tracker');
    await new Promise((r) => setTimeout(r, 1000));
    for (const s of [extra, boot]) for (const h of [secret.m.infoHashHex, missing.m.infoHashHex]) expect(heard(s, h), `${s.url} heard of a private torrent`).to.equal(0);

    const tr = (link: string) => parseMagnet(link).trackers;
    expect(tr(a.magnet(secret.m.infoHashHex)!)).to.deep.equal([ownUrl]);
    expect(parseTorrent(a.torrentFile(missing.m.infoHashHex)!).announce).to.deep.equal([ownUrl]);
    expect(tr(a.magnet(open.m.infoHashHex)!)).to.have.members([ownUrl, `${extra.url}/announce`, `${boot.url}/announce`]);
  });

  it('are in no public catalog: list, search, subscribe and metainfo never show one, and the library withholds its file, after a rescan and a restart too', async function () {
    let a = await node('a', { 'secret.iso': 700_000, 'notes.txt': 20_000 });
    const secret = await torrentOf(path.join(a.sharedDir, 'secret.iso'), path.join(fx.dir, 'secret.torrent'), { private: true });
    const before = a.files().find((f) => f.name === 'secret.iso')!.metainfo.infoHashHex;
    const events: string[] = [];
    let snapshot: string[] = [];
    const sub = subscribe('127.0.0.1', a.port, { snapshot: (files) => (snapshot = files.map((f) => f.name)), event: (e, f) => events.push(`${e} ${f.name}`), closed: () => {} });
    try {
      await waitFor(() => snapshot.length === 2, 5000, 'the snapshot of both files');
      await a.seed(secret.path);
      await waitFor(() => events.includes('file-removed secret.iso'), 5000, 'subscribers told that the file is not shared any more');
    } finally {
      sub.close();
    }
    const ask = (req: Parameters<typeof controlRequest>[2]) => controlRequest('127.0.0.1', a.port, req);
    const shown = async () => {
      const list = await ask({ type: 'list' });
      const found = await ask({ type: 'search', filename: 'secret' });
      return { list: list.type === 'LIST' ? list.files.map((f) => f.name) : list.type, search: found.type };
    };
    expect(await shown()).to.deep.equal({ list: ['notes.txt'], search: 'NOT_FOUND' });
    for (const h of [secret.m.infoHashHex, before]) expect((await ask({ type: 'metainfo', infohash: h })).type).to.equal('ERROR');
    await a.rescan();
    expect(a.files().map((f) => f.name)).to.deep.equal(['notes.txt']);

    await a.stop();
    nodes.splice(nodes.indexOf(a), 1);
    const added: string[] = [];
    a = await node('a');
    a.on('file-added', (f) => added.push(f.name));
    expect(a.files().map((f) => f.name), 'withheld from the first scan on').to.deep.equal(['notes.txt']);
    expect(await shown()).to.deep.equal({ list: ['notes.txt'], search: 'NOT_FOUND' });
    expect(a.listDownloads().map((d) => [d.infohash, d.state])).to.deep.equal([[secret.m.infoHashHex, 'done']]);
    // Taken off the list, it is seeded no more, and its file stays out of the catalog.
    expect(await a.remove(secret.m.infoHashHex, { deleteData: false })).to.equal(true);
    await a.rescan();
    expect(a.files().map((f) => f.name)).to.deep.equal(['notes.txt']);
    expect(added).to.deep.equal([]);
  });

  it('are never in the bootstrap index: neither a private file seeded nor a private download under way', async function () {
    const boot = await tracker('boot');
    const a = await node('a', { 'secret.iso': 300_000, 'notes.txt': 10_000 }, { bootstrap: boot.url });
    const secret = await torrentOf(path.join(a.sharedDir, 'secret.iso'), path.join(fx.dir, 'secret.torrent'), { private: true });
    const away = path.join(fx.dir, 'elsewhere');
    await randomFile(path.join(away, 'hidden.bin'), 200_000);
    await randomFile(path.join(away, 'plain.bin'), 200_000);
    const hidden = await torrentOf(path.join(away, 'hidden.bin'), path.join(fx.dir, 'hidden.torrent'), { private: true });
    const plain = await torrentOf(path.join(away, 'plain.bin'), path.join(fx.dir, 'plain.torrent'), { private: false });
    await a.seed(secret.path);
    await a.download(hidden.path);
    await a.download(plain.path);
    const record = () => boot.registry.get(a.id);
    // The public download under way shows: the private one could have too.
    await waitFor(() => record()?.downloads.some((d) => d.infohash === plain.m.infoHashHex), 15_000, 'the public download in the index');
    await waitFor(() => record()!.files.length === 1, 15_000, 'the index without the private file');
    const r = record()!;
    expect(r.files.map((f) => f.name)).to.deep.equal(['notes.txt']);
    expect(r.downloads.map((d) => d.infohash)).to.deep.equal([plain.m.infoHashHex]);
    const res = (await (await fetch(`${boot.url}/api/search?q=secret`)).json()) as { results?: unknown[]; files?: unknown[] };
    expect(JSON.stringify(res)).to.not.include('secret');
  });

  it('a finished private download is seeded under its own infohash only: the library never shares it, after a rescan or a restart; libtorrent gets it from there', async function () {
    const own = await tracker('own');
    const s = await node('s', { 'secret.iso': 1024 * 1024 + 3 });
    const secret = await torrentOf(path.join(s.sharedDir, 'secret.iso'), path.join(fx.dir, 'secret.torrent'), { tracker: `${own.url}/announce`, private: true });
    await s.seed(secret.path);
    let d = await node('d');
    const h = secret.m.infoHashHex;
    await d.download(secret.path);
    const final = await d.whenDone(h);
    expect(await sha1File(final)).to.equal(await sha1File(path.join(s.sharedDir, 'secret.iso')));
    await new Promise((r) => setTimeout(r, 500));
    expect(d.files(), 'not shared under the infohash the library would compute').to.deep.equal([]);
    await d.rescan();
    expect(d.files()).to.deep.equal([]);

    await d.stop();
    nodes.splice(nodes.indexOf(d), 1);
    d = await node('d');
    expect(d.files()).to.deep.equal([]);
    expect(d.listDownloads().map((x) => [x.infohash, x.state, x.path])).to.deep.equal([[h, 'done', final]]);
    await s.stop();
    const into = path.join(fx.dir, 'lt');
    await fsp.mkdir(into);
    const lt = await startLibtorrent(children, 'fetch', { torrent: secret.path, dir: into, peers: [{ host: '127.0.0.1', port: d.port }] });
    await lt.waitFor((e) => e.event === 'done', 60_000, 'the private torrent from the restarted node');
    expect(await sha1File(path.join(into, 'secret.iso'))).to.equal(await sha1File(final));
  });

  it('a private multi-file download (from a libtorrent seed) shares none of its files, after a rescan or a restart: its folder carries the private marker', async function () {
    if (libtorrentMissing()) this.skip();
    const own = await tracker('own');
    const src = path.join(fx.dir, 'src');
    const tree: Record<string, number> = { 'a.bin': 300_000, 'sub/b.bin': 200_001, 'sub/c.txt': 4_000 };
    for (const [f, size] of Object.entries(tree)) await randomFile(path.join(src, 'Pics', f), size);
    const secret = await torrentOf(path.join(src, 'Pics'), path.join(fx.dir, 'pics.torrent'), { tracker: `${own.url}/announce`, private: true });
    expect(secret.m.multiFile).to.equal(true);
    await startLibtorrent(children, 'seed', { torrent: secret.path, dir: src });
    const h = secret.m.infoHashHex;
    // Its peers come from its own tracker only: the libtorrent seed announces there.
    await waitFor(() => own.tracker.store.counts(h).complete === 1, 30_000, 'the libtorrent seed at the private tracker');
    let d = await node('d');
    await d.download(secret.path);
    const final = await d.whenDone(h);
    for (const f of Object.keys(tree)) expect(await sha1File(path.join(final, f)), f).to.equal(await sha1File(path.join(src, 'Pics', f)));
    expect((await fsp.readdir(final)).sort()).to.deep.equal(['.shoal-private', 'a.bin', 'sub']);
    await new Promise((r) => setTimeout(r, 500));
    expect(d.files(), 'no file of the private folder in the public catalog').to.deep.equal([]);
    await d.rescan();
    expect(d.files()).to.deep.equal([]);
    await d.stop();
    nodes.splice(nodes.indexOf(d), 1);
    d = await node('d');
    await d.rescan();
    expect(d.files(), 'nor after a restart').to.deep.equal([]);
  });

  it('aria2c downloads a private torrent from a Shoal seed that it finds through the torrent\'s own tracker', async function () {
    if (!findExecutable('aria2c')) this.skip();
    const own = await tracker('own');
    const s = await node('s', { 'secret.iso': 2 * 1024 * 1024 + 11 });
    const file = path.join(s.sharedDir, 'secret.iso');
    const secret = await torrentOf(file, path.join(fx.dir, 'secret.torrent'), { tracker: `${own.url}/announce`, private: true });
    await s.seed(secret.path);
    await waitFor(() => own.tracker.store.counts(secret.m.infoHashHex).complete === 1, 15_000, 'the seed at its tracker');
    const into = path.join(fx.dir, 'aria');
    const res = await run(children, 'aria2c', [...ARIA_NET, '--seed-time=0', `--listen-port=${await freePort()}`, '--file-allocation=none', '-d', into, secret.path], 60_000);
    expect(res.code, `aria2c: ${res.output}`).to.equal(0);
    expect(await sha1File(path.join(into, 'secret.iso'))).to.equal(await sha1File(file));
    expect(s.files(), 'still in no public catalog').to.deep.equal([]);
  });

  it("a private download dials no node it knows otherwise: its peers come from its own trackers only (a public one's from every known node)", async function () {
    const s = await node('s', { 'secret.iso': 400_000 });
    const file = path.join(s.sharedDir, 'secret.iso');
    const secret = await torrentOf(file, path.join(fx.dir, 'secret.torrent'), { private: true });
    const open = await torrentOf(file, path.join(fx.dir, 'open.torrent'), { private: false });
    await s.seed(secret.path);
    await s.seed(open.path);
    const d = await node('d', {}, { peers: [{ host: '127.0.0.1', port: s.port }] });
    await waitFor(() => d.knownPeers().some((p) => p.port === s.port && p.reachable === 'yes'), 10_000, 'd knows s');
    await d.download(secret.path);
    await d.download(open.path);
    await d.whenDone(open.m.infoHashHex);
    const priv = d.listDownloads().find((x) => x.infohash === secret.m.infoHashHex)!;
    expect([priv.state, priv.peers, priv.verified]).to.deep.equal(['downloading', 0, 0]);
    const seen = s.status().torrents.find((t) => t.infohash === secret.m.infoHashHex);
    expect(seen?.peers ?? 0, 's never heard d ask for the private torrent').to.equal(0);
  });
});
