import { EventEmitter } from 'node:events';
import {
  type WireMessage, encodeHandshake, encodeRequests, encodeBitfield, encodeHave, encodeCancel, maxFrameFor,
  INTERESTED, NOT_INTERESTED, CHOKE, UNCHOKE, BLOCK_LENGTH, MAX_REQUEST_LENGTH,
} from '../wire/peer-wire.js';
import { Bitfield } from '../wire/bitfield.js';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import type { PieceStore } from '../storage/stores.js';
import { PartFile, type Hasher } from '../storage/part-file.js';
import { SeedStore } from '../storage/seed-store.js';
import { PiecePicker, type ActivePiece } from './picker.js';
import { Peer, DEFAULT_PEER_TIMEOUTS, dialSocket, type PeerTimeouts } from './peer.js';
import { RateLimiter, RateMeter } from './rate.js';
import { Choker } from './choker.js';
import { clientName } from './client-name.js';
import { serveUploads, type UploadContext } from './uploads.js';

export interface SwarmLimits {
  /** Connections per torrent. */
  maxPeers: number;
  /** Peers we upload to at once. */
  uploadSlots: number;
  /** A peer with requests outstanding that sends no block for this long has stalled. */
  requestTimeoutMs: number;
  /** Stalls before we drop a peer. */
  maxStalls: number;
  /** Hash failures of pieces a peer alone sent before we drop and ban it. */
  maxStrikes: number;
  /** Requests a peer may queue with us; more is abuse and closes the connection. */
  maxQueuedUploads: number;
  connectTimeoutMs: number;
  /** Most requests kept in flight to one peer. */
  maxQueueDepth: number;
}

export const DEFAULT_SWARM_LIMITS: SwarmLimits = {
  maxPeers: 50,
  uploadSlots: 16,
  requestTimeoutMs: 10_000,
  maxStalls: 3,
  maxStrikes: 2,
  maxQueuedUploads: 512,
  connectTimeoutMs: 5_000,
  maxQueueDepth: 256,
};

export interface TorrentInit {
  metainfo: Metainfo;
  store: PieceStore;
  peerId: Buffer;
  hasher: Hasher;
  logger: Logger;
  limits: SwarmLimits;
  timeouts?: PeerTimeouts;
  uploadLimiter: RateLimiter;
  /** Node-wide meters every torrent also counts its payload bytes in. */
  totals?: { down: RateMeter; up: RateMeter };
  /** Start paused: no dialing, incoming peers refused, until `resume()`. */
  paused?: boolean;
}

/** One connected peer as the dashboard shows it. */
export interface PeerStat {
  /** host:port ([v6]:port) of the connection (an incoming peer's port is its ephemeral one). */
  address: string;
  /** Decoded from the peer id: "Shoal 0.1.0", "aria2 1.37.0", or its printable prefix. */
  client: string;
  /** Payload bytes this peer sent us (verified or not), and we sent it. */
  downloaded: number;
  uploaded: number;
  downloadRate: number;
  uploadRate: number;
  /** Share of the pieces it has, 0 to 1. */
  has: number;
  outgoing: boolean;
}

export interface TorrentStats {
  infohash: string;
  name: string;
  length: number;
  pieces: number;
  verified: number;
  /** Payload bytes received, including duplicates and data that failed its hash. */
  downloaded: number;
  uploaded: number;
  /** Bytes of verified pieces fetched by this run (excludes what a resume recovered). */
  fetched: number;
  wasted: number;
  hashFailures: number;
  downloadRate: number;
  uploadRate: number;
  peers: number;
  seeding: boolean;
}

export interface TorrentEvents {
  piece: [index: number];
  done: [path: string];
  error: [err: Error];
  'peer-added': [peer: Peer];
  'peer-removed': [peer: Peer, reason: string];
  /** A peer showed it has every piece (a seed of this torrent). */
  'peer-complete': [peer: Peer];
}

/** Blocks (16 KiB each) that may stand before a piece a reader waits for; more are cancelled. */
export const PREEMPT_AHEAD_BLOCKS = 16;

interface Candidate {
  host: string;
  port: number;
  failures: number;
  nextTry: number;
}

/**
 * One torrent on this node: a shared file being seeded, or a download that seeds what it
 * has verified. Peers arrive both ways (we dial candidates; the peer server hands us
 * incoming connections after their handshake). The picker decides what to ask; every piece
 * is hashed off the event loop before it counts, written at its offset, announced with HAVE.
 */
export class Torrent extends EventEmitter<TorrentEvents> {
  readonly metainfo: Metainfo;
  readonly peers = new Set<Peer>();
  store: PieceStore;
  private picker: PiecePicker | null = null;
  private readonly choker: Choker;
  private readonly candidates = new Map<string, Candidate>();
  private readonly connecting = new Set<string>();
  private readonly banned = new Set<string>();
  private readonly down = new RateMeter();
  private readonly up = new RateMeter();
  private timer: NodeJS.Timeout | null = null;
  private verifying = 0;
  private stopped = false;
  private paused: boolean;
  private finishing = false;
  private stats = { downloaded: 0, uploaded: 0, fetched: 0, wasted: 0, hashFailures: 0 };
  private readonly handshake: Buffer;
  private readonly maxFrame: number;
  private readonly timeouts: PeerTimeouts;
  private readonly uploads: UploadContext;

  constructor(private readonly init: TorrentInit) {
    super();
    this.metainfo = init.metainfo;
    this.store = init.store;
    this.paused = init.paused ?? false;
    this.timeouts = init.timeouts ?? DEFAULT_PEER_TIMEOUTS;
    this.handshake = encodeHandshake(this.metainfo.infoHash, init.peerId);
    this.maxFrame = maxFrameFor(this.metainfo.pieceCount);
    this.choker = new Choker(init.limits.uploadSlots, () => this.seeding);
    this.uploads = {
      reader: () => this.store.reader,
      limiter: init.uploadLimiter,
      log: init.logger,
      sent: (n) => {
        this.up.add(n);
        this.init.totals?.up.add(n);
        this.stats.uploaded += n;
      },
      resume: (peer) => void this.pump(peer),
    };
    if (!this.store.have.complete()) this.startPicking();
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  get seeding(): boolean {
    return this.store.have.complete();
  }

  get log(): Logger {
    return this.init.logger;
  }

  info(): TorrentStats {
    const m = this.metainfo;
    return {
      infohash: m.infoHashHex,
      name: m.name,
      length: m.length,
      pieces: m.pieceCount,
      verified: this.store.have.count(),
      ...this.stats,
      downloadRate: this.down.rate(),
      uploadRate: this.up.rate(),
      peers: this.peers.size,
      seeding: this.seeding,
    };
  }

  /** Peers to dial (and redial with back-off if they drop while we still need pieces). */
  addPeers(list: Array<{ host: string; port: number }>): void {
    for (const { host, port } of list) {
      const key = `${host}:${port}`;
      if (!this.candidates.has(key)) this.candidates.set(key, { host, port, failures: 0, nextTry: 0 });
    }
    this.dialCandidates();
  }

  /**
   * Stop moving bytes but keep everything needed to go on: every connection closes, no
   * dialing, incoming peers are turned away, the resume record is flushed; the store
   * (and the picker's pieces in progress) stay open.
   */
  async pause(): Promise<void> {
    if (this.stopped || this.paused) return;
    this.paused = true;
    for (const p of [...this.peers]) p.close('download paused');
    if (this.store instanceof PartFile) await this.store.saveNow();
  }

  /** Go on after `pause()`: every known candidate is dialled again at once. */
  resume(): void {
    if (this.stopped || !this.paused) return;
    this.paused = false;
    for (const c of this.candidates.values()) {
      c.failures = 0;
      c.nextTry = 0;
    }
    this.dialCandidates();
  }

  /**
   * Streaming: fetch the pieces from `index` on before rarest-first, and ask for them now.
   * What a peer has queued comes before anything asked of it now, which at a slow peer is
   * seconds of data: when more than PREEMPT_AHEAD_BLOCKS stand before the wanted piece (at
   * the peer fetching it, or, if nobody is, at the fastest peer that has it), that peer's
   * queue is cancelled (BEP 3 CANCEL; its pieces go back to the pool, blocks already on the
   * wire are still used) and it is asked for the window first.
   */
  prioritize(index: number, count?: number): void {
    const picker = this.picker;
    if (!picker) return;
    picker.prioritize(index, count);
    if (picker.isNeeded(index)) {
      const peer = this.queuedAhead(index, picker);
      if (peer) this.preempt(peer, picker);
    }
    for (const p of this.peers) this.request(p);
  }

  /** The peer to take back a queue from so that piece `index` comes next, or null. */
  private queuedAhead(index: number, picker: PiecePicker): Peer | null {
    const ap = picker.active.get(index);
    if (ap) {
      const owner = ap.owner as Peer | null;
      if (!owner || !this.peers.has(owner)) return null; // an orphan: the next pick of a peer having it adopts it first
      let ahead = 0;
      for (const key of owner.requested) {
        if (Math.floor(key / picker.blocksPerPiece) === index) break;
        ahead++;
      }
      return ahead > PREEMPT_AHEAD_BLOCKS ? owner : null;
    }
    let best: Peer | null = null;
    for (const p of this.peers) {
      if (p.closed || p.peerChoking || !p.bitfield.get(index) || p.requested.size <= PREEMPT_AHEAD_BLOCKS) continue;
      if (!best || p.down.rate() > best.down.rate()) best = p;
    }
    return best;
  }

  private preempt(peer: Peer, picker: PiecePicker): void {
    const bpp = picker.blocksPerPiece;
    const cancels: Buffer[] = [];
    for (const key of peer.requested) {
      const i = Math.floor(key / bpp);
      const b = key % bpp;
      const ap = picker.active.get(i);
      if (ap) cancels.push(encodeCancel(i, b * BLOCK_LENGTH, ap.blockLength(b)));
    }
    if (cancels.length > 0) peer.send(Buffer.concat(cancels));
    picker.release(peer);
    this.log.debug({ peer: peer.label, cancelled: cancels.length }, 'streaming: took back a queue for a wanted piece');
  }

  /** Every connected peer with its counters. */
  peerStats(): PeerStat[] {
    const n = this.metainfo.pieceCount;
    return [...this.peers].map((p) => ({
      address: p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`,
      client: clientName(p.peerId),
      downloaded: p.down.total,
      uploaded: p.up.total,
      downloadRate: p.down.rate(),
      uploadRate: p.up.rate(),
      has: n > 0 ? p.bitfield.count() / n : 0,
      outgoing: p.outgoing,
    }));
  }

  /** Finish a download whose pieces were all verified already (found complete on resume). */
  finishIfComplete(): void {
    const part = this.store;
    if (part instanceof PartFile && part.have.complete())
      this.finish(part).catch((err: Error) => {
        this.log.error({ torrent: this.metainfo.name, err: err.message }, 'could not finish a complete download');
        this.emit('error', err);
      });
  }

  /** An incoming connection whose handshake named this torrent. */
  accept(peer: Peer, peerId: Buffer, early: WireMessage[] = []): void {
    peer.send(this.handshake);
    this.attach(peer, peerId);
    // Messages that arrived while the server looked this torrent up.
    for (const m of early) if (this.peers.has(peer) && !peer.closed) this.onMessage(peer, m);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const p of [...this.peers]) p.close('torrent stopped');
    await this.store.close();
  }

  /** Cancel a download: close everything and delete its .part and resume record. */
  async cancel(): Promise<void> {
    await this.stop();
    if (this.store instanceof PartFile) await this.store.discard();
  }

  // ---- connections ----------------------------------------------------------------------

  private dialCandidates(): void {
    if (this.stopped || this.paused || this.seeding) return;
    const now = Date.now();
    for (const [key, c] of this.candidates) {
      if (this.peers.size + this.connecting.size >= this.init.limits.maxPeers) return;
      if (c.nextTry > now || this.connecting.has(key) || this.banned.has(key)) continue;
      if ([...this.peers].some((p) => p.outgoing && p.address === c.host && p.port === c.port)) continue;
      this.dial(c);
    }
  }

  private dial(c: Candidate): void {
    const key = `${c.host}:${c.port}`;
    this.connecting.add(key);
    let peer: Peer | null = null;
    const socket = dialSocket(c.host, c.port, (chunk) => peer?.feed(chunk));
    peer = new Peer(socket, c.host, c.port, true, this.timeouts);
    const timer = setTimeout(() => peer!.close(`connect timed out after ${this.init.limits.connectTimeoutMs} ms`), this.init.limits.connectTimeoutMs);
    timer.unref();
    socket.once('connect', () => {
      clearTimeout(timer);
      peer!.send(this.handshake);
    });
    peer.events = {
      message: (p, msg) => {
        if (msg.type !== 'handshake') return p.close('message before handshake');
        if (!msg.infoHash.equals(this.metainfo.infoHash)) return p.close('handshake for another torrent');
        this.connecting.delete(key);
        c.failures = 0;
        this.attach(p, msg.peerId);
      },
      close: (_p, reason) => {
        clearTimeout(timer);
        this.connecting.delete(key);
        c.failures++;
        c.nextTry = Date.now() + Math.min(300_000, 2_000 * 2 ** Math.min(c.failures, 8));
        this.log.debug({ peer: key, reason }, 'could not connect to peer');
      },
    };
  }

  private attach(peer: Peer, peerId: Buffer): void {
    peer.handshakeDone();
    const idHex = peerId.toString('hex');
    if (peerId.equals(this.init.peerId)) return peer.close('connected to ourselves');
    if (this.banned.has(idHex) || this.banned.has(peer.label)) return peer.close('banned peer');
    if (this.stopped) return peer.close('torrent stopped');
    if (this.paused) return peer.close('download paused');
    for (const other of this.peers) if (other.peerId?.equals(peerId)) return peer.close('duplicate connection');
    if (this.peers.size >= this.init.limits.maxPeers + 10) return peer.close('too many peers for this torrent');
    peer.peerId = peerId;
    peer.setTorrent(this.metainfo.pieceCount, this.maxFrame);
    peer.events = { message: (p, m) => this.onMessage(p, m), close: (p, r) => this.onClose(p, r) };
    this.peers.add(peer);
    if (this.store.have.count() > 0) peer.send(encodeBitfield(this.store.have.bytes));
    this.log.debug({ peer: peer.label, incoming: !peer.outgoing }, 'peer connected');
    this.emit('peer-added', peer);
  }

  private onClose(peer: Peer, reason: string): void {
    if (!this.peers.delete(peer)) return;
    const c = peer.outgoing ? this.candidates.get(peer.label) : undefined;
    if (c) c.nextTry = Date.now() + 5_000;
    this.picker?.release(peer);
    this.picker?.removeAvailability(peer.bitfield);
    if (!peer.amChoking) this.choker.freed(this.peers, (p) => this.unchoke(p));
    this.log.debug({ peer: peer.label, reason }, 'peer disconnected');
    this.emit('peer-removed', peer, reason);
    // Blocks it held are orphans now: let the others take them at once.
    for (const p of this.peers) this.request(p);
  }

  /** A remote peer broke the protocol: log it, close that connection, carry on. */
  private violation(peer: Peer, why: string): void {
    this.log.warn({ peer: peer.label, torrent: this.metainfo.name }, `closing peer: ${why}`);
    peer.close(why);
  }

  // ---- messages -------------------------------------------------------------------------

  private onMessage(peer: Peer, msg: WireMessage): void {
    switch (msg.type) {
      case 'piece':
        return this.onBlock(peer, msg.index, msg.begin, msg.block);
      case 'request':
        return this.onRequest(peer, msg.index, msg.begin, msg.length);
      case 'have': {
        if (msg.index >= this.metainfo.pieceCount) return this.violation(peer, `have for piece ${msg.index} out of range`);
        if (!peer.bitfield.set(msg.index)) return;
        this.picker?.addHave(msg.index);
        if (peer.bitfield.complete()) this.emit('peer-complete', peer);
        if (this.picker?.isNeeded(msg.index)) this.interested(peer);
        return;
      }
      case 'bitfield': {
        const bits = Bitfield.fromWire(this.metainfo.pieceCount, msg.bits);
        if (!bits) return this.violation(peer, 'malformed bitfield');
        // BEP 3 sends it once, first; aria2c sends it again later instead of HAVEs. A later
        // one replaces the earlier (setBitfield swaps the availability counts), so accept it.
        return this.setBitfield(peer, bits);
      }
      case 'have-all':
        return this.setBitfield(peer, Bitfield.full(this.metainfo.pieceCount));
      case 'have-none':
        return;
      case 'choke':
        peer.peerChoking = true;
        this.picker?.release(peer);
        for (const p of this.peers) if (p !== peer) this.request(p);
        return;
      case 'unchoke':
        peer.peerChoking = false;
        peer.lastBlockAt = Date.now();
        return this.request(peer);
      case 'interested':
        peer.peerInterested = true;
        if (peer.amChoking && this.choker.hasSlot(this.peers)) this.unchoke(peer);
        return;
      case 'not-interested':
        peer.peerInterested = false;
        if (!peer.amChoking) {
          this.choke(peer);
          this.choker.freed(this.peers, (p) => this.unchoke(p));
        }
        return;
      case 'cancel': {
        const i = peer.uploads.findIndex((r) => r.index === msg.index && r.begin === msg.begin && r.length === msg.length);
        if (i >= 0) peer.uploads.splice(i, 1);
        return;
      }
      case 'reject':
        return;
      case 'handshake':
        return this.violation(peer, 'second handshake');
      default:
        return; // keep-alive, port, suggest, allowed-fast, extended, unknown ids: nothing to do
    }
  }

  private setBitfield(peer: Peer, bits: Bitfield): void {
    this.picker?.removeAvailability(peer.bitfield);
    peer.bitfield = bits;
    this.picker?.addAvailability(bits);
    if (bits.complete()) this.emit('peer-complete', peer);
    if (this.seeding && bits.complete()) return peer.close('both sides are seeds');
    if (this.picker?.interesting(peer)) this.interested(peer);
  }

  private interested(peer: Peer): void {
    if (peer.amInterested) return;
    peer.amInterested = true;
    peer.send(INTERESTED);
  }

  // ---- download -------------------------------------------------------------------------

  private startPicking(): void {
    const pool = (this.store as PartFile).pool;
    this.picker = new PiecePicker(this.metainfo, this.store.have, () => pool.acquire());
  }

  /** Top up the requests in flight to `peer`. */
  private request(peer: Peer): void {
    const picker = this.picker;
    if (!picker || peer.peerChoking || !peer.amInterested || peer.closed) return;
    // Top up in batches: each write to a loopback socket costs a syscall and a wake-up of the other side.
    const room = peer.queueDepth - peer.requested.size;
    if (room < Math.max(Math.min(16, peer.queueDepth / 2), peer.queueDepth / 4)) return;
    const maxOwned = Math.ceil((peer.queueDepth * BLOCK_LENGTH) / this.metainfo.pieceLength) + 1;
    const wasIdle = peer.requested.size === 0;
    const reqs = picker.pick(peer, room, maxOwned);
    if (reqs.length === 0) return;
    if (wasIdle) peer.lastBlockAt = Date.now();
    peer.send(encodeRequests(reqs));
  }

  private onBlock(peer: Peer, index: number, begin: number, block: Buffer): void {
    const picker = this.picker;
    peer.down.add(block.length);
    this.down.add(block.length);
    this.init.totals?.down.add(block.length);
    this.stats.downloaded += block.length;
    if (!picker) return; // we are a seed now: a late block is only waste
    const result = picker.received(peer, index, begin, block);
    if (result === 'bad') return this.violation(peer, `block ${index}/${begin}+${block.length} does not fit the torrent`);
    peer.lastBlockAt = Date.now();
    if (result === 'dup') {
      this.stats.wasted += block.length;
    } else {
      if (picker.endgame) this.cancelDuplicates(peer, index, begin, block.length, picker.blocksPerPiece);
      if (result) this.verify(result);
    }
    this.request(peer);
  }

  private cancelDuplicates(from: Peer, index: number, begin: number, length: number, bpp: number): void {
    const key = index * bpp + begin / BLOCK_LENGTH;
    for (const p of this.peers) {
      if (p !== from && p.requested.delete(key)) p.send(encodeCancel(index, begin, length));
    }
  }

  /**
   * Hash a completed piece off the event loop (its buffer is lent to the hash worker and
   * comes back with the digest), write it at its offset, and only then list it as
   * verified and announce it with HAVE.
   */
  private verify(ap: ActivePiece): void {
    const part = this.store as PartFile;
    let buffer = ap.buffer;
    this.verifying++;
    this.init.hasher
      .lend(buffer, ap.size)
      .then(async ({ digest, buf }) => {
        buffer = buf;
        if (this.stopped) return;
        const expected = this.metainfo.pieces.subarray(ap.index * 20, ap.index * 20 + 20);
        if (!digest.equals(expected)) return this.hashFailed(ap);
        await part.writePiece(ap.index, buf.subarray(0, ap.size));
        if (this.stopped) return;
        part.markVerified(ap.index);
        this.picker?.verified(ap.index);
        this.stats.fetched += ap.size;
        const have = encodeHave(ap.index);
        for (const p of this.peers) if (!p.bitfield.get(ap.index)) p.send(have);
        this.emit('piece', ap.index);
        if (part.have.complete()) await this.finish(part);
      })
      .catch((err: Error) => {
        if (this.stopped) return;
        this.log.error({ torrent: this.metainfo.name, err: err.message }, 'could not verify or store a piece: stopping this download');
        this.emit('error', err);
        void this.stop();
      })
      .finally(() => {
        this.verifying--;
        part.pool.release(buffer);
        for (const p of this.peers) this.request(p);
      });
  }

  private hashFailed(ap: ActivePiece): void {
    this.stats.hashFailures++;
    this.stats.wasted += ap.size;
    this.picker?.failed(ap.index);
    if (ap.contributors.size === 1) {
      const [peer] = ap.contributors as Set<Peer>;
      if (peer!.closed) return;
      peer!.strikes++;
      this.log.warn({ peer: peer!.label, piece: ap.index, strikes: peer!.strikes }, 'piece failed its hash check: peer sent corrupt data');
      if (peer!.strikes >= this.init.limits.maxStrikes) {
        if (peer!.peerId) this.banned.add(peer!.peerId.toString('hex'));
        this.banned.add(peer!.label);
        this.violation(peer!, `sent ${peer!.strikes} corrupt pieces: banned`);
      }
    } else {
      this.log.warn({ piece: ap.index, peers: ap.contributors.size }, 'piece failed its hash check; fetching it again from a single peer');
    }
  }

  private async finish(part: PartFile): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    const path = await part.finish();
    this.store = await SeedStore.open(path, this.metainfo);
    this.picker = null;
    for (const p of [...this.peers]) {
      if (p.bitfield.complete()) p.close('download complete: both sides are seeds');
      else if (p.amInterested) {
        p.amInterested = false;
        p.send(NOT_INTERESTED);
      }
    }
    this.log.info({ file: this.metainfo.name, path }, 'download complete and verified');
    this.emit('done', path);
  }

  // ---- upload ---------------------------------------------------------------------------

  private onRequest(peer: Peer, index: number, begin: number, length: number): void {
    const m = this.metainfo;
    if (index >= m.pieceCount) return this.violation(peer, `request for piece ${index} out of range`);
    if (length === 0 || length > MAX_REQUEST_LENGTH || begin + length > pieceSize(m, index))
      return this.violation(peer, `request ${index}/${begin}+${length} outside the piece`);
    if (!this.store.have.get(index)) return this.violation(peer, `request for piece ${index}, which we never announced`);
    if (peer.amChoking) return; // BEP 3: requests while choked are dropped
    if (peer.uploads.length >= this.init.limits.maxQueuedUploads) return this.violation(peer, 'too many queued requests');
    peer.uploads.push({ index, begin, length });
    this.store.reader.prefetch(index);
    void this.pump(peer);
  }

  private pump(peer: Peer): Promise<void> {
    return serveUploads(peer, this.uploads);
  }

  private unchoke(peer: Peer): void {
    if (!peer.amChoking) return;
    peer.amChoking = false;
    peer.send(UNCHOKE);
  }

  private choke(peer: Peer): void {
    if (peer.amChoking) return;
    peer.amChoking = true;
    peer.uploads.length = 0;
    peer.send(CHOKE);
  }

  // ---- periodic -------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now();
    const limits = this.init.limits;
    for (const peer of [...this.peers]) {
      peer.tick(now);
      if (peer.closed) continue;
      if (this.picker && peer.requested.size > 0 && now - peer.lastBlockAt > limits.requestTimeoutMs) {
        peer.stalls++;
        this.log.warn({ peer: peer.label, outstanding: peer.requested.size, stalls: peer.stalls }, `peer sent nothing for ${limits.requestTimeoutMs} ms: re-asking its blocks elsewhere`);
        this.picker.release(peer);
        peer.queueDepth = 4;
        if (peer.stalls >= limits.maxStalls) {
          this.violation(peer, `stalled ${peer.stalls} times`);
          continue;
        }
        for (const p of this.peers) if (p !== peer) this.request(p);
        continue;
      }
      // Keep enough in flight to cover about half a second at this peer's current rate.
      const want = Math.ceil((peer.down.rate() * 0.5) / BLOCK_LENGTH);
      peer.queueDepth = Math.max(peer.stalls > 0 ? 4 : 64, Math.min(limits.maxQueueDepth, Math.max(want, peer.queueDepth)));
      if (this.picker && peer.amInterested && peer.requested.size === 0 && !this.picker.interesting(peer)) {
        peer.amInterested = false;
        peer.send(NOT_INTERESTED);
      }
      this.request(peer);
    }
    this.choker.tick(now, this.peers, (p) => this.unchoke(p), (p) => this.choke(p));
    this.dialCandidates();
  }
}
