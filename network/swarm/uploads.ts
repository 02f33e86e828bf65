import { MAX_REQUEST_LENGTH } from '../wire/peer-wire.js';
import type { Bitfield } from '../wire/bitfield.js';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import type { PieceReader } from '../storage/piece-reader.js';
import type { Peer } from './peer.js';
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

export interface UploadsInit {
  peer: Peer;
  /** The store's reader now (a finished download swaps its store, so never keep one). */
  reader(): PieceReader;
  limiter: RateLimiter;
  log: Logger;
  /** May we send to this peer now (we do not choke it)? */
  allowed(): boolean;
  /** Count bytes sent. */
  sent(bytes: number): void;
}

/**
 * The requests one peer queued with us, and the pump that serves them. Blocks whose piece is
 * in memory go out in one corked batch (one writev for many blocks); a piece not in memory is
 * read (others prefetched meanwhile). The pump stops while the socket is congested and
 * carries on at 'drain'.
 */
export class Uploads {
  private readonly queue: UploadRequest[] = [];
  private pumping = false;
  /** One 'drain' listener at a time, however often the pump finds the socket congested. */
  private awaitingDrain = false;

  constructor(private readonly init: UploadsInit) {}

  get length(): number {
    return this.queue.length;
  }

  add(r: UploadRequest): void {
    this.queue.push(r);
  }

  /** BEP 3 CANCEL: forget a queued request if it is still waiting. */
  cancel(index: number, begin: number, length: number): void {
    const i = this.queue.findIndex((r) => r.index === index && r.begin === begin && r.length === length);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Choked: what it asked for is dropped (BEP 3); returns what was dropped. */
  clear(): UploadRequest[] {
    return this.queue.splice(0);
  }

  async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    const { peer, limiter } = this.init;
    const queue = this.queue;
    const reader = this.init.reader();
    try {
      while (!peer.closed && this.init.allowed() && queue.length > 0) {
        if (peer.congested) {
          if (!this.awaitingDrain) {
            this.awaitingDrain = true;
            peer.socket.once('drain', () => {
              this.awaitingDrain = false;
              void this.pump();
            });
          }
          return;
        }
        const next = queue[0]!;
        if (!reader.cached(next.index)) {
          await reader.piece(next.index);
          continue;
        }
        peer.socket.cork();
        try {
          while (queue.length > 0 && !peer.congested) {
            const r = queue[0]!;
            const piece = reader.cached(r.index);
            if (!piece) break;
            if (limiter.limited) {
              const wait = limiter.take(r.length);
              if (wait) {
                peer.socket.uncork();
                await wait;
                peer.socket.cork();
                if (peer.closed || !this.init.allowed() || queue[0] !== r) break;
              }
            }
            queue.shift();
            reader.pin(piece);
            peer.sendBlock(r.index, r.begin, piece.buf.subarray(r.begin, r.begin + r.length), () => reader.unpin(piece));
            this.init.sent(r.length);
          }
        } finally {
          peer.socket.uncork();
        }
      }
    } catch (err) {
      this.init.log.error({ err: (err as Error).message }, 'could not read a block to upload');
      peer.close('local read error');
    } finally {
      this.pumping = false;
    }
  }
}
