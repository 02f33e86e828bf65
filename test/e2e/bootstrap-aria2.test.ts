/**
 * A real BitTorrent client (aria2c) fetches a file shared by a Shoal node, with the
 * bootstrap server as its only tracker: once when the node announces to it, and once when
 * the node only registers and publishes its files (the tracker derives the peer from the
 * registry). Everything on 127.0.0.1; aria2c never uses DHT, LPD (multicast) or PEX.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir, randomFile, waitFor, startNode, cleanup, Children } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { ariaDownloads, trackerLists } from '../aria2.js';
import { encodeTorrent, fromInfo } from '../../network/metainfo/metainfo.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { Identity } from '../../network/security/identity.js';
import { BootstrapClient } from '../../network/discovery/bootstrap-client.js';
import type { Node } from '../../network/index.js';

/** A few pieces, the last one short. */
const SIZE = 3 * 1024 * 1024 + 12_345;

const children = new Children();

describe('interop: aria2c through the bootstrap tracker', function () {
  this.timeout(60_000);
  let dir = '';
  let server: BootstrapServer | null = null;
  let node: Node | null = null;
  let registration: BootstrapClient | null = null;

  before(function () {
    if (!findExecutable('aria2c')) {
      console.log('    aria2c not installed (apt-get install aria2): skipping the bootstrap tracker interop tests');
      this.skip();
    }
  });

  afterEach(async function () {
    await children.killAll();
    await registration?.stop();
    registration = null;
    await node?.stop();
    node = null;
    await server?.stop();
    server = null;
    if (dir) await cleanup(dir);
    dir = '';
  });

  /** A bootstrap server and a Shoal node sharing one random file; the node's own .torrent for it, announcing to the server. */
  async function prepare(nodeInit: Parameters<typeof startNode>[1] | ((url: string) => Parameters<typeof startNode>[1])) {
    dir = await tempDir('shoal-bootstrap-aria2-');
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dir, 'bootstrap'), heartbeatMs: 1000 });
    await server.start();
    const trackerUrl = `${server.url}/announce`;
    const seedDir = path.join(dir, 'seed');
    const original = path.join(seedDir, 'shared', 'payload.bin');
    await randomFile(original, SIZE);
    node = await startNode(seedDir, typeof nodeInit === 'function' ? nodeInit(server.url) : nodeInit);
    const shared = node.files();
    expect(shared).to.have.length(1);
    const infohash = shared[0]!.metainfo.infoHashHex;
    const torrentFile = path.join(dir, 'payload.torrent');
    await fsp.writeFile(torrentFile, encodeTorrent(fromInfo(shared[0]!.metainfo.info, [trackerUrl])));
    return { trackerUrl, original, infohash, torrentFile };
  }

  it('gets identical bytes from a node that announces to the bootstrap tracker', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare((url) => ({ trackers: [`${url}/announce`] }));
    await waitFor(() => trackerLists(trackerUrl, infohash, node!.port), 10_000, 'the tracker to list the node');
    await ariaDownloads(children, node!, { torrentFile, original, infohash, into: path.join(dir, 'aria-dl') });
  });

  it('gets identical bytes from a node that only registers its files (peer derived from the registry)', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare({});
    const seedKey = Identity.generate();
    registration = new BootstrapClient({
      url: server!.url,
      self: { id: seedKey.id, instance: node!.instance, name: 'seed', port: node!.port, host: '127.0.0.1' },
      signer: seedKey,
      state: () => ({ files: node!.files().map((f) => ({ name: f.name, size: f.size, infohash: f.metainfo.infoHashHex })), downloads: [] }),
    });
    await registration.start();
    expect(registration.health().state).to.equal('ok');
    expect(server!.tracker.store.counts(infohash), 'nobody announced it').to.deep.equal({ complete: 0, incomplete: 0, downloaded: 0 });
    expect(await trackerLists(trackerUrl, infohash, node!.port)).to.equal(true);
    await ariaDownloads(children, node!, { torrentFile, original, infohash, into: path.join(dir, 'aria-dl') });
  });

  it('gets identical bytes from a node started with --bootstrap (its own client publishes the file)', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare((url) => ({ bootstrap: url }));
    await waitFor(() => trackerLists(trackerUrl, infohash, node!.port), 10_000, 'the registry to list the node as a seed');
    await ariaDownloads(children, node!, { torrentFile, original, infohash, into: path.join(dir, 'aria-dl') });
  });
});
