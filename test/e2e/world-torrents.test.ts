/**
 * Seeding what the world made: a .torrent made by another tool (transmission-create, which
 * adds `private=0`; mktorrent at other piece sizes) for a file that is here already is seeded
 * under its own infohash, and a real client (libtorrent-rasterbar) downloads it from the
 * Shoal node; only some pieces here, and the download starts from them; kept across restarts
 * (a stat when the file is unchanged, a hash when it changed); `seed` never downloads; the
 * `node-cli seed` command and the dashboard's Add take the same path. Bytes compared every time.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { NoDataError, type Node, type NodeInit } from '../../network/index.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import { WebServer } from '../../web/index.js';
import { captureLog, randomFile, rejection, sha1File, spawnCli, startNode, tempDirPerTest, waitFor, Children, exitWithin } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { libtorrentMissing, startLibtorrent } from '../libtorrent.js';

const exec = promisify(execFile);

/** transmission-create's torrent of `file` with `kib` KiB pieces (it writes `private=0` into the info dictionary). */
async function transmissionCreate(file: string, out: string, kib: number, extra: string[] = []): Promise<string> {
  await exec('transmission-create', ['-s', String(kib), ...extra, '-o', out, file], { timeout: 60_000 });
  return out;
}

async function mktorrent(file: string, out: string, log2: number): Promise<string> {
  await exec('mktorrent', ['-l', String(log2), '-o', out, file], { timeout: 60_000 });
  return out;
}

/** Overwrite `length` bytes at `offset` of `file` with something else. */
async function damage(file: string, offset: number, length = 100): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    for (let i = 0; i < length; i++) buf[i] = buf[i]! ^ 0xff;
    await fh.write(buf, 0, length, offset);
  } finally {
    await fh.close();
  }
}

describe('seeding .torrent files made elsewhere from the data here', function () {
  this.timeout(120_000);
  const children = new Children();
  const nodes: Node[] = [];
  let web: WebServer | null = null;
  const fx = tempDirPerTest('shoal-world-', async () => {
    await children.killAll();
    await web?.stop();
    web = null;
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  before(function () {
    const missing = ['transmission-create', 'mktorrent'].filter((t) => !findExecutable(t));
    if (missing.length > 0 || libtorrentMissing()) {
      console.log(`    ${[...missing, libtorrentMissing()].filter(Boolean).join(', ')}: skipping`);
      this.skip();
    }
  });

  const node = async (name: string, init: Partial<NodeInit> = {}) => {
    const n = await startNode(path.join(fx.dir, name), init);
    nodes.push(n);
    return n;
  };

  /** libtorrent fetches `torrent` from the node alone, into a folder of its own; the bytes must be `original`'s. */
  async function libtorrentFetches(torrent: string, from: Node, original: string): Promise<void> {
    const into = path.join(fx.dir, `lt-${Date.now()}`);
    await fsp.mkdir(into, { recursive: true });
    const lt = await startLibtorrent(children, 'fetch', { torrent, dir: into, peers: [{ host: '127.0.0.1', port: from.port }] });
    await lt.waitFor((e) => e.event === 'done', 60_000, 'the whole file from the Shoal seed');
    expect(await sha1File(path.join(into, parseTorrent(await fsp.readFile(torrent)).name))).to.equal(await sha1File(original));
  }

  it('a transmission-create torrent (private=0, 32 KiB pieces) of a shared file: downloading it seeds it at once under its own infohash, and libtorrent gets the bytes', async function () {
    const file = path.join(fx.dir, 'a', 'shared', 'concert.mkv');
    await randomFile(file, 3 * 1024 * 1024 + 4321);
    const torrent = await transmissionCreate(file, path.join(fx.dir, 'concert.torrent'), 32);
    const m = parseTorrent(await fsp.readFile(torrent));
    expect(m.info.includes(Buffer.from('7:privatei0e')), 'transmission-create writes private=0').to.equal(true);
    const a = await node('a');
    expect(a.files()[0]!.metainfo.infoHashHex, 'the library computes another torrent (512 KiB pieces)').to.not.equal(m.infoHashHex);

    expect(await a.download(torrent)).to.equal(m.infoHashHex);
    const d = a.listDownloads().find((x) => x.infohash === m.infoHashHex)!;
    expect(d.state).to.equal('done');
    expect(d.path).to.equal(file);
    expect(await fsp.readdir(a.downloadDir)).to.not.include('concert.mkv.part');
    await libtorrentFetches(torrent, a, file);
    expect(a.status().torrents.find((t) => t.infohash === m.infoHashHex)!.uploaded).to.be.at.least(m.length);
  });

  it('only some pieces here (mktorrent, 64 KiB): the download starts from them and fetches the rest from a libtorrent seed; the damaged copy is left as it was', async function () {
    const original = path.join(fx.dir, 'lt-seed', 'lecture.mp4');
    await randomFile(original, 2 * 1024 * 1024 + 999);
    const torrent = await mktorrent(original, path.join(fx.dir, 'lecture.torrent'), 16);
    const m = parseTorrent(await fsp.readFile(torrent));
    const copy = path.join(fx.dir, 'b', 'shared', 'lecture.mp4');
    await fsp.mkdir(path.dirname(copy), { recursive: true });
    await fsp.copyFile(original, copy);
    await damage(copy, 5 * m.pieceLength + 10);
    await damage(copy, 20 * m.pieceLength);
    const damaged = await sha1File(copy);
    const b = await node('b');
    const seedErr = await rejection(b.seed(torrent));
    expect(seedErr).to.be.instanceOf(NoDataError);
    expect((seedErr as NoDataError).found).to.equal(m.pieceCount - 2);

    expect(await b.download(torrent)).to.equal(m.infoHashHex);
    const d = b.listDownloads().find((x) => x.infohash === m.infoHashHex)!;
    expect(d.state).to.equal('downloading');
    expect(d.verified, 'every piece but the two damaged ones, from the copy here').to.equal(m.pieceCount - 2);
    const lt = await startLibtorrent(children, 'seed', { torrent, dir: path.dirname(original), peers: [{ host: '127.0.0.1', port: b.port }] });
    const final = await b.whenDone(m.infoHashHex);
    expect(path.dirname(final)).to.equal(b.downloadDir);
    expect(await sha1File(final)).to.equal(await sha1File(original));
    expect(await sha1File(copy), 'the file found is never written to').to.equal(damaged);
    const fetched = b.listDownloads().find((x) => x.infohash === m.infoHashHex)!.fetched;
    expect(fetched, 'two pieces fetched, not the file').to.be.at.most(4 * m.pieceLength);
    lt.child.kill('SIGKILL');
  });

  it('kept across restarts: unchanged data is seeded after a stat, touched data is hashed again, changed data is seeded no more', async function () {
    const file = path.join(fx.dir, 'c', 'shared', 'archive.tar');
    await randomFile(file, 1024 * 1024 + 17);
    const torrent = await mktorrent(file, path.join(fx.dir, 'archive.torrent'), 15);
    const m = parseTorrent(await fsp.readFile(torrent));
    let c = await node('c');
    await c.seed(torrent);
    await c.stop();

    const restart = async () => {
      const log = captureLog('info');
      c = await node('c', { logger: log.logger });
      return log;
    };
    let log = await restart();
    expect(c.listDownloads().map((d) => [d.infohash, d.state, d.path])).to.deep.equal([[m.infoHashHex, 'done', file]]);
    expect(log.records.some((r) => r.msg === "a kept torrent's data changed: verifying it again")).to.equal(false);
    await libtorrentFetches(torrent, c, file);
    await c.stop();

    // Touched: hashed again in the background after the start, and seeded again.
    await fsp.utimes(file, new Date(), new Date(Date.now() - 60_000));
    log = await restart();
    await waitFor(() => c.listDownloads().some((d) => d.infohash === m.infoHashHex && d.state === 'done'), 20_000, 'seeded again once hashed');
    expect(log.records.some((r) => r.msg === "a kept torrent's data changed: verifying it again")).to.equal(true);
    await c.stop();

    await damage(file, 100);
    log = await restart();
    await waitFor(() => log.warnings().includes('no longer seeding a kept torrent'), 20_000, 'the warning that it is seeded no more');
    expect(c.listDownloads()).to.deep.equal([]);
    await c.stop();
    log = await restart();
    expect(log.warnings()).to.not.include('no longer seeding a kept torrent');
  });

  it('a finished download of a torrent the library would not make (256 KiB pieces) is seeded under its infohash after a restart too', async function () {
    const original = path.join(fx.dir, 'lt-seed', 'show.webm');
    await randomFile(original, 1536 * 1024 + 5);
    const torrent = await transmissionCreate(original, path.join(fx.dir, 'show.torrent'), 256);
    const m = parseTorrent(await fsp.readFile(torrent));
    let d = await node('d');
    await startLibtorrent(children, 'seed', { torrent, dir: path.dirname(original), peers: [{ host: '127.0.0.1', port: d.port }] });
    await d.download(torrent);
    const final = await d.whenDone(m.infoHashHex);
    await children.killAll();
    await d.stop();
    d = await node('d');
    expect(d.listDownloads().map((x) => [x.infohash, x.state, x.path])).to.deep.equal([[m.infoHashHex, 'done', final]]);
    await libtorrentFetches(torrent, d, original);
  });

  it('`node-cli seed X.torrent` runs a node that seeds it, and says so; a torrent whose data is not here fails with the count', async function () {
    const file = path.join(fx.dir, 'e', 'shared', 'podcast.ogg');
    await randomFile(file, 700_000);
    const torrent = await transmissionCreate(file, path.join(fx.dir, 'podcast.torrent'), 16);
    const other = path.join(fx.dir, 'elsewhere.bin');
    await randomFile(other, 50_000);
    const missing = await mktorrent(other, path.join(fx.dir, 'missing.torrent'), 15);
    const m = parseTorrent(await fsp.readFile(torrent));
    const cli = spawnCli(['seed', torrent, missing, '0', '--shared', path.join(fx.dir, 'e', 'shared'), '--downloads', path.join(fx.dir, 'e', 'downloads'), '--no-multicast'], fx.dir);
    children.track(cli.proc);
    const seeding = await cli.waitEvent('seeding');
    expect(seeding).to.include({ infohash: m.infoHashHex, path: file });
    const failed = await cli.waitEvent('failed');
    expect(failed.target).to.equal(missing);
    expect(String(failed.error)).to.match(/no file of 50000 bytes/);
    const listening = await cli.waitEvent('listening');
    const into = path.join(fx.dir, 'lt');
    await fsp.mkdir(into);
    const lt = await startLibtorrent(children, 'fetch', { torrent, dir: into, peers: [{ host: '127.0.0.1', port: Number(listening.port) }] });
    await lt.waitFor((e) => e.event === 'done', 60_000, 'the file from node-cli seed');
    expect(await sha1File(path.join(into, 'podcast.ogg'))).to.equal(await sha1File(file));
    cli.proc.kill('SIGTERM');
    expect((await exitWithin(cli, 20_000)).code).to.equal(0);
  });

  it("the dashboard's Add (an uploaded .torrent) seeds a file that is here, as a finished download", async function () {
    const file = path.join(fx.dir, 'f', 'shared', 'slides.pdf');
    await randomFile(file, 400_000);
    const torrent = await transmissionCreate(file, path.join(fx.dir, 'slides.torrent'), 64);
    const m = parseTorrent(await fsp.readFile(torrent));
    const f = await node('f');
    web = new WebServer({ node: f, host: '127.0.0.1', port: 0 });
    await web.start();
    const res = await fetch(`${web.url}/api/downloads`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-bittorrent' },
      body: await fsp.readFile(torrent),
    });
    expect(res.status).to.equal(202);
    const view = (await res.json()) as { infohash: string; state: string };
    expect(view).to.include({ infohash: m.infoHashHex, state: 'done' });
    await waitFor(() => f.listDownloads().some((d) => d.infohash === m.infoHashHex && d.path === file), 5000, 'the download listed as done from the shared file');
  });
});
