import { EventEmitter } from 'node:events';
import { type WireMessage, encodeHandshake, encodeBitfield, encodeHave, maxFrameFor, HAVE_ALL, HAVE_NONE } from '../wire/peer-wire.js';
import { reservedBytes } from '../wire/extension.js';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import { isPieceWriter, type PieceStore, type PieceWriter } from '../storage/stores.js';
import type { Hasher } from '../storage/part-file.js';
import { UploadMemory } from '../storage/upload-memory.js';
import { DEFAULT_PEER_TIMEOUTS, type Hello, type Peer, type PeerTimeouts } from './peer.js';
import { PeerSession } from './peer-session.js';
import { Connections, type TransportPolicy } from './connections.js';
import { RateLimiter, RateMeter } from './rate.js';
import { Choker } from './choker.js';
import { peerStat, wantedCounts, type PeerStat, type TorrentStats } from './stats.js';
import { INCOMING_SLACK, type SwarmLimits } from './limits.js';
import { Fetcher } from './fetcher.js';
import { badRequest } from './uploads.js';
import { greet, onExtended, type ExtensionContext } from './extensions.js';
import { PeerExchange } from './pex.js';
import { allowedFastSet } from './allowed-fast.js';

export type { PeerStat, TorrentStats } from './stats.js';
export { DEFAULT_SWARM_LIMITS, type SwarmLimits } from './limits.js';

export interface TorrentInit {
  metainfo: Metainfo;
  /** A seed's store, or a download's (a PieceWriter: verified pieces are written there). */
  store: PieceStore | PieceWriter;
  peerId: Buffer;
  hasher: Hasher;
  logger: Logger;
  limits: SwarmLimits;
  timeouts?: PeerTimeouts;
  transport?: TransportPolicy;
  uploadLimiter: RateLimiter;
  /** The node's memory for uploads; a torrent of its own gets a private one. */
  uploadMemory?: UploadMemory;
  /** Node-wide meters every torrent also counts its payload bytes in. */
  totals?: { down: RateMeter; up: RateMeter };
  /** Start paused: no dialing, incoming peers refused, until `resume()`. */
  paused?: boolean;
  /** Our listening port (told to peers, so that they can pass us on). */
  port?: () => number;
}

export interface TorrentEvents {
  piece: [index: number];
  /** Every piece is verified and written: the owner finishes the file and calls `seedFrom`. */
  complete: [];
  error: [err: Error];
  /** A verified piece could not be written for want of space: the torrent paused itself (its owner resumes it). */
  'disk-full': [err: Error];
  'peer-added': [peer: PeerSession];
  'peer-removed': [peer: PeerSession, reason: string];
  /** A peer showed it has every piece (a seed of this torrent). */
  'peer-complete': [peer: PeerSession];
}

/**
 * One torrent on this node: a shared file being seeded, or a download that seeds what it has
 * verified. The coordinator: peers arrive both ways (Connections dials candidates; the peer
 * server hands over incoming connections after their handshake) and become PeerSessions;
 * messages are dispatched here; the picker decides what to ask; every piece is hashed off the
 * event loop before it counts, written, announced with HAVE; the choker decides whom we serve.
 */
export class Torrent extends EventEmitter<TorrentEvents> {
  readonly metainfo: Metainfo;
  readonly peers = new Set<PeerSession>();
  private store: PieceStore;
  /** The download side; null once every piece is here (and for a seed). */
  private fetcher: Fetcher | null = null;
  private readonly choker: Choker<PeerSession>;
  private readonly connections: Connections;
  private readonly down = new RateMeter();
  private readonly up = new RateMeter();
  private timer: NodeJS.Timeout | null = null;
  /** Connected, dialling and serving; paused keeps the store open but every connection closed; stopped is final. */
  private mode: 'running' | 'paused' | 'stopped';
  private stats = { downloaded: 0, uploaded: 0, fetched: 0, wasted: 0, hashFailures: 0 };
  private readonly handshake: Buffer;
  private readonly maxFrame: number;
  private readonly extensions: ExtensionContext;
  private readonly memory: UploadMemory;

  constructor(private readonly init: TorrentInit) {
    super();
    this.memory = init.uploadMemory ?? new UploadMemory();
    this.metainfo = init.metainfo;
    this.store = init.store;
    this.mode = init.paused ? 'paused' : 'running';
    this.handshake = encodeHandshake(this.metainfo.infoHash, init.peerId, reservedBytes());
    this.maxFrame = maxFrameFor(this.metainfo.pieceCount);
    this.extensions = {
      metainfo: this.metainfo,
      reqq: init.limits.maxQueuedUploads,
      pex: this.metainfo.private ? null : new PeerExchange(init.limits.pexIntervalMs),
      learned: (peers) => this.addPeers(peers),
      port: () => init.port?.(),
      violation: (p, why) => this.violation(p, why),
    };
    this.choker = new Choker(init.limits.uploadSlots, () => this.seeding);
    this.connections = new Connections({
      infoHash: this.metainfo.infoHash,
      handshake: this.handshake,
      maxPeers: init.limits.maxPeers,
      connectTimeoutMs: init.limits.connectTimeoutMs,
      timeouts: init.timeouts ?? DEFAULT_PEER_TIMEOUTS,
      transport: init.transport,
      log: init.logger,
      connected: () => this.peers.size,
      isConnected: (host, port) => [...this.peers].some((p) => p.outgoing && p.peer.address === host && p.peer.port === port),
      established: (peer, hello) => this.attach(peer, hello),
    });
    if (isPieceWriter(init.store) && !init.store.done()) this.fetcher = this.fetcherFor(init.store);
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /** Checked again after every await: stop() may have run meanwhile. */
  private get stopped(): boolean {
    return this.mode === 'stopped';
  }

  get seeding(): boolean {
    return this.store.have.complete();
  }

  /** Verified pieces, live: for reading only. */
  get have(): Bitfield {
    return this.store.have;
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
      ...wantedCounts(this.store, m.pieceCount),
      ...this.stats,
      downloadRate: this.down.rate(),
      uploadRate: this.up.rate(),
      peers: this.peers.size,
      seeding: this.seeding,
    };
  }

  /** Every connected peer with its counters. */
  peerStats(): PeerStat[] {
    return [...this.peers].map((p) => peerStat(p, this.metainfo.pieceCount));
  }

  /** Peers to dial (and redial with back-off if they drop while we still need pieces). */
  addPeers(list: Iterable<{ host: string; port: number }>): void {
    this.connections.add(list);
    this.dial();
  }

  /** Stop moving bytes, keep what is needed to go on (store, pieces in progress): no connection, no dialing. */
  pause(): void {
    if (this.mode !== 'running') return;
    this.mode = 'paused';
    for (const p of [...this.peers]) p.close('download paused');
  }

  /** Go on after `pause()`: every known candidate is dialled again at once. */
  resume(): void {
    if (this.mode !== 'paused') return;
    this.mode = 'running';
    this.connections.resetBackoff();
    this.dial();
  }

  /** Streaming: fetch the pieces from `index` on before rarest-first, and ask for them now. */
  prioritize(index: number, count?: number): void {
    this.fetcher?.prioritize(index, count);
  }

  /** The download's selection of files changed (its writer's `wanted`): fetch what it wants now. */
  wantedChanged(): void {
    if (this.fetcher) return this.fetcher.reselect();
    if (isPieceWriter(this.store) && !this.store.done() && !this.stopped) this.fetcher = this.fetcherFor(this.store);
  }

  /** An incoming connection whose handshake named this torrent. */
  accept(peer: Peer, hello: Hello, early: WireMessage[] = []): void {
    peer.send(this.handshake);
    const session = this.attach(peer, hello);
    // Messages that arrived while the server looked this torrent up.
    if (session) for (const m of early) if (this.peers.has(session) && !session.closed) this.onMessage(session, m);
  }

  /** The download is complete and in its final place: serve from `store`, want nothing more, let seeds go. */
  seedFrom(store: PieceStore): void {
    // A download of some files keeps fewer pieces than it announced: peers must hear it anew.
    const fewer = store.have.count() < this.store.have.count();
    this.store = store;
    this.fetcher = null;
    for (const p of [...this.peers]) {
      if (fewer) p.close('download of some files complete: reconnect to learn the pieces kept');
      else if (p.bitfield.complete() && this.seeding) p.close('download complete: both sides are seeds');
      else p.setInterested(false);
    }
  }

  async stop(): Promise<void> {
    if (this.mode === 'stopped') return;
    this.mode = 'stopped';
    if (this.timer) clearInterval(this.timer);
    this.connections.stop();
    for (const p of [...this.peers]) p.close('torrent stopped');
    await this.store.close();
  }

  // ---- connections ----------------------------------------------------------------------

  /** Seeds dial too: a client that waits to be dialled (many do) is served only so. */
  private dial(): void {
    if (this.mode === 'running') this.connections.dial();
  }

  /** Why a peer that completed its handshake is turned away, or null to take it. */
  private refusal(peer: Peer, peerId: Buffer): string | null {
    if (peerId.equals(this.init.peerId)) return 'connected to ourselves';
    if (this.connections.isBanned(peer, peerId)) return 'banned peer';
    if (this.mode === 'stopped') return 'torrent stopped';
    if (this.mode === 'paused') return 'download paused';
    for (const other of this.peers) if (other.peerId.equals(peerId)) return 'duplicate connection';
    if (this.peers.size >= this.init.limits.maxPeers + INCOMING_SLACK) return 'too many peers for this torrent';
    return null;
  }

  private attach(peer: Peer, hello: Hello): PeerSession | null {
    peer.established(this.maxFrame);
    const refused = this.refusal(peer, hello.peerId);
    if (refused) {
      peer.close(refused);
      return null;
    }
    const session = new PeerSession({
      peer,
      hello,
      metainfo: this.metainfo,
      reader: () => this.store.reader,
      limiter: this.init.uploadLimiter,
      memory: this.memory,
      log: this.log,
      sent: (n) => {
        this.up.add(n);
        this.init.totals?.up.add(n);
        this.stats.uploaded += n;
      },
    });
    peer.events = { message: (_p, m) => this.onMessage(session, m), close: (_p, r) => this.onClose(session, r) };
    this.peers.add(session);
    greet(session, this.extensions);
    const have = this.store.have;
    if (session.fast && have.complete()) session.send(HAVE_ALL);
    else if (session.fast && have.count() === 0) session.send(HAVE_NONE);
    else if (have.count() > 0) session.send(encodeBitfield(have.bytes));
    this.log.debug({ peer: session.label, incoming: !peer.outgoing, transport: peer.transport, encryption: peer.encryption }, 'peer connected');
    this.emit('peer-added', session);
    return session;
  }

  private onClose(session: PeerSession, reason: string): void {
    if (!this.peers.delete(session)) return;
    this.connections.closed(session.peer, this.seeding && session.bitfield.complete());
    if (!session.amChoking) this.choker.freed(this.peers, (p) => p.unchoke());
    this.log.debug({ peer: session.label, reason }, 'peer disconnected');
    this.emit('peer-removed', session, reason);
    this.fetcher?.left(session);
  }

  /** A remote peer broke the protocol: log it, close that connection, carry on. */
  private violation(session: PeerSession, why: string): void {
    this.log.warn({ peer: session.label, torrent: this.metainfo.name }, `closing peer: ${why}`);
    session.close(why);
  }

  // ---- messages -------------------------------------------------------------------------

  private onMessage(session: PeerSession, msg: WireMessage): void {
    switch (msg.type) {
      case 'piece':
        return this.onBlock(session, msg.index, msg.begin, msg.block);
      case 'request':
        return this.onRequest(session, msg.index, msg.begin, msg.length);
      case 'have': {
        if (msg.index >= this.metainfo.pieceCount) return this.violation(session, `have for piece ${msg.index} out of range`);
        if (!session.has(msg.index)) return;
        if (session.bitfield.complete()) this.emit('peer-complete', session);
        return this.fetcher?.sawHave(session, msg.index);
      }
      case 'bitfield': {
        const bits = Bitfield.fromWire(this.metainfo.pieceCount, msg.bits);
        if (!bits) return this.violation(session, 'malformed bitfield');
        // BEP 3 sends it once, first; aria2c sends it again later instead of HAVEs: it replaces the earlier.
        return this.setBitfield(session, bits);
      }
      case 'have-all':
        return this.setBitfield(session, Bitfield.full(this.metainfo.pieceCount));
      case 'choke':
        session.setPeerChoking(true);
        return this.fetcher?.choked(session);
      case 'unchoke':
        session.setPeerChoking(false);
        return this.fetcher?.request(session);
      case 'interested':
        session.setPeerInterested(true);
        // Its allowed-fast set once it wants something (as libtorrent does: it has said what it has by then).
        if (session.fast && !session.offeredFast) this.offerAllowedFast(session);
        if (session.amChoking && this.choker.hasSlot(this.peers)) session.unchoke();
        return;
      case 'not-interested':
        session.setPeerInterested(false);
        if (!session.amChoking) {
          session.choke();
          this.choker.freed(this.peers, (p) => p.unchoke());
        }
        return;
      case 'cancel':
        return session.cancelUpload(msg.index, msg.begin, msg.length);
      case 'reject':
        // Refused while it chokes us: that piece is no longer allowed fast (or we would ask again and again).
        if (session.peerChoking) session.withdrawFast(msg.index);
        return this.fetcher?.rejected(session, msg.index, msg.begin);
      case 'allowed-fast':
        return this.onAllowedFast(session, msg.index);
      case 'suggest':
        if (msg.index >= this.metainfo.pieceCount) return this.violation(session, `suggest for piece ${msg.index} out of range`);
        if (session.fast && !this.store.have.get(msg.index)) session.suggest(msg.index);
        return;
      case 'extended':
        return onExtended(session, msg.id, msg.payload, this.extensions);
      case 'handshake':
        return this.violation(session, 'second handshake');
      default:
        return; // keep-alive, have-none, port, unknown ids: nothing to do
    }
  }

  /** Allowed fast (BEP 6): it lets us download `index` while it chokes us; ask for it at once if we need it. */
  private onAllowedFast(session: PeerSession, index: number): void {
    if (index >= this.metainfo.pieceCount) return this.violation(session, `allowed-fast for piece ${index} out of range`);
    if (!session.fast || this.store.have.get(index)) return;
    if (!session.allowFast(index)) return this.log.debug({ peer: session.label, piece: index }, 'allowed-fast beyond the pieces we keep from one peer: ignored');
    if (session.peerChoking) this.fetcher?.request(session);
  }

  /** Tell a peer its allowed-fast set (the pieces of it we have; the others as we verify them). */
  private offerAllowedFast(session: PeerSession): void {
    const { infoHash, pieceCount } = this.metainfo;
    session.offerAllowedFast(allowedFastSet(session.remoteAddress, infoHash, pieceCount, this.init.limits.allowedFast), this.store.have);
  }

  private setBitfield(session: PeerSession, bits: Bitfield): void {
    const old = session.replaceBitfield(bits);
    if (bits.complete()) this.emit('peer-complete', session);
    if (this.seeding && bits.complete()) return session.close('both sides are seeds');
    this.fetcher?.sawBitfield(session, old, bits);
  }

  // ---- download -------------------------------------------------------------------------

  private onBlock(session: PeerSession, index: number, begin: number, block: Buffer): void {
    session.received(block.length);
    this.down.add(block.length);
    this.init.totals?.down.add(block.length);
    this.stats.downloaded += block.length;
    this.fetcher?.onBlock(session, index, begin, block); // none once a seed: a late block is only waste
  }

  private fetcherFor(writer: PieceWriter): Fetcher {
    return new Fetcher({
      metainfo: this.metainfo,
      writer,
      hasher: this.init.hasher,
      log: this.log,
      limits: this.init.limits,
      peers: () => this.peers,
      stopped: () => this.stopped,
      stats: this.stats,
      violation: (session, why) => this.violation(session, why),
      ban: (session) => this.connections.ban(session.peer, session.peerId),
      verified: (index) => {
        const have = encodeHave(index);
        for (const p of this.peers) {
          if (!p.bitfield.get(index)) p.send(have);
          p.weVerified(index);
        }
        this.emit('piece', index);
      },
      complete: () => {
        this.fetcher = null;
        this.log.info({ file: this.metainfo.name }, 'every wanted piece verified');
        this.emit('complete');
      },
      failed: (err) => {
        this.log.error({ torrent: this.metainfo.name, err: err.message }, 'could not verify or store a piece: stopping this download');
        this.emit('error', err);
        void this.stop();
      },
      diskFull: (err) => {
        // Pieces verified at the same moment fail alike: one pause.
        if (this.mode !== 'running') return;
        this.pause();
        this.emit('disk-full', err);
      },
    });
  }

  // ---- upload ---------------------------------------------------------------------------

  private onRequest(session: PeerSession, index: number, begin: number, length: number): void {
    const bad = badRequest(this.metainfo, this.store.have, index, begin, length);
    if (bad) return this.violation(session, bad);
    // BEP 3: requests while choked are dropped, but for the allowed-fast pieces we told it of
    // (BEP 6, within a bound); beyond the queue we advertise (reqq), too. Either way a peer
    // that speaks the fast extension hears a reject (BEP 6), none is closed.
    if (session.queuedUploads >= this.init.limits.maxQueuedUploads) return session.reject({ index, begin, length });
    if (session.amChoking && !session.takeChokedRequest(index, length)) return session.reject({ index, begin, length });
    // Asked again for a block it had: a downloader does that when the piece failed its hash. Check ours.
    if (session.queueUpload({ index, begin, length }) && this.store.reader.suspect(index))
      this.log.info({ peer: session.label, torrent: this.metainfo.name, piece: index }, 'a peer asked again for a block it was sent: hashing that piece again before serving it');
    session.serveUploads();
  }

  // ---- periodic -------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now();
    for (const session of [...this.peers]) {
      session.peer.tick(now);
      if (!session.closed && session.uploadStalled(now, this.init.limits.sendStallMs)) {
        this.log.warn({ peer: session.label, torrent: this.metainfo.name, holding: session.uploadHolding }, `closing peer: it read none of what we sent for ${this.init.limits.sendStallMs} ms`);
        session.close('does not read what we send');
      }
      if (!session.closed) this.fetcher?.tick(session, now);
      if (!session.closed) this.extensions.pex?.tick(session, this.peers, now);
    }
    this.choker.tick(now, this.peers, (p) => p.unchoke(), (p) => p.choke());
    // The node's upload memory is shared: any torrent's tick lets it close the sockets that hoard it.
    this.memory.relieve(now);
    this.dial();
  }
}
