/**
 * The fast extension's allowed-fast and suggest messages (BEP 6), on real sockets on
 * loopback: a seed that chokes everyone (no upload slots) still serves each peer the pieces
 * of its allowed-fast set and rejects the rest; a Shoal downloader choked by such a seed
 * fetches exactly those pieces, from Shoal and from libtorrent; libtorrent fetches them from
 * Shoal; a peer's suggestions are what a downloader asks for first; and a peer that names a
 * piece out of range in either message is closed with that reason. The hand-written peers
 * speak the wire through Shoal's own codec, so only their behaviour is made up.
 */
import { expect } from 'chai';
import net from 'node:net';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { Node } from '../../network/index.js';
import {
  WireDecoder, encodeHandshake, encodeRequest, encodeAllowedFast, encodeSuggest, maxFrameFor,
  BLOCK_LENGTH, HAVE_ALL, INTERESTED, UNCHOKE, type WireMessage,
} from '../../network/wire/peer-wire.js';
import { reservedBytes } from '../../network/wire/extension.js';
import { encodeTorrent, pieceSize, type Metainfo } from '../../network/metainfo/metainfo.js';
import { createTorrent } from '../../network/library/create-torrent.js';
import { allowedFastSet } from '../../network/swarm/allowed-fast.js';
import { Children, captureLog, nodesPerTest, randomFile, startNode, startSeeds, waitFor } from '../helpers.js';
import { libtorrentMissing, startLibtorrent, type LtEvent } from '../libtorrent.js';

const KiB = 1024;
/** 32 KiB pieces (two blocks): 65 pieces, the last one short. */
const PIECE = 32 * KiB;
const SIZE = 64 * PIECE + 12_345;
/** How long a download that has its allowed-fast pieces is watched for more (several of the torrent's 1 s ticks). */
const SETTLE_MS = 2_500;

const sorted = (xs: Iterable<number>) => [...xs].sort((a, b) => a - b);

/** The verified pieces of a download, from its piece map. */
function verifiedPieces(node: Node, infohash: string): number[] {
  const d = node.downloadDetail(infohash);
  if (!d) return [];
  const out: number[] = [];
  for (let i = 0; i < d.pieceCount; i++) if (d.bitfield[i >> 3]! & (0x80 >> (i & 7))) out.push(i);
  return out;
}

/** A raw peer on one socket: it records every message it gets, and whether the other side closed it. */
interface WirePeer {
  sock: net.Socket;
  got: WireMessage[];
  closed(): boolean;
  send(b: Buffer): void;
}

function wirePeer(sock: net.Socket, m: Metainfo, onMessage: (msg: WireMessage, p: WirePeer) => void = () => {}): WirePeer {
  const got: WireMessage[] = [];
  let closed = false;
  const p: WirePeer = { sock, got, closed: () => closed, send: (b) => void sock.write(b) };
  const decoder = new WireDecoder((msg) => {
    got.push(msg.type === 'piece' ? { ...msg, block: Buffer.from(msg.block) } : msg);
    onMessage(msg, p);
  }, maxFrameFor(m.pieceCount));
  sock.on('data', (c: Buffer) => {
    try {
      decoder.push(c);
    } catch {
      sock.destroy();
    }
  });
  sock.on('error', () => {});
  sock.on('close', () => (closed = true));
  return p;
}

/** Dial a node as a BitTorrent peer of `m` that speaks the fast extension, from `localAddress`. */
async function dialAsPeer(port: number, m: Metainfo, localAddress = '127.0.0.1'): Promise<WirePeer> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress });
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const p = wirePeer(sock, m);
  p.send(encodeHandshake(m.infoHash, Buffer.from(`-FK0001-${randomBytes(6).toString('hex')}`), reservedBytes()));
  await waitFor(() => p.got.some((x) => x.type === 'handshake'), 5_000, 'the handshake');
  return p;
}

const allowedFastOf = (p: WirePeer) => p.got.flatMap((x) => (x.type === 'allowed-fast' ? [x.index] : []));

describe('fast extension (BEP 6): allowed-fast and suggest', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const { nodes, fakes } = fx;
  const children = new Children();
  afterEach(() => children.killAll());

  /** A Shoal seed of one file that unchokes nobody: it has no upload slots. */
  async function chokingSeed(log = captureLog('warn')): Promise<{ seed: Node; m: Metainfo; digest: string }> {
    const { seeds, digest } = await startSeeds(fx.dir, nodes, 1, SIZE, 'f.bin', { pieceLength: PIECE, limits: { uploadSlots: 0 }, logger: log.logger });
    return { seed: seeds[0]!, m: seeds[0]!.files()[0]!.metainfo, digest };
  }

  describe('a seed that chokes everyone', () => {
    it('tells an interested peer its canonical allowed-fast set (the /24 of its address), serves those pieces while choked and rejects the others', async () => {
      const { seed, m } = await chokingSeed();
      const expected = allowedFastSet('127.0.0.1', m.infoHash, m.pieceCount, 10);
      expect(expected).to.have.length(10);
      const p = await dialAsPeer(seed.port, m);
      await waitFor(() => p.got.some((x) => x.type === 'have-all'), 5_000, 'have-all');
      expect(allowedFastOf(p), 'nothing before it is interested').to.deep.equal([]);
      p.send(INTERESTED);
      await waitFor(() => allowedFastOf(p).length >= 10, 5_000, 'its allowed-fast set');
      expect(sorted(allowedFastOf(p))).to.deep.equal(sorted(expected));

      const fast = expected[0]!;
      const other = [...Array(m.pieceCount).keys()].find((i) => !expected.includes(i))!;
      p.send(Buffer.concat([encodeRequest(fast, 0, BLOCK_LENGTH), encodeRequest(fast, BLOCK_LENGTH, BLOCK_LENGTH), encodeRequest(other, 0, BLOCK_LENGTH)]));
      await waitFor(() => p.got.filter((x) => x.type === 'piece' || x.type === 'reject').length === 3, 5_000, 'an answer to each request');
      const pieces = p.got.filter((x) => x.type === 'piece');
      expect(pieces.map((x) => x.type === 'piece' && [x.index, x.begin])).to.deep.equal([[fast, 0], [fast, BLOCK_LENGTH]]);
      const rejects = p.got.filter((x) => x.type === 'reject');
      expect(rejects.map((x) => x.type === 'reject' && [x.index, x.begin])).to.deep.equal([[other, 0]]);
      expect(p.got.some((x) => x.type === 'unchoke'), 'never unchoked').to.equal(false);
      expect(p.closed()).to.equal(false);

      // Another address of the same /24 gets the same set.
      const q = await dialAsPeer(seed.port, m, '127.0.0.9');
      q.send(INTERESTED);
      await waitFor(() => allowedFastOf(q).length >= 10, 5_000, 'the neighbour\'s allowed-fast set');
      expect(sorted(allowedFastOf(q))).to.deep.equal(sorted(expected));
      p.sock.destroy();
      q.sock.destroy();
    });

    it('serves an allowed-fast piece to a choked peer at most twice over, then rejects it, and keeps the peer', async () => {
      const { seed, m } = await chokingSeed();
      const p = await dialAsPeer(seed.port, m);
      p.send(INTERESTED);
      await waitFor(() => allowedFastOf(p).length >= 10, 5_000, 'its allowed-fast set');
      const fast = allowedFastOf(p).find((i) => pieceSize(m, i) === PIECE)!;
      // The whole piece three times over: the third copy is refused.
      const asks: Buffer[] = [];
      for (let round = 0; round < 3; round++) for (let b = 0; b < PIECE; b += BLOCK_LENGTH) asks.push(encodeRequest(fast, b, BLOCK_LENGTH));
      p.send(Buffer.concat(asks));
      await waitFor(() => p.got.filter((x) => x.type === 'piece' || x.type === 'reject').length === asks.length, 5_000, 'an answer to each request');
      expect(p.got.filter((x) => x.type === 'piece')).to.have.length(4);
      expect(p.got.filter((x) => x.type === 'reject')).to.have.length(2);
      expect(p.closed()).to.equal(false);
      p.sock.destroy();
    });
  });

  it('a Shoal downloader choked by a Shoal seed fetches exactly its allowed-fast pieces, verified', async () => {
    const { seed, m } = await chokingSeed();
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: seed.port }] });
    nodes.push(leech);
    const h = await leech.download(m.infoHashHex);
    const expected = sorted(allowedFastSet('127.0.0.1', m.infoHash, m.pieceCount, 10));
    await waitFor(() => verifiedPieces(leech, h).length >= expected.length, 15_000, 'the allowed-fast pieces');
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    expect(verifiedPieces(leech, h), 'those pieces and no other').to.deep.equal(expected);
    const info = leech.listDownloads().find((d) => d.infohash === h)!;
    expect(info.hashFailures).to.equal(0);
    const bytes = expected.reduce((n, i) => n + pieceSize(m, i), 0);
    expect(seed.status().torrents.find((t) => t.infohash === h)?.uploaded, 'each piece sent once').to.equal(bytes);
  });

  it('a Shoal downloader asks first for the pieces a peer suggested, newest first', async () => {
    const file = path.join(fx.dir, 'orig', 'f.bin');
    await randomFile(file, SIZE);
    const m = await createTorrent(file, { pieceLength: PIECE });
    const requested: number[] = [];
    // A peer that has everything, suggests pieces 37 then 12, and unchokes; it answers nothing.
    const server = net.createServer((sock) => {
      wirePeer(sock, m, (msg, p) => {
        if (msg.type === 'handshake') {
          p.send(encodeHandshake(m.infoHash, Buffer.from(`-FK0001-${randomBytes(6).toString('hex')}`), reservedBytes()));
          p.send(Buffer.concat([HAVE_ALL, encodeSuggest(37), encodeSuggest(12), UNCHOKE]));
        } else if (msg.type === 'request' && !requested.includes(msg.index)) requested.push(msg.index);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    fakes.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }] });
    nodes.push(leech);
    const torrent = path.join(fx.dir, 'f.torrent');
    await fsp.writeFile(torrent, encodeTorrent(m));
    await leech.download(torrent);
    await waitFor(() => requested.length >= 3, 10_000, 'requests');
    expect(requested.slice(0, 2)).to.deep.equal([12, 37]);
  });

  it('closes a peer that names a piece out of range in an allowed-fast or a suggest message, saying why', async () => {
    const log = captureLog('warn');
    const { seed, m } = await chokingSeed(log);
    for (const [msg, reason] of [
      [encodeAllowedFast(m.pieceCount + 3), `closing peer: allowed-fast for piece ${m.pieceCount + 3} out of range`],
      [encodeSuggest(m.pieceCount), `closing peer: suggest for piece ${m.pieceCount} out of range`],
    ] as const) {
      const p = await dialAsPeer(seed.port, m);
      p.send(msg);
      await waitFor(() => p.closed(), 3_000, `the peer closed for: ${reason}`);
      await waitFor(() => log.warnings().includes(reason), 3_000, `the warning: ${reason}`);
    }
    // An index in range is taken, and the peer kept.
    const ok = await dialAsPeer(seed.port, m);
    ok.send(Buffer.concat([encodeAllowedFast(m.pieceCount - 1), encodeSuggest(0)]));
    await new Promise((r) => setTimeout(r, 300));
    expect(ok.closed()).to.equal(false);
    ok.sock.destroy();
  });

  describe('with libtorrent', () => {
    before(function () {
      const why = libtorrentMissing();
      if (why) {
        console.log(`      ${why}: skipping`);
        this.skip();
      }
    });

    /** libtorrent's own set: its allowed-fast generation hashes the whole address (no /24 mask), and skips pieces the peer has. */
    function libtorrentSet(ip: number[], infoHash: Buffer, pieceCount: number, k: number): number[] {
      const set: number[] = [];
      let x = createHash('sha1').update(Buffer.concat([Buffer.from(ip), infoHash])).digest();
      for (;;) {
        for (let i = 0; i < 5; i++) {
          const piece = x.readUInt32BE(i * 4) % pieceCount;
          if (set.includes(piece)) continue;
          set.push(piece);
          if (set.length >= k) return set;
        }
        x = createHash('sha1').update(x).digest();
      }
    }

    it('a Shoal downloader choked for good by a libtorrent seed gets exactly the pieces libtorrent allows fast', async () => {
      const file = path.join(fx.dir, 'lt', 'f.bin');
      await randomFile(file, SIZE);
      const m = await createTorrent(file, { pieceLength: PIECE });
      const torrent = path.join(fx.dir, 'f.torrent');
      await fsp.writeFile(torrent, encodeTorrent(m));
      const lt = await startLibtorrent(children, 'seed', { torrent, dir: path.dirname(file), unchokeSlots: 0 });
      const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: lt.port }] });
      nodes.push(leech);
      const h = await leech.download(torrent);
      const expected = sorted(libtorrentSet([127, 0, 0, 1], m.infoHash, m.pieceCount, 5));
      await waitFor(() => verifiedPieces(leech, h).length >= expected.length, 20_000, 'the pieces libtorrent allows fast');
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      expect(verifiedPieces(leech, h)).to.deep.equal(expected);
      expect(leech.listDownloads().find((d) => d.infohash === h)!.hashFailures).to.equal(0);
    });

    it('libtorrent choked by a Shoal seed fetches exactly the allowed-fast pieces Shoal grants it', async () => {
      const { seed, m } = await chokingSeed();
      const torrent = path.join(fx.dir, 'f.torrent');
      await fsp.writeFile(torrent, encodeTorrent(m));
      const into = path.join(fx.dir, 'into');
      await fsp.mkdir(into);
      const lt = await startLibtorrent(children, 'fetch', { torrent, dir: into, peers: [{ host: '127.0.0.1', port: seed.port }] });
      const expected = allowedFastSet('127.0.0.1', m.infoHash, m.pieceCount, 10);
      const share = expected.reduce((n, i) => n + pieceSize(m, i), 0) / m.length;
      const near = (e: LtEvent) => Math.abs(Number(e.progress) - share) < 1e-4;
      await lt.waitFor((e) => e.event === 'progress' && near(e), 20_000, `progress ${share.toFixed(4)} (the allowed-fast pieces)`);
      const seen = lt.events.length;
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      const later = lt.events.slice(seen).filter((e) => e.event === 'progress');
      expect(later.length, 'libtorrent still running').to.be.greaterThan(0);
      for (const e of later) expect(near(e), `progress stays at the allowed-fast pieces: ${String(e.progress)}`).to.equal(true);
      expect(seed.status().torrents.find((t) => t.infohash === m.infoHashHex)?.uploaded).to.equal(share * m.length);
    });
  });
});
