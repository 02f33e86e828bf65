/**
 * Peer exchange (BEP 11) between nodes on loopback: a leecher learns of another from the seed
 * they share, and dials it; never in a private torrent's swarm (BEP 27).
 */
import { expect } from 'chai';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomFile, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { findExecutable } from '../opentracker.js';

describe('peer exchange (BEP 11)', function () {
  this.timeout(60_000);
  const nodes: Node[] = [];
  const fx = tempDirPerTest('shoal-pex-', async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  });

  it('a leecher that knows only the seed is told of the other leecher, and dials it', async function () {
    const file = path.join(fx.dir, 'seed', 'shared', 'movie.bin');
    await randomFile(file, 8 * 1024 * 1024);
    const limits = { pexIntervalMs: 300 };
    // Slow enough that both leechers are still downloading when the seed passes them on.
    const seed = await startNode(path.join(fx.dir, 'seed'), { maxUploadRate: 256 * 1024, limits });
    nodes.push(seed);
    const h = seed.files()[0]!.metainfo.infoHashHex;
    const viaSeed = { peers: [{ host: '127.0.0.1', port: seed.port }], limits };
    const one = await startNode(path.join(fx.dir, 'one'), viaSeed);
    const two = await startNode(path.join(fx.dir, 'two'), viaSeed);
    nodes.push(one, two);
    await one.download(h);
    await two.download(h);
    // Neither knows the other's address but through peer exchange: the registry has only the seed.
    expect(two.knownPeers().map((p) => p.port)).to.deep.equal([seed.port]);
    const linked = (a: Node, b: Node) => (a.downloadDetail(h)?.peerList ?? []).some((p) => p.address === `127.0.0.1:${b.port}` && p.outgoing);
    await waitFor(() => linked(one, two) || linked(two, one), 20_000, 'a leecher dialling the other after peer exchange');
  });

  it('no peer exchange in a private torrent: leechers that reach the seed alone never hear of each other', async function () {
    if (!findExecutable('transmission-create')) this.skip();
    const file = path.join(fx.dir, 'seed', 'shared', 'movie.bin');
    await randomFile(file, 8 * 1024 * 1024);
    const torrent = path.join(fx.dir, 'movie.torrent');
    // transmission-create wants a tracker for a private torrent: one nobody answers at.
    await promisify(execFile)('transmission-create', ['-p', '-s', '256', '-t', 'http://127.0.0.1:9/announce', '-o', torrent, file]);
    const limits = { pexIntervalMs: 300 };
    const seed = await startNode(path.join(fx.dir, 'seed'), { maxUploadRate: 256 * 1024, limits });
    nodes.push(seed);
    const { infohash: h } = await seed.seed(torrent);
    const one = await startNode(path.join(fx.dir, 'one'), { limits });
    const two = await startNode(path.join(fx.dir, 'two'), { limits });
    nodes.push(one, two);
    // The magnet names the seed (x.pe): the only peer either leecher has.
    const magnet = `magnet:?xt=urn:btih:${h}&x.pe=127.0.0.1:${seed.port}`;
    await one.download(magnet);
    await two.download(magnet);
    const linked = (a: Node, b: Node) => (a.downloadDetail(h)?.peerList ?? []).some((p) => p.address === `127.0.0.1:${b.port}`);
    await waitFor(() => [one, two].every((n) => (n.downloadDetail(h)?.verified ?? 0) > 0), 20_000, 'both leechers downloading from the seed');
    // Twenty exchange intervals: a public swarm links them within a few.
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      expect(linked(one, two) || linked(two, one), 'the leechers linked').to.equal(false);
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
