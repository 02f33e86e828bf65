import { BLOCK_LENGTH, CHOKE, INTERESTED, NOT_INTERESTED, UNCHOKE, encodeAllowedFast, encodeRequests, encodeReject } from '../wire/peer-wire.js';
import { featuresOf, type ExtendedHandshake, type PeerFeatures } from '../wire/extension.js';
import { Bitfield } from '../wire/bitfield.js';
import type { Logger } from '../util/log.js';
import type { PieceReader } from '../storage/piece-reader.js';
import type { UploadMemory } from '../storage/upload-memory.js';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import type { Hello, Peer } from './peer.js';
import type { PickerPeer, PiecePicker } from './picker.js';
import { MAX_ALLOWED_FAST } from './allowed-fast.js';
import type { ChokerPeer } from './choker.js';
import { RateLimiter, RateMeter } from './rate.js';
import { Uploads, type UploadRequest } from './uploads.js';

/** Requests kept in flight to a new peer, and the floor for one that never stalled. */
export const INITIAL_QUEUE_DEPTH = 128;
const MIN_QUEUE_DEPTH = 64;
/** Depth for a peer that stalled: it has to earn a deeper queue again. */
const STALLED_QUEUE_DEPTH = 4;
/** Keep enough in flight to cover this long at the peer's current rate. */
const QUEUE_SECONDS = 0.5;
/** Of a piece in its allowed-fast set, a peer we choke is served this many times the piece at most (once, and once again after a failed hash). */
const FAST_SERVED_SHARE = 2;
/** Pieces a peer suggested (BEP 6) that we keep as hints, newest first (libtorrent keeps 16 too). */
export const MAX_SUGGESTED = 16;

export interface PeerSessionInit {
  peer: Peer;
  hello: Hello;
  metainfo: Metainfo;
  /** The torrent's store reader now (it changes when a download finishes). */
  reader(): PieceReader;
  limiter: RateLimiter;
  /** The node's memory for uploads (what this peer's socket holds is counted there). */
  memory: UploadMemory;
  log: Logger;
  /** Payload bytes sent to this peer, for the torrent's and the node's totals. */
  sent(bytes: number): void;
}

/**
 * One peer of one torrent: what it has, the four choke and interest flags, our request
 * pipeline to it (how deep, when a block last came, how often it stalled or sent corrupt
 * data), the requests it queued with us, and its counters. Only this class changes that
 * state; the torrent, the choker and the upload pump go through its methods. Which blocks
 * are asked of it is the picker's (the sole owner of request state); the bytes on the wire
 * are the transport's (`Peer`).
 */
export class PeerSession implements PickerPeer, ChokerPeer {
  readonly peer: Peer;
  readonly peerId: Buffer;
  /** What its handshake says it speaks (we speak the extension protocol and the fast extension). */
  readonly features: PeerFeatures;
  readonly down = new RateMeter();
  readonly up = new RateMeter();
  private bits: Bitfield;
  private choking = true;
  private interestedInIt = false;
  private chokedByIt = true;
  private itIsInterested = false;
  private strikeCount = 0;
  private stallCount = 0;
  /** When a requested block last arrived (or requests were last (re)started). */
  private lastBlockAt = Date.now();
  private depth = INITIAL_QUEUE_DEPTH;
  private readonly uploads: Uploads;
  /** Its extended handshake (BEP 10), once it sent one. */
  private extended: ExtendedHandshake | null = null;
  /** Metadata pieces (BEP 9) it asked us for. */
  private metadataAsks = 0;
  /** Blocks it sent that nobody asked it for. */
  private unrequested = 0;
  private readonly metainfo: Metainfo;
  /** Its canonical allowed-fast set (BEP 6) once we offered it; its pieces we lacked then are offered as they are verified. */
  private fastSet: ReadonlySet<number> | null = null;
  /** The pieces of that set we told it of: it may download them while we choke it. */
  private readonly fastGranted = new Set<number>();
  /** Bytes of each of those pieces it asked for while choked. */
  private readonly fastServed = new Map<number, number>();
  /** Pieces it lets us download while it chokes us (its allowed-fast messages), at most MAX_ALLOWED_FAST. */
  private readonly fastFromIt = new Set<number>();
  /** Pieces it suggested, newest first, at most MAX_SUGGESTED. */
  private suggestions: number[] = [];

  constructor(init: PeerSessionInit) {
    this.peer = init.peer;
    this.peerId = init.hello.peerId;
    this.features = featuresOf(init.hello.reserved);
    this.bits = new Bitfield(init.metainfo.pieceCount);
    this.metainfo = init.metainfo;
    this.uploads = new Uploads({
      peer: init.peer,
      metainfo: init.metainfo,
      reader: init.reader,
      limiter: init.limiter,
      memory: init.memory,
      log: init.log,
      allowed: (r) => !this.choking || this.fastGranted.has(r.index),
      refused: (r) => this.reject(r),
      sent: (n) => {
        this.up.add(n);
        init.sent(n);
      },
    });
  }

  get bitfield(): Bitfield {
    return this.bits;
  }
  get label(): string {
    return this.peer.label;
  }
  get closed(): boolean {
    return this.peer.closed;
  }
  get outgoing(): boolean {
    return this.peer.outgoing;
  }
  /** We choke it: it may not download from us. */
  get amChoking(): boolean {
    return this.choking;
  }
  /** We told it we want something it has. */
  get amInterested(): boolean {
    return this.interestedInIt;
  }
  /** It chokes us: asking it for blocks is pointless. */
  get peerChoking(): boolean {
    return this.chokedByIt;
  }
  get peerInterested(): boolean {
    return this.itIsInterested;
  }
  /** Pieces it alone sent that failed their hash. */
  get strikes(): number {
    return this.strikeCount;
  }
  /** Times its requests timed out. */
  get stalls(): number {
    return this.stallCount;
  }
  get queueDepth(): number {
    return this.depth;
  }
  get queuedUploads(): number {
    return this.uploads.length;
  }
  /** Bytes of upload memory its socket keeps alive now. */
  get uploadHolding(): number {
    return this.uploads.holding;
  }
  /** Both sides speak the fast extension (BEP 6): have-all/none, and explicit rejects. */
  get fast(): boolean {
    return this.features.fast;
  }

  /** The address its connection comes from: an IP, also when we dialled it by name. */
  get remoteAddress(): string {
    return (this.peer.socket as { remoteAddress?: string }).remoteAddress ?? this.peer.address;
  }

  /** The id it wants `name` messages sent with (its extended handshake), or undefined. */
  extensionId(name: string): number | undefined {
    const id = this.extended?.m.get(name);
    return id === undefined || id === 0 ? undefined : id;
  }

  /** The client it says it is (extended handshake `v`), if it said. */
  get clientVersion(): string | undefined {
    return this.extended?.v;
  }

  /** Where it takes connections: the port we dialled, or the one its extended handshake names (`p`). */
  get listenPort(): number | undefined {
    return this.outgoing ? this.peer.port : this.extended?.port;
  }

  /** How many requests it says it queues (`reqq`), if it said. */
  get reqq(): number | undefined {
    return this.extended?.reqq;
  }

  downloadRate(): number {
    return this.down.rate();
  }
  uploadRate(): number {
    return this.up.rate();
  }

  send(buf: Buffer): boolean {
    return this.peer.send(buf);
  }

  close(reason: string): void {
    this.peer.close(reason);
  }

  // ---- what it tells us ---------------------------------------------------------------

  /** Its bitfield (BEP 3: once, first; aria2c sends it again later instead of HAVEs). Returns the one it replaces. */
  replaceBitfield(bits: Bitfield): Bitfield {
    const old = this.bits;
    this.bits = bits;
    return old;
  }

  /** A HAVE: true when the piece is new to us. */
  has(index: number): boolean {
    return this.bits.set(index);
  }

  setPeerChoking(choking: boolean): void {
    this.chokedByIt = choking;
    if (!choking) this.lastBlockAt = Date.now();
  }

  setPeerInterested(interested: boolean): void {
    this.itIsInterested = interested;
  }

  /** Its extended handshake; a later one updates the earlier (BEP 10 allows it). */
  setExtended(h: ExtendedHandshake): void {
    this.extended = this.extended ? { ...this.extended, ...h, m: new Map([...this.extended.m, ...h.m]) } : h;
  }

  /** Allowed fast (BEP 6): it lets us download `index` while it chokes us. False when its set is full (ignored then). */
  allowFast(index: number): boolean {
    if (this.fastFromIt.has(index)) return true;
    if (this.fastFromIt.size >= MAX_ALLOWED_FAST) return false;
    this.fastFromIt.add(index);
    return true;
  }

  /** May we ask it for `index` while it chokes us? */
  allowsFast(index: number): boolean {
    return this.fastFromIt.has(index);
  }

  /** Its allowed-fast pieces, for the picker while it chokes us. */
  get allowedFast(): ReadonlySet<number> {
    return this.fastFromIt;
  }

  /** It rejected a request for `index` while choking us: that piece is no longer allowed fast (libtorrent does the same). */
  withdrawFast(index: number): void {
    this.fastFromIt.delete(index);
  }

  /** It suggested piece `index` (BEP 6): a hint for what to ask it for first, the newest first. */
  suggest(index: number): void {
    const list = this.suggestions.filter((i) => i !== index);
    list.unshift(index);
    if (list.length > MAX_SUGGESTED) list.length = MAX_SUGGESTED;
    this.suggestions = list;
  }

  /** The pieces it suggested, newest first. */
  get suggested(): readonly number[] {
    return this.suggestions;
  }

  /** It asked for a metadata piece: true while it stays within `budget` asks on this connection. */
  askedMetadata(budget: number): boolean {
    return ++this.metadataAsks <= budget;
  }

  // ---- what we tell it ------------------------------------------------------------------

  /** Say INTERESTED or NOT_INTERESTED, once per change. */
  setInterested(yes: boolean): void {
    if (this.interestedInIt === yes) return;
    this.interestedInIt = yes;
    this.send(yes ? INTERESTED : NOT_INTERESTED);
  }

  unchoke(): void {
    if (!this.choking) return;
    this.choking = false;
    this.send(UNCHOKE);
  }

  /**
   * Choke it; what it queued with us is dropped (BEP 3), each one rejected if it speaks the
   * fast extension (BEP 6), but for its requests of allowed-fast pieces, which are still served.
   */
  choke(): void {
    if (this.choking) return;
    this.choking = true;
    const dropped = this.uploads.clear((r) => this.fastGranted.has(r.index));
    this.send(CHOKE);
    if (this.fast && dropped.length > 0) this.send(Buffer.concat(dropped.map((r) => encodeReject(r.index, r.begin, r.length))));
  }

  /** Did we offer it its allowed-fast set already? */
  get offeredFast(): boolean {
    return this.fastSet !== null;
  }

  /**
   * Allowed fast (BEP 6): tell it the pieces of its canonical `set` that we have and it lacks;
   * it may download those while we choke it. The rest of the set is offered as we verify it.
   */
  offerAllowedFast(set: readonly number[], have: Bitfield): void {
    if (this.fastSet) return;
    this.fastSet = new Set(set);
    const out: Buffer[] = [];
    for (const i of set) {
      if (!have.get(i) || this.bits.get(i)) continue;
      this.fastGranted.add(i);
      out.push(encodeAllowedFast(i));
    }
    if (out.length > 0) this.send(Buffer.concat(out));
  }

  /** We verified piece `index`: offer it if it is in its allowed-fast set, and it is no longer a piece to ask it for. */
  weVerified(index: number): void {
    this.fastFromIt.delete(index);
    if (this.suggestions.includes(index)) this.suggestions = this.suggestions.filter((i) => i !== index);
    if (!this.fastSet?.has(index) || this.fastGranted.has(index) || this.bits.get(index)) return;
    this.fastGranted.add(index);
    this.send(encodeAllowedFast(index));
  }

  /**
   * It asks for `length` bytes of `index` while we choke it: true (and counted) when the piece
   * is in the allowed-fast set we told it of and it stays within FAST_SERVED_SHARE of the piece.
   */
  takeChokedRequest(index: number, length: number): boolean {
    if (!this.fastGranted.has(index)) return false;
    const served = (this.fastServed.get(index) ?? 0) + length;
    if (served > FAST_SERVED_SHARE * pieceSize(this.metainfo, index)) return false;
    this.fastServed.set(index, served);
    return true;
  }

  /** Say no to one request (BEP 6); without the fast extension a dropped request is simply never answered. */
  reject(r: UploadRequest): void {
    if (this.fast) this.send(encodeReject(r.index, r.begin, r.length));
  }

  // ---- our requests to it ---------------------------------------------------------------

  /**
   * Top up the requests in flight to it, in batches: each write to a loopback socket costs a
   * syscall and a wake-up of the other side.
   */
  requestMore(picker: PiecePicker, pieceLength: number): void {
    if (!this.interestedInIt || this.closed) return;
    // Choked, only its allowed-fast pieces may be asked for (BEP 6).
    if (this.chokedByIt && this.fastFromIt.size === 0) return;
    const outstanding = picker.outstanding(this);
    const room = this.depth - outstanding;
    if (room < Math.max(Math.min(16, this.depth / 2), this.depth / 4)) return;
    const maxOwned = Math.ceil((this.depth * BLOCK_LENGTH) / pieceLength) + 1;
    const fast = this.fastFromIt;
    const reqs = picker.pick(this, room, maxOwned, { only: this.chokedByIt ? (i) => fast.has(i) : undefined, prefer: this.suggestions });
    if (reqs.length === 0) return;
    if (outstanding === 0) this.lastBlockAt = Date.now();
    this.send(encodeRequests(reqs));
  }

  /** A block it sent arrived (whatever it turns out to be worth). */
  received(bytes: number): void {
    this.down.add(bytes);
  }

  /** A requested block arrived and fit: the pipeline moves. */
  progressed(): void {
    this.lastBlockAt = Date.now();
  }

  /**
   * It has had requests outstanding and sent nothing for `timeoutMs`: count a stall and start
   * it over with a shallow queue. True when it stalled just now.
   */
  checkStall(now: number, outstanding: number, timeoutMs: number): boolean {
    if (outstanding === 0 || now - this.lastBlockAt <= timeoutMs) return false;
    this.stallCount++;
    this.depth = STALLED_QUEUE_DEPTH;
    return true;
  }

  /** Keep about QUEUE_SECONDS of its current rate in flight, within bounds (and within the queue it says it has). */
  adjustDepth(maxDepth: number): void {
    if (this.extended?.reqq !== undefined) maxDepth = Math.min(maxDepth, this.extended.reqq);
    const want = Math.ceil((this.down.rate() * QUEUE_SECONDS) / BLOCK_LENGTH);
    const floor = this.stallCount > 0 ? STALLED_QUEUE_DEPTH : MIN_QUEUE_DEPTH;
    this.depth = Math.max(floor, Math.min(maxDepth, Math.max(want, this.depth)));
  }

  /** It sent a block we never asked it for; returns how many so far. */
  unrequestedBlock(): number {
    return ++this.unrequested;
  }

  /** A piece it alone sent failed its hash; returns the strikes so far. */
  strike(): number {
    return ++this.strikeCount;
  }

  // ---- its requests to us ---------------------------------------------------------------

  /** Queue a request; true when it asks again for a block it was already sent (its hash check may have failed). */
  queueUpload(r: UploadRequest): boolean {
    return this.uploads.add(r);
  }

  /** It has held upload memory for `ms` without reading any of it. */
  uploadStalled(now: number, ms: number): boolean {
    return this.uploads.stalled(now, ms);
  }

  cancelUpload(index: number, begin: number, length: number): void {
    this.uploads.cancel(index, begin, length);
  }

  serveUploads(): void {
    this.uploads.schedule();
  }
}
