/**
 * BitTorrent v2 (BEP 52) as far as Shoal goes today (docs/bittorrent.md says what the rest
 * would take): a hybrid torrent made by libtorrent carries v1 pieces too, so Shoal takes it as
 * the v1 torrent it also is, downloading it from a libtorrent seed and seeding it to libtorrent
 * under its v1 infohash; a v2-only torrent is refused, saying so. Bytes compared every time.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MetainfoError, type Node } from '../../network/index.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import { randomFile, rejection, sha1File, startNode, tempDirPerTest, Children } from '../helpers.js';
import { libtorrentMissing, startLibtorrent, PYTHON } from '../libtorrent.js';

/** libtorrent's create_torrent: `hybrid` (v1 and v2) or `v2` only, with `pieceLength` pieces. */
const MAKE = `
import os, sys, libtorrent as lt
path, out, kind, plen = sys.argv[1:5]
fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, int(plen), flags=(lt.create_torrent.v2_only if kind == 'v2' else 0))
lt.set_piece_hashes(ct, os.path.dirname(path))
open(out, 'wb').write(lt.bencode(ct.generate()))
`;

async function libtorrentCreate(file: string, out: string, kind: 'hybrid' | 'v2', pieceLength = 64 * 1024): Promise<string> {
  await promisify(execFile)(PYTHON, ['-c', MAKE, file, out, kind, String(pieceLength)], { timeout: 60_000 });
  return out;
}

describe('BitTorrent v2 and hybrid torrents (BEP 52)', function () {
  this.timeout(90_000);
  const children = new Children();
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-hybrid-', async () => {
    await children.killAll();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  before(function () {
    const why = libtorrentMissing();
    if (why) {
      console.log(`    ${why}: skipping`);
      this.skip();
    }
  });

  it('a hybrid torrent made by libtorrent: Shoal downloads it from a libtorrent seed under its v1 infohash', async function () {
    const original = path.join(fx.dir, 'lt', 'clip.mov');
    await randomFile(original, 1500 * 1000);
    const torrent = await libtorrentCreate(original, path.join(fx.dir, 'clip.torrent'), 'hybrid');
    const m = parseTorrent(await fsp.readFile(torrent));
    expect(m.info.includes(Buffer.from('12:meta versioni2e')), 'a hybrid torrent').to.equal(true);
    const node = await startNode(path.join(fx.dir, 'shoal'));
    nodes.push(node);
    await startLibtorrent(children, 'seed', { torrent, dir: path.dirname(original), peers: [{ host: '127.0.0.1', port: node.port }] });
    expect(await node.download(torrent)).to.equal(m.infoHashHex);
    expect(await sha1File(await node.whenDone(m.infoHashHex))).to.equal(await sha1File(original));
  });

  it('a hybrid torrent whose data is here: Shoal seeds it to libtorrent under its v1 infohash', async function () {
    const file = path.join(fx.dir, 'shoal', 'shared', 'clip.mov');
    await randomFile(file, 1200 * 1000 + 7);
    const torrent = await libtorrentCreate(file, path.join(fx.dir, 'clip.torrent'), 'hybrid', 32 * 1024);
    const node = await startNode(path.join(fx.dir, 'shoal'));
    nodes.push(node);
    expect((await node.seed(torrent)).path).to.equal(file);
    const into = path.join(fx.dir, 'into');
    await fsp.mkdir(into);
    const lt = await startLibtorrent(children, 'fetch', { torrent, dir: into, peers: [{ host: '127.0.0.1', port: node.port }] });
    await lt.waitFor((e) => e.event === 'done', 60_000, 'the hybrid torrent from Shoal');
    expect(await sha1File(path.join(into, 'clip.mov'))).to.equal(await sha1File(file));
  });

  it('a v2-only torrent is refused with a MetainfoError that says so', async function () {
    const file = path.join(fx.dir, 'shoal', 'shared', 'clip.mov');
    await randomFile(file, 100_000);
    const torrent = await libtorrentCreate(file, path.join(fx.dir, 'clip.torrent'), 'v2');
    const node = await startNode(path.join(fx.dir, 'shoal'));
    nodes.push(node);
    for (const attempt of [node.download(torrent), node.seed(torrent)]) {
      const err = await rejection(attempt);
      expect(err).to.be.instanceOf(MetainfoError);
      expect(err.message).to.match(/v2-only torrent \(BEP 52\)/);
    }
  });
});
