import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { encodeMessage, LineDecoder, parseResponse, type ControlResponse } from '../../network/wire/control-codec.js';
import { controlRequest } from '../../network/control/control-client.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import bencode from 'bencode';
import { createHash } from 'node:crypto';
import { idOf, nodeApiAuth } from '../identities.js';
import { PeerRegistry } from '../../network/discovery/peer-registry.js';
import { Gossip } from '../../network/catalog/gossip.js';
import { silentLogger } from '../../network/util/log.js';
import { randomFile, startNode, waitFor, sha1File, nodesPerTest, startSharing, freePort } from '../helpers.js';

const MiB = 1024 * 1024;

/** A raw `subscribe` connection that records every answer line, validated. */
async function rawSubscribe(port: number): Promise<{ sock: net.Socket; msgs: ControlResponse[]; closed: Promise<void> }> {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const msgs: ControlResponse[] = [];
  const dec = new LineDecoder(1 << 20);
  sock.on('data', (d: Buffer) => {
    for (const l of dec.push(d)) msgs.push(parseResponse(l));
  });
  sock.on('error', () => {});
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.write(encodeMessage({ type: 'subscribe' }));
  return { sock, msgs, closed };
}

describe('network: search, learnt peers, subscribe and watch', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const { nodes } = fx;

  const node = (name: string, files: Record<string, number | string> = {}, init: Parameters<typeof startNode>[1] = {}) => startSharing(fx.dir, nodes, name, files, init);

  it('search asks every known peer and merges the answers by infohash, with how many nodes have each file', async () => {
    const common = path.join(fx.dir, 'common.bin');
    await randomFile(common, 300_000);
    const b = await node('b', { 'holiday-video.bin': common, 'notes.txt': 2000 });
    const c = await node('c', { 'holiday-video.bin': common });
    const d = await node('d', { 'holiday-photos.bin': 5000 });
    const a = await node('a', {}, { peers: [b, c, d].map((n) => ({ host: '127.0.0.1', port: n.port })), queryTimeoutMs: 1500 });
    a.addPeer('127.0.0.1', 1); // nobody there: answers in time with the others regardless
    const results = await a.search('HOLIDAY');
    expect(results.map((r) => [r.name, r.peers.length])).to.deep.equal([
      ['holiday-video.bin', 2],
      ['holiday-photos.bin', 1],
    ]);
    const video = results[0]!;
    expect(video.infohash).to.equal(b.files().find((f) => f.name === 'holiday-video.bin')!.metainfo.infoHashHex);
    expect(video.peers.map((p) => p.port).sort()).to.deep.equal([b.port, c.port].sort());
    expect(video.via).to.deep.equal(['peers']);
    // Search is text: pattern characters find nothing rather than everything.
    expect(await a.search('*')).to.deep.equal([]);
    expect(await a.search('../')).to.deep.equal([]);
  });

  it('get of a search result downloads from every node that has that infohash', async () => {
    const common = path.join(fx.dir, 'common.bin');
    await randomFile(common, 12 * MiB);
    const b = await node('b', { 'big.bin': common }, { pieceLength: 64 * 1024 });
    const c = await node('c', { 'big.bin': common }, { pieceLength: 64 * 1024 });
    const a = await node('a', {}, { peers: [b, c].map((n) => ({ host: '127.0.0.1', port: n.port })) });
    const [hit] = await a.search('big');
    expect(hit!.peers).to.have.length(2);
    const infohash = await a.download(hit!.infohash);
    const final = await a.whenDone(infohash);
    expect(await sha1File(final)).to.equal(await sha1File(common));
    const uploaded = [b, c].map((n) => n.status().torrents.find((t) => t.infohash === infohash)?.uploaded ?? 0);
    for (const u of uploaded) expect(u, `each node uploaded something: ${uploaded}`).to.be.greaterThan(0);
  });

  it('learns peers from other peers through the control protocol\'s peers request; only peers that answered are passed on', async () => {
    const c = await node('c');
    const dead = await freePort();
    const b = await node('b', {}, { peers: [{ host: '127.0.0.1', port: c.port }, { host: '127.0.0.1', port: dead }] });
    await waitFor(() => b.peer(c.id)?.reachable === 'yes', 5000, 'b to hear from c');
    const res = await controlRequest('127.0.0.1', b.port, { type: 'peers' });
    expect(res).to.deep.include({ type: 'PEERS', self: { id: b.id, name: 'b' } });
    expect(res.type === 'PEERS' && res.peers.map((p) => p.port), 'c answered b; nothing ever answered at the dead port').to.deep.equal([c.port]);
    const a = await node('a', {}, { peers: [{ host: '127.0.0.1', port: b.port }] });
    const learnt = await waitFor(() => a.peer(`127.0.0.1:${c.port}`), 5000, 'a learns c from b');
    expect([...learnt.sources]).to.deep.equal(['peer']);
    // The peer it asked told its id, which merges the hand-added entry with the node's id.
    const viaB = a.peer(b.id)!;
    expect(viaB.port).to.equal(b.port);
    expect(viaB.reachable).to.equal('yes');
    expect(a.knownPeers().map((p) => p.port)).to.not.include(a.port);
  });

  it('a peer listed at an address where another node answers is not who it claims: marked as not answering at the first exchange', async () => {
    const b = await node('b');
    const registry = new PeerRegistry();
    const gossip = new Gossip({ registry, timeoutMs: 2000, intervalMs: 0, log: silentLogger() });
    // A forged sighting names b's address under an id of its own; b is listed there too.
    const forged = registry.see('multicast', { id: 'FORGEDFORGEDFORGEDFORGEDFORGED22', host: '127.0.0.1', port: b.port })!;
    registry.see('multicast', { id: b.id, host: '127.0.0.1', port: b.port });
    expect(await gossip.probe(forged), 'the answer names another node').to.equal(false);
    expect([registry.get(forged.id!)!.reachable, registry.get(b.id)!.reachable]).to.deep.equal(['no', 'yes']);
    gossip.stop();
  });

  it('a subscriber gets a snapshot, then file-added and file-removed within seconds of the change', async () => {
    const b = await node('b', { 'first.txt': 100 }, { watch: true });
    const s = await rawSubscribe(b.port);
    const snap = await waitFor(() => s.msgs[0], 5000, 'snapshot');
    expect(snap.type).to.equal('SUBSCRIBED');
    expect(snap.type === 'SUBSCRIBED' && snap.files.map((f) => f.name)).to.deep.equal(['first.txt']);
    expect(snap.type === 'SUBSCRIBED' && snap.self?.id).to.equal(b.id);
    await randomFile(path.join(b.sharedDir, 'second.bin'), 50_000);
    const added = await waitFor(() => s.msgs.find((m) => m.type === 'EVENT' && m.event === 'file-added'), 10_000, 'file-added');
    expect(added.type === 'EVENT' && added.file.name).to.equal('second.bin');
    expect(added.type === 'EVENT' && added.file.infohash).to.equal(b.files().find((f) => f.name === 'second.bin')!.metainfo.infoHashHex);
    await fsp.rm(path.join(b.sharedDir, 'first.txt'));
    const removed = await waitFor(() => s.msgs.find((m) => m.type === 'EVENT' && m.event === 'file-removed'), 10_000, 'file-removed');
    expect(removed.type === 'EVENT' && removed.file.name).to.equal('first.txt');
    s.sock.destroy();
    // The node dropped the subscriber and still answers.
    expect((await controlRequest('127.0.0.1', b.port, { type: 'list' })).type).to.equal('LIST');
  });

  it('subscribe is the last request on its connection: later lines are ignored, a flood is cut off', async () => {
    const b = await node('b', { 'x.txt': 10 });
    const s = await rawSubscribe(b.port);
    await waitFor(() => s.msgs[0], 5000, 'snapshot');
    s.sock.write('{"type":"list"}\n');
    await new Promise((r) => setTimeout(r, 300));
    expect(s.msgs.map((m) => m.type)).to.deep.equal(['SUBSCRIBED']);
    s.sock.write(Buffer.alloc(100 * 1024, 0x61));
    await s.closed;
    expect((await controlRequest('127.0.0.1', b.port, { type: 'list' })).type).to.equal('LIST');
  });

  it('watch downloads every matching file on the network: those there now and one added later', async () => {
    const b = await node('b', { 'talk-1.mp3': 40_000, 'readme.txt': 100 }, { watch: true });
    const c = await node('c', {}, { watch: true });
    const a = await node('a', {}, { peers: [b, c].map((n) => ({ host: '127.0.0.1', port: n.port })) });
    const watched: string[] = [];
    a.on('watched', (f) => watched.push(f.name));
    a.watch('*.mp3');
    await waitFor(() => a.files().some((f) => f.name === 'talk-1.mp3'), 15_000, 'the existing match downloaded');
    await randomFile(path.join(c.sharedDir, 'talks', 'talk-2.MP3'), 30_000);
    await waitFor(() => a.files().some((f) => f.name === 'talk-2.MP3'), 15_000, 'the new match downloaded');
    expect(await sha1File(path.join(a.downloadDir, 'talk-2.MP3'))).to.equal(await sha1File(path.join(c.sharedDir, 'talks', 'talk-2.MP3')));
    expect(watched.sort()).to.deep.equal(['talk-1.mp3', 'talks/talk-2.MP3']);
    expect(a.files().map((f) => f.name)).to.not.include('readme.txt');
    expect(a.unwatch('*.mp3')).to.equal(true);
    expect(a.watching().streams).to.equal(0);
  });

  it('with a bootstrap server: search merges its index with the peers\' answers, one entry per node', async () => {
    const server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(fx.dir, 'bootstrap'), heartbeatMs: 200, ttlMs: 600 });
    await server.start();
    try {
      const common = path.join(fx.dir, 'common.bin');
      await randomFile(common, 100_000);
      const b = await node('b', { 'report.pdf': common }, { bootstrap: server.url });
      const c = await node('c', { 'report.pdf': common }, { bootstrap: server.url });
      const a = await node('a', {}, { bootstrap: server.url });
      await waitFor(() => a.knownPeers('bootstrap').length === 2, 5000, 'a hears of b and c from the server');
      const [hit, ...rest] = await a.search('report');
      expect(rest).to.deep.equal([]);
      expect(hit!.via.sort()).to.deep.equal(['bootstrap', 'peers']);
      expect(hit!.peers.map((p) => p.id).sort()).to.deep.equal([b.id, c.id].sort());
      // The server's tracker is used for downloads too: a finds both through all sources.
      const infohash = await a.download('report.pdf');
      expect(await sha1File(await a.whenDone(infohash))).to.equal(await sha1File(common));
      expect(a.discovery().map((d) => [d.source, d.health.state])).to.deep.equal([['bootstrap', 'ok']]);
      // A node that is registered but does not answer (killed without unregistering) is
      // reported by the nodes that fail to reach it, and the server drops it.
      const deadPort = await freePort();
      const ghost = idOf('ghost-node');
      const ghostBody = JSON.stringify({ id: ghost, instance: 'g1', name: 'ghost', port: deadPort, files: [], downloads: [] });
      const res = await fetch(`${server.url}/api/nodes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...nodeApiAuth('POST', '/api/nodes', ghostBody) },
        body: ghostBody,
      });
      expect(res.status).to.equal(200);
      await waitFor(() => a.peer(ghost) && b.peer(ghost) && c.peer(ghost), 5000, 'a, b and c hear of the ghost');
      // Three nodes were told of it: all three must find it unreachable (the default threshold, 3).
      for (let i = 0; i < 3; i++) await Promise.all([a.search('report'), b.search('report'), c.search('report')]);
      await waitFor(() => !server.registry.get(ghost), 5000, 'the server drops the unreachable node');
      await waitFor(() => !a.peer(ghost), 5000, 'and the nodes forget it at their next heartbeat');
    } finally {
      await Promise.all(nodes.splice(0).map((n) => n.stop()));
      await server.stop();
    }
  });

  it('a download by infohash from a peer that hands over a torrent named "../x" fails saying so, and writes nothing', async () => {
    // A hostile node: answers every metainfo request with a torrent whose name climbs out of the folder.
    const info = { length: 5, name: Buffer.from('../escaped.txt'), 'piece length': 16384, pieces: createHash('sha1').update('hello').digest() };
    const infohash = createHash('sha1').update(bencode.encode(info)).digest('hex');
    const torrent = Buffer.from(bencode.encode({ info })).toString('base64');
    const server = net.createServer((sock) => {
      sock.on('error', () => {});
      const dec = new LineDecoder(1 << 16);
      sock.on('data', (d: Buffer) => {
        for (const _ of dec.push(d)) sock.write(encodeMessage({ type: 'METAINFO', infohash, torrent }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    fx.fakes.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const a = await node('a', {}, { peers: [{ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }], queryTimeoutMs: 1500 });
    const err = await a.download(infohash).then(() => null, (e: Error) => e);
    expect(err, 'the download must fail').to.be.instanceOf(Error);
    expect(err!.message).to.match(/unsafe file name in torrent/);
    const written = (await fsp.readdir(fx.dir, { recursive: true })).filter((f) => f.includes('escaped'));
    expect(written).to.deep.equal([]);
    expect((await fsp.readdir(a.downloadDir).catch(() => [])).filter((f) => !f.startsWith('.'))).to.deep.equal([]);
  });
});
