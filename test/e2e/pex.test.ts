/** Peer exchange (BEP 11) between nodes on loopback: a leecher learns of another from the seed they share, and dials it. */
import { expect } from 'chai';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { randomFile, startNode, tempDirPerTest, waitFor } from '../helpers.js';

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
});
