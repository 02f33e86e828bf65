/**
 * Multi-file torrents with real BitTorrent clients, both ways, on 127.0.0.1: the folder is
 * made into a .torrent by mktorrent (Shoal shares the same folder under the same infohash),
 * aria2c downloads it from a Shoal node and seeds it to one, libtorrent-rasterbar seeds it to
 * one (the metadata over BEP 9 from a magnet) and downloads it from one. Every file compared.
 */
import { spawn, execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import { Children, freePort, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { findExecutable, startOpentracker, type Opentracker } from '../opentracker.js';
import { ARIA_NET, run, trackerLists } from '../aria2.js';
import { libtorrentMissing, startLibtorrent } from '../libtorrent.js';
import { expectSameTree, mixedTree, writeTree } from '../tree.js';

const spec = mixedTree(60, 1024 * 1024);
const files = Object.keys(spec);

describe('multi-file torrents with real clients', function () {
  this.timeout(120_000);
  const children = new Children();
  const nodes: Node[] = [];
  let tracker: Opentracker | null = null;
  const fx = tempDirPerTest('shoal-mf-interop-', async () => {
    await children.killAll();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await tracker?.stop();
    tracker = null;
  });

  /** The folder `src/Album` and its .torrent made by mktorrent (32 KiB pieces, announcing to a fresh opentracker). */
  async function album(): Promise<{ src: string; folder: string; torrent: string; h: string }> {
    const src = path.join(fx.dir, 'src');
    const folder = path.join(src, 'Album');
    await writeTree(folder, spec);
    const probe = path.join(fx.dir, 'probe.torrent');
    execFileSync('mktorrent', ['-l', '15', '-a', 'http://127.0.0.1:1/announce', '-o', probe, 'Album'], { cwd: src, stdio: 'ignore' });
    const h = parseTorrent(await fsp.readFile(probe)).infoHashHex;
    tracker = await startOpentracker([h]);
    const torrent = path.join(fx.dir, 'album.torrent');
    execFileSync('mktorrent', ['-l', '15', '-a', tracker.url, '-o', torrent, 'Album'], { cwd: src, stdio: 'ignore' });
    expect(parseTorrent(await fsp.readFile(torrent)).infoHashHex).to.equal(h);
    return { src, folder, torrent, h };
  }

  async function node(name: string, init: Parameters<typeof startNode>[1] = {}): Promise<Node> {
    const n = await startNode(path.join(fx.dir, name), init);
    nodes.push(n);
    return n;
  }

  describe('aria2c', function () {
    before(function () {
      const missing = ['aria2c', 'mktorrent', 'opentracker'].filter((n) => !findExecutable(n));
      if (missing.length > 0) {
        console.log(`    ${missing.join(', ')} not installed: skipping the aria2c cases`);
        this.skip();
      }
    });

    it('aria2c downloads a folder a Shoal node shares as one torrent (the infohash mktorrent gives it)', async function () {
      const { folder, torrent, h } = await album();
      const seed = await node('seed', { pieceLength: 32 * 1024, shareFoldersAsTorrents: [folder], trackers: [tracker!.url] });
      expect(seed.files().find((f) => f.metainfo.multiFile)?.metainfo.infoHashHex, "Shoal's folder torrent is mktorrent's").to.equal(h);
      await waitFor(() => trackerLists(tracker!.url, h, seed.port), 10_000, 'the tracker to list the Shoal node');
      const into = path.join(fx.dir, 'aria-dl');
      const res = await run(children, 'aria2c', [...ARIA_NET, '--seed-time=0', `--listen-port=${await freePort()}`, '--file-allocation=none', '-d', into, torrent], 60_000);
      expect(res.code, `aria2c ${res.signal === 'SIGKILL' ? 'did not finish' : `exited with ${res.code}`}: ${res.output}`).to.equal(0);
      await expectSameTree(path.join(into, 'Album'), folder, files);
      expect(seed.status().torrents.find((t) => t.infohash === h)!.uploaded).to.be.at.least(parseTorrent(await fsp.readFile(torrent)).length);
    });

    it('a Shoal node downloads a folder from an aria2c seed', async function () {
      const { src, folder, torrent, h } = await album();
      const ariaPort = await freePort();
      const seed = children.track(
        spawn('aria2c', [...ARIA_NET, '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${ariaPort}`, '-d', src, torrent], { stdio: 'ignore' }),
      );
      await waitFor(async () => {
        if (seed.exitCode !== null) throw new Error(`the aria2c seed exited with ${seed.exitCode}`);
        return trackerLists(tracker!.url, h, ariaPort);
      }, 15_000, 'the aria2c seed to announce itself');
      const leech = await node('leech');
      expect(await leech.download(torrent)).to.equal(h);
      const final = await leech.whenDone(h);
      expect(final).to.equal(path.join(leech.downloadDir, 'Album'));
      await expectSameTree(final, folder, files);
    });
  });

  describe('libtorrent', function () {
    before(function () {
      const missing = libtorrentMissing() ?? (findExecutable('mktorrent') ? null : 'mktorrent is not installed');
      if (missing) {
        console.log(`    ${missing}: skipping the libtorrent cases`);
        this.skip();
      }
    });

    it('a Shoal node downloads a folder from a libtorrent seed, given only a magnet (the metadata over BEP 9)', async function () {
      const { src, folder, torrent, h } = await album();
      const lt = await startLibtorrent(children, 'seed', { torrent, dir: src });
      const leech = await node('leech');
      expect(await leech.download(`magnet:?xt=urn:btih:${h}&x.pe=127.0.0.1:${lt.port}`)).to.equal(h);
      await expectSameTree(await leech.whenDone(h), folder, files);
    });

    it('libtorrent downloads a folder a Shoal node shares as one torrent, given only a magnet', async function () {
      const { folder, h } = await album();
      const seed = await node('seed', { pieceLength: 32 * 1024, shareFoldersAsTorrents: [folder] });
      const into = path.join(fx.dir, 'lt-dl');
      await fsp.mkdir(into, { recursive: true });
      const lt = await startLibtorrent(children, 'fetch', { magnet: `magnet:?xt=urn:btih:${h}&x.pe=127.0.0.1:${seed.port}`, dir: into, peers: [{ host: '127.0.0.1', port: seed.port }] });
      await lt.waitFor((e) => e.event === 'done', 60_000, 'the whole folder');
      await expectSameTree(path.join(into, 'Album'), folder, files);
    });
  });
});
