/**
 * Metadata exchange (BEP 9 over BEP 10) with a real libtorrent-rasterbar client, both ways:
 * a magnet link with only an infohash and a peer is enough to download, whoever holds the
 * file. Bytes are compared every time.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { randomFile, sha1File, startNode, tempDirPerTest, Children } from '../helpers.js';
import { libtorrentMissing, startLibtorrent } from '../libtorrent.js';

describe('metadata exchange (BEP 9) with libtorrent', function () {
  this.timeout(90_000);
  const missing = libtorrentMissing();
  const children = new Children();
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-metadata-', async () => {
    await children.killAll();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  before(function () {
    if (missing) this.skip();
  });

  it('libtorrent downloads from a Shoal seed given only its magnet link (infohash and x.pe)', async function () {
    const file = path.join(fx.dir, 'seed', 'shared', 'album.flac');
    await randomFile(file, 3 * 1024 * 1024 + 1234);
    const seed = await startNode(path.join(fx.dir, 'seed'));
    nodes.push(seed);
    const h = seed.files()[0]!.metainfo.infoHashHex;
    const magnet = `magnet:?xt=urn:btih:${h}&x.pe=127.0.0.1:${seed.port}`;
    const into = path.join(fx.dir, 'lt');
    await fsp.mkdir(into, { recursive: true });
    const lt = await startLibtorrent(children, 'fetch', { magnet, dir: into, peers: [{ host: '127.0.0.1', port: seed.port }] });
    await lt.waitFor((e) => e.event === 'metadata', 20_000, 'the metadata from Shoal');
    await lt.waitFor((e) => e.event === 'done', 60_000, 'the whole file');
    expect(await sha1File(path.join(into, 'album.flac'))).to.equal(await sha1File(file));
  });

  it('Shoal downloads from a libtorrent seed given only its infohash and address: the metadata comes over BEP 9', async function () {
    const original = path.join(fx.dir, 'maker', 'shared', 'talk.mp3');
    await randomFile(original, 2 * 1024 * 1024 + 77);
    // The .torrent is made here and then the maker goes: only libtorrent has the metadata.
    const maker = await startNode(path.join(fx.dir, 'maker'));
    const h = maker.files()[0]!.metainfo.infoHashHex;
    const torrent = path.join(fx.dir, 'talk.torrent');
    await fsp.writeFile(torrent, maker.torrentFile(h)!);
    await maker.stop();
    const lt = await startLibtorrent(children, 'seed', { torrent, dir: path.join(fx.dir, 'maker', 'shared') });
    const leech = await startNode(path.join(fx.dir, 'leech'));
    nodes.push(leech);
    expect(leech.knownPeers(), 'no other Shoal node to ask over the control protocol').to.have.length(0);
    const got = await leech.download(`magnet:?xt=urn:btih:${h}&x.pe=127.0.0.1:${lt.port}`);
    expect(got).to.equal(h);
    const final = await leech.whenDone(h);
    expect(await sha1File(final)).to.equal(await sha1File(original));
  });
});
