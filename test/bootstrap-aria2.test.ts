/**
 * A real BitTorrent client (aria2c) fetches a file shared by a Shoal node, with the
 * bootstrap server as its only tracker: once when the node announces to it, and once when
 * the node only registers and publishes its files (the tracker derives the peer from the
 * registry). Everything on 127.0.0.1; aria2c never uses DHT, LPD (multicast) or PEX.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir, randomFile, sha1File, waitFor, startNode, cleanup, Children } from './helpers.js';
import { findExecutable } from './opentracker.js';
import { encodeTorrent, fromInfo } from '../network/metainfo/metainfo.js';
import { announce } from '../network/tracker/announce.js';
import { BootstrapServer } from '../bootstrap/server.js';
import { BootstrapClient } from '../network/discovery/bootstrap-client.js';
import type { Node } from '../network/node.js';

/** A few pieces, the last one short. */
const SIZE = 3 * 1024 * 1024 + 12_345;

/** As in interop.test.ts: 127.0.0.1 only, no DHT, no LPD multicast, no PEX, no IPv6, no user config. */
const ARIA_NET = [
  '--no-conf=true',
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--disable-ipv6=true',
  '--interface=127.0.0.1',
  '--console-log-level=warn',
  '--summary-interval=0',
];

const children = new Children();

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  const child: ChildProcess = children.track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, output });
    });
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether the tracker hands out 127.0.0.1:`port` for `infohash`; asks as a passing observer and leaves. */
async function trackerLists(url: string, infohash: string, port: number): Promise<boolean> {
  const observer = { url, infoHash: Buffer.from(infohash, 'hex'), peerId: Buffer.from('-OB0001-observer0000'), port: 9, uploaded: 0, downloaded: 0, left: 1 };
  try {
    const res = await announce({ ...observer, timeoutMs: 2000 });
    return res.peers.some((p) => p.host === '127.0.0.1' && p.port === port);
  } finally {
    await announce({ ...observer, event: 'stopped', timeoutMs: 2000 }).catch(() => {});
  }
}

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
    const shared = node.library.files();
    expect(shared).to.have.length(1);
    const infohash = shared[0]!.metainfo.infoHashHex;
    const torrentFile = path.join(dir, 'payload.torrent');
    await fsp.writeFile(torrentFile, encodeTorrent(fromInfo(shared[0]!.metainfo.info, [trackerUrl])));
    return { trackerUrl, original, infohash, torrentFile };
  }

  async function ariaDownloads(torrentFile: string, original: string, infohash: string): Promise<void> {
    const dl = path.join(dir, 'aria-dl');
    const res = await run('aria2c', [...ARIA_NET, '--seed-time=0', `--listen-port=${await freePort()}`, '--file-allocation=none', '-d', dl, torrentFile], 40_000);
    expect(res.code, `aria2c ${res.signal === 'SIGKILL' ? 'did not finish in 40 s' : `exited with ${res.code}`}: ${res.output}`).to.equal(0);
    expect(await sha1File(path.join(dl, path.basename(original)))).to.equal(await sha1File(original));
    const stats = node!.status().torrents.find((t) => t.infohash === infohash);
    expect(stats, 'the Shoal node served the file').to.not.equal(undefined);
    expect(stats!.uploaded).to.be.at.least(SIZE);
  }

  it('gets identical bytes from a node that announces to the bootstrap tracker', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare((url) => ({ trackers: [`${url}/announce`] }));
    await waitFor(() => trackerLists(trackerUrl, infohash, node!.port), 10_000, 'the tracker to list the node');
    await ariaDownloads(torrentFile, original, infohash);
  });

  it('gets identical bytes from a node that only registers its files (peer derived from the registry)', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare({});
    registration = new BootstrapClient({
      url: server!.url,
      self: { id: 'seed-node', instance: node!.instance, name: 'seed', port: node!.port, host: '127.0.0.1' },
      state: () => ({ files: node!.library.files().map((f) => ({ name: f.name, size: f.size, infohash: f.metainfo.infoHashHex })), downloads: [] }),
    });
    await registration.start();
    expect(registration.health().state).to.equal('ok');
    expect(server!.tracker.store.counts(infohash), 'nobody announced it').to.deep.equal({ complete: 0, incomplete: 0, downloaded: 0 });
    expect(await trackerLists(trackerUrl, infohash, node!.port)).to.equal(true);
    await ariaDownloads(torrentFile, original, infohash);
  });

  it('gets identical bytes from a node started with --bootstrap (its own client publishes the file)', async function () {
    const { trackerUrl, original, infohash, torrentFile } = await prepare((url) => ({ bootstrap: url }));
    await waitFor(() => trackerLists(trackerUrl, infohash, node!.port), 10_000, 'the registry to list the node as a seed');
    await ariaDownloads(torrentFile, original, infohash);
  });
});
