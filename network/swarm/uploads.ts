import type { Logger } from '../util/log.js';
import type { PieceReader } from '../storage/piece-reader.js';
import type { Peer } from './peer.js';
import type { RateLimiter } from './rate.js';

/**
 * Serve queued requests. Blocks whose piece is in memory go out in one corked batch (one
 * writev for many blocks); a piece not in memory is read (others prefetched meanwhile).
 * Stops while the socket is congested and resumes on 'drain'.
 */
export interface UploadContext {
  /** The store's reader now (a finished download swaps its store, so never keep one). */
  reader(): PieceReader;
  limiter: RateLimiter;
  log: Logger;
  /** Count bytes sent. */
  sent(bytes: number): void;
  /** Called on 'drain' to carry on. */
  resume(peer: Peer): void;
}

export async function serveUploads(peer: Peer, ctx: UploadContext): Promise<void> {
  if (peer.pumping) return;
  peer.pumping = true;
  const { limiter } = ctx;
  const reader = ctx.reader();
  try {
    while (!peer.closed && !peer.amChoking && peer.uploads.length > 0) {
      if (peer.congested) {
        peer.socket.once('drain', () => ctx.resume(peer));
        return;
      }
      const next = peer.uploads[0]!;
      if (!reader.cached(next.index)) {
        await reader.piece(next.index);
        continue;
      }
      peer.socket.cork();
      try {
        while (peer.uploads.length > 0 && !peer.congested) {
          const r = peer.uploads[0]!;
          const piece = reader.cached(r.index);
          if (!piece) break;
          if (limiter.limited) {
            const wait = limiter.take(r.length);
            if (wait) {
              peer.socket.uncork();
              await wait;
              peer.socket.cork();
              if (peer.closed || peer.amChoking || peer.uploads[0] !== r) break;
            }
          }
          peer.uploads.shift();
          reader.pin(piece);
          peer.sendBlock(r.index, r.begin, piece.buf.subarray(r.begin, r.begin + r.length), () => reader.unpin(piece));
          ctx.sent(r.length);
        }
      } finally {
        peer.socket.uncork();
      }
    }
  } catch (err) {
    ctx.log.error({ err: (err as Error).message }, 'could not read a block to upload');
    peer.close('local read error');
  } finally {
    peer.pumping = false;
  }
}
