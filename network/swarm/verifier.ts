import { pieceHash, type Metainfo } from '../metainfo/metainfo.js';
import type { Hasher } from '../storage/part-file.js';
import type { PieceWriter } from '../storage/stores.js';
import type { ActivePiece } from './active-piece.js';

export type Verdict = 'verified' | 'corrupt' | 'stopped';

/**
 * A completed piece, checked before it counts: its buffer is lent to a hash worker and comes
 * back with the SHA-1 (the event loop never hashes), compared with the torrent's, written at
 * its offset, and only then marked verified in the store, so a crash can lose the mark but
 * never list a piece that was not written. The buffer goes back to the pool whatever happens.
 * Rejects only on a local failure (the disk, a hash worker).
 */
export async function verifyPiece(ap: ActivePiece, m: Metainfo, hasher: Hasher, writer: PieceWriter, stopped: () => boolean): Promise<Verdict> {
  let buffer = ap.buffer;
  try {
    const { digest, buf } = await hasher.lend(buffer, ap.size);
    buffer = buf;
    if (stopped()) return 'stopped';
    if (!digest.equals(pieceHash(m, ap.index))) return 'corrupt';
    await writer.writePiece(ap.index, buf.subarray(0, ap.size));
    if (stopped()) return 'stopped';
    writer.markVerified(ap.index);
    return 'verified';
  } finally {
    writer.pool.release(buffer);
  }
}
