import { BLOCK_LENGTH, MAX_REQUEST_LENGTH } from '../wire/peer-wire.js';
import type { Bitfield } from '../wire/bitfield.js';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import { ClosedError } from '../util/errors.js';
import { PieceRefusedError, type CachedPiece, type PieceReader } from '../storage/piece-reader.js';
import type { MemoryHolder, UploadMemory } from '../storage/upload-memory.js';
import { SEND_HIGH_WATER, type Peer } from './peer.js';
import type { RateLimiter } from './rate.js';

/** A block a peer asked us for. */
export interface UploadRequest {
  index: number;
  begin: number;
  length: number;
}

/** Why a peer's request breaks the protocol (out of range, too large, a piece we never announced), or null. */
export function badRequest(m: Metainfo, have: Bitfield, index: number, begin: number, length: number): string | null {
  if (index >= m.pieceCount) return `request for piece ${index} out of range`;
  if (length === 0 || length > MAX_REQUEST_LENGTH || begin + length > pieceSize(m, index)) return `request ${index}/${begin}+${length} outside the piece`;
  if (!have.get(index)) return `request for piece ${index}, which we never announced`;
  return null;
}

/**
 * A piece is read whole, and its blocks sent as views of it, when the peer asks for at least
 * this share of it at once; less, and its blocks are read (or copied) alone, so that a queued
 * 16 KiB block never keeps a whole piece alive.
 */
const WHOLE_PIECE_SHARE = 4;
/** A socket that took none of the memory it holds for this long gets no more while memory is short. */
const HOARDING_MS = 1000;
/** Blocks remembered per peer to notice one asked for again (2^24 blocks: 256 GiB of a torrent). */
const MAX_TRACKED_BLOCKS = 1 << 24;

export interface UploadsInit {
  peer: Peer;
  metainfo: Metainfo;
  /** The store's reader now (a finished download swaps its store, so never keep one). */
  reader(): PieceReader;
  limiter: RateLimiter;
  /** The node's memory for uploads: every block this peer's socket holds is counted there. */
  memory: UploadMemory;
  log: Logger;
  /** May we send this block now (we do not choke the peer, or the piece is in its allowed-fast set)? */
  allowed(r: UploadRequest): boolean;
  /** Count bytes sent. */
  sent(bytes: number): void;
  /** A request we will not serve (the piece failed its hash, or the file changed under it). */
  refused(r: UploadRequest, why: string): void;
}

/**
 * The requests one peer queued with us, and the pump that serves them. Blocks whose piece is
 * in memory go out in one corked batch (one writev for many blocks); a piece not in memory is
 * read (the next ones prefetched meanwhile).
 *
 * What the socket holds is counted in bytes of memory kept alive, not bytes queued: a view
 * of a piece keeps the whole piece, so it is counted once per piece; a block wanted alone is
 * read or copied on its own and counted as itself. The pump stops at the peer's share of the
 * upload memory (or when the node's is spent) and goes on as the socket writes. When the
 * peer leaves, the socket's pending writes fail and every count falls back.
 */
export class Uploads implements MemoryHolder {
  private readonly queue: UploadRequest[] = [];
  private pumping = false;
  private scheduled = false;
  /** One wake-up of each kind at a time, however often the pump finds itself blocked. */
  private awaitingDrain = false;
  private awaitingMemory = false;
  private awaitingWrites = false;
  /** Bytes of memory this peer's socket keeps alive, and the pieces it holds views of (with how many blocks). */
  private held = 0;
  private readonly views = new Map<CachedPiece, number>();
  /** When a write to it last completed, or it started holding something. */
  private lastWrite = Date.now();
  /** Blocks sent to it, by `index * blocksPerPiece + begin / BLOCK_LENGTH` (made at the first send). */
  private sentBlocks: Uint8Array | null = null;
  private readonly blocksPerPiece: number;

  constructor(private readonly init: UploadsInit) {
    this.blocksPerPiece = Math.ceil(init.metainfo.pieceLength / BLOCK_LENGTH);
  }

  get length(): number {
    return this.queue.length;
  }

  /** Bytes of memory its socket holds now. */
  get holding(): number {
    return this.held;
  }

  /** It has held memory for `ms` without reading any of it: a peer that does not read its socket. */
  stalled(now: number, ms: number): boolean {
    return this.held > 0 && now - this.lastWrite > ms;
  }

  stalledFor(now: number): number {
    return this.held > 0 ? now - this.lastWrite : 0;
  }

  /** The node needs the memory its socket holds (MemoryHolder): close it, saying why. */
  evict(why: string): void {
    if (this.init.peer.closed) return;
    this.init.log.warn({ peer: this.init.peer.label, torrent: this.init.metainfo.name, holding: this.held }, `closing peer: ${why}`);
    this.init.peer.close(why);
  }

  /** Queue a request. True when it asks again for a block already sent to it (a downloader whose hash check failed does). */
  add(r: UploadRequest): boolean {
    this.queue.push(r);
    return this.wasSent(r);
  }

  /** BEP 3 CANCEL: forget a queued request if it is still waiting. */
  cancel(index: number, begin: number, length: number): void {
    const i = this.queue.findIndex((r) => r.index === index && r.begin === begin && r.length === length);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Choked: what it asked for is dropped (BEP 3), but for what `keep` says (its allowed-fast pieces, BEP 6); returns what was dropped. */
  clear(keep: (r: UploadRequest) => boolean = () => false): UploadRequest[] {
    const dropped: UploadRequest[] = [];
    let n = 0;
    for (const r of this.queue) {
      if (keep(r)) this.queue[n++] = r;
      else dropped.push(r);
    }
    this.queue.length = n;
    return dropped;
  }

  /** Serve what is queued, once the messages that arrived with this one are queued too (they decide whole piece or block). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const head = this.queue[0];
      if (head && this.init.allowed(head)) this.prefetchAfter(this.init.reader(), -1);
      void this.pump();
    });
  }

  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const { peer, limiter } = this.init;
    const queue = this.queue;
    const reader = this.init.reader();
    try {
      // Choked, a peer keeps only requests for its allowed-fast pieces (`clear`): the head decides for all.
      while (!peer.closed && queue.length > 0 && this.init.allowed(queue[0]!)) {
        if (this.blocked(queue[0])) return;
        const next = queue[0]!;
        let piece = reader.cached(next.index);
        if (!piece) {
          const got = await this.fetch(reader, next);
          if (got === 'wait' || got === 'closed') return;
          if (got === 'done') continue;
          piece = got;
        }
        peer.socket.cork();
        try {
          while (queue.length > 0 && !this.blocked(queue[0])) {
            const r = queue[0]!;
            // A piece evicted meanwhile (and not pinned) may have a new owner: look it up again.
            const p = r.index === piece.index && !piece.evicted ? piece : reader.cached(r.index);
            if (!p) break;
            if (limiter.limited) {
              const wait = limiter.take(r.length);
              if (wait) {
                peer.socket.uncork();
                await wait;
                peer.socket.cork();
                if (peer.closed || !this.init.allowed(r) || queue[0] !== r) break;
              }
            }
            if (!this.sendFrom(p, r)) break;
            queue.shift();
          }
        } finally {
          peer.socket.uncork();
        }
      }
    } catch (err) {
      if (err instanceof ClosedError) {
        // The store was swapped (a finished download seeds from its final file now): read from the new one.
        if (!peer.closed) setTimeout(() => this.schedule(), 10).unref();
        return;
      }
      this.init.log.error({ err: (err as Error).message }, 'could not read a block to upload');
      peer.close('local read error');
    } finally {
      this.pumping = false;
    }
  }

  /**
   * The head request's piece is not in memory: read it whole (prefetching what comes next),
   * or, when the peer wants little of it, read and send that block alone. 'wait' when memory
   * is short (a wake-up is registered), 'done' when the head request was settled here.
   */
  private async fetch(reader: PieceReader, r: UploadRequest): Promise<CachedPiece | 'wait' | 'done' | 'closed'> {
    const { peer, memory } = this.init;
    try {
      if (!reader.loading(r.index) && this.wanted(r.index) * WHOLE_PIECE_SHARE < pieceSize(this.init.metainfo, r.index)) {
        const block = await reader.block(r.index, r.begin, r.length);
        if (!block) return this.waitForMemory();
        if (peer.closed || !this.init.allowed(r) || this.queue[0] !== r) {
          memory.release(r.length);
          return peer.closed ? 'closed' : 'done';
        }
        const wait = this.init.limiter.limited ? this.init.limiter.take(r.length) : null;
        if (wait) await wait;
        if (peer.closed || this.queue[0] !== r) {
          memory.release(r.length);
          return peer.closed ? 'closed' : 'done';
        }
        this.queue.shift();
        this.sendOwned(r, block);
        return 'done';
      }
      this.prefetchAfter(reader, r.index);
      const piece = await reader.piece(r.index);
      if (!piece) return this.waitForMemory();
      return peer.closed ? 'closed' : piece;
    } catch (err) {
      if (!(err instanceof PieceRefusedError)) throw err;
      this.refuseAll(err.index, err.message);
      return 'done';
    }
  }

  /** Bytes this peer has queued for `index`. */
  private wanted(index: number): number {
    let n = 0;
    for (const q of this.queue) if (q.index === index) n += q.length;
    return n;
  }

  /** Start reading the next pieces this peer wants whole, while it waits for the first. */
  private prefetchAfter(reader: PieceReader, index: number): void {
    const seen = new Set([index]);
    for (const q of this.queue) {
      if (seen.size > 8) return;
      if (seen.has(q.index)) continue;
      seen.add(q.index);
      if (this.wanted(q.index) * WHOLE_PIECE_SHARE >= pieceSize(this.init.metainfo, q.index)) reader.prefetch(q.index);
    }
  }

  /** Every queued request for a piece we will not serve is refused. */
  private refuseAll(index: number, why: string): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const q = this.queue[i]!;
      if (q.index !== index) continue;
      this.queue.splice(i, 1);
      this.init.refused(q, why);
    }
  }

  /**
   * Send one block of a piece in memory: as a view when the peer wants enough of it (counted
   * once per piece), else as a copy. False when the view does not fit the peer's share yet.
   */
  private sendFrom(p: CachedPiece, r: UploadRequest): boolean {
    const { memory } = this.init;
    const blocks = this.views.get(p);
    if (blocks !== undefined) {
      this.views.set(p, blocks + 1);
      return this.sendView(p, r);
    }
    const cost = p.buf.length;
    const whole = cost <= memory.peerLimit && this.wanted(r.index) * WHOLE_PIECE_SHARE >= cost;
    if (whole) {
      if (this.held > 0 && this.held + cost > memory.peerLimit) {
        this.waitForWrites();
        return false;
      }
      // The piece is in memory already (counted as cached); while pinned it is this peer's too.
      this.startHolding();
      this.held += cost;
      this.views.set(p, 1);
      memory.pin(p);
      return this.sendView(p, r);
    }
    if (!memory.reserve(r.length)) {
      this.waitForMemory();
      return false;
    }
    memory.copied();
    this.sendOwned(r, Buffer.from(p.buf.subarray(r.begin, r.begin + r.length)));
    return true;
  }

  private sendView(p: CachedPiece, r: UploadRequest): boolean {
    const { memory } = this.init;
    this.markSent(r);
    this.init.peer.sendBlock(r.index, r.begin, p.buf.subarray(r.begin, r.begin + r.length), () => {
      const left = this.views.get(p)! - 1;
      if (left > 0) this.views.set(p, left);
      else {
        this.views.delete(p);
        this.held -= p.buf.length;
        memory.unpin(p);
      }
      this.wrote();
    });
    this.init.sent(r.length);
    return true;
  }

  /** Send a block in a buffer of its own, whose bytes were reserved in the upload memory. */
  private sendOwned(r: UploadRequest, block: Buffer): void {
    const { memory } = this.init;
    this.startHolding();
    this.held += r.length;
    this.markSent(r);
    this.init.peer.sendBlock(r.index, r.begin, block, () => {
      this.held -= r.length;
      memory.release(r.length);
      this.wrote();
    });
    this.init.sent(r.length);
  }

  /**
   * Can the pump go on with `next`? If not, a wake-up is registered (socket drain, its own
   * writes, or the node's memory). A block of a piece the socket holds a view of already costs
   * no memory: only the socket's own back-pressure stops it.
   */
  private blocked(next: UploadRequest | undefined): boolean {
    const { peer, memory } = this.init;
    if (peer.socket.writableLength >= SEND_HIGH_WATER) {
      if (!this.awaitingDrain) {
        this.awaitingDrain = true;
        peer.socket.once('drain', () => {
          this.awaitingDrain = false;
          this.schedule();
        });
      }
      return true;
    }
    if (next && this.holdsViewOf(next.index)) return false;
    // A send that did not fit registered its wake-up: until it comes, trying again would only
    // find the same (a whole piece that did not fit beside what the socket holds spun here).
    if (this.awaitingWrites || this.awaitingMemory) return true;
    // Memory is short and its socket took nothing of what it holds for a while: no more for it
    // (the node closes it if that goes on, UploadMemory.relieve), what there is goes to peers that read.
    if (this.held >= memory.peerLimit || (this.held > 0 && Date.now() - this.lastWrite >= HOARDING_MS && memory.short())) {
      this.waitForWrites();
      return true;
    }
    return false;
  }

  private holdsViewOf(index: number): boolean {
    for (const p of this.views.keys()) if (p.index === index && !p.evicted) return true;
    return false;
  }

  private waitForWrites(): void {
    this.awaitingWrites = true;
  }

  private waitForMemory(): 'wait' {
    if (!this.awaitingMemory) {
      this.awaitingMemory = true;
      this.init.memory.whenFree(() => {
        this.awaitingMemory = false;
        if (!this.init.peer.closed) this.schedule();
      });
    }
    return 'wait';
  }

  private startHolding(): void {
    if (this.held > 0) return;
    this.lastWrite = Date.now();
    this.init.memory.holding(this, true);
  }

  /**
   * A write completed (or failed with the socket). The pump goes on once half the peer's share
   * is free again: refilling in large batches keeps writes to the socket few and large.
   */
  private wrote(): void {
    this.lastWrite = Date.now();
    if (this.held === 0) this.init.memory.holding(this, false);
    if (this.awaitingWrites && this.held <= this.init.memory.peerLimit / 2 && !this.init.peer.closed) {
      this.awaitingWrites = false;
      this.schedule();
    }
  }

  private blockKey(r: UploadRequest): number {
    return r.index * this.blocksPerPiece + Math.floor(r.begin / BLOCK_LENGTH);
  }

  private markSent(r: UploadRequest): void {
    const total = this.init.metainfo.pieceCount * this.blocksPerPiece;
    if (total > MAX_TRACKED_BLOCKS) return;
    this.sentBlocks ??= new Uint8Array(Math.ceil(total / 8));
    const k = this.blockKey(r);
    this.sentBlocks[k >> 3]! |= 1 << (k & 7);
  }

  private wasSent(r: UploadRequest): boolean {
    if (!this.sentBlocks) return false;
    const k = this.blockKey(r);
    return (this.sentBlocks[k >> 3]! & (1 << (k & 7))) !== 0;
  }
}
