/**
 * Who sent a bad block, when a piece with several sources fails its hash (libtorrent's "smart
 * ban"): the failed piece's block digests are kept with who sent each; when the piece later
 * passes (fetched from one peer only), every block whose digest differs from the good one
 * names its sender. A peer that alone sent a whole bad piece is named at once (the caller's
 * rule). Bounded: the failures of the last MAX_SUSPECT_PIECES pieces are kept.
 */
import { createHash } from 'node:crypto';
import { BLOCK_LENGTH } from '../wire/peer-wire.js';

/** Failed pieces whose evidence is kept. */
export const MAX_SUSPECT_PIECES = 64;

/** SHA-1 of each 16 KiB block of `piece` (the last one may be short). */
export function blockDigests(piece: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < piece.length; at += BLOCK_LENGTH) out.push(createHash('sha1').update(piece.subarray(at, at + BLOCK_LENGTH)).digest());
  return out;
}

export class Blame<P> {
  private readonly suspects = new Map<number, Array<{ peer: P | undefined; digest: Buffer }>>();

  /** Do we hold evidence for piece `index` (so its good copy must be compared)? */
  has(index: number): boolean {
    return this.suspects.has(index);
  }

  /** Piece `index` failed: `digests[b]` came from `from[b]`. */
  failed(index: number, digests: Buffer[], from: ReadonlyArray<P | undefined>): void {
    this.suspects.delete(index);
    this.suspects.set(index, digests.map((digest, b) => ({ peer: from[b], digest })));
    while (this.suspects.size > MAX_SUSPECT_PIECES) this.suspects.delete(this.suspects.keys().next().value as number);
  }

  /** Piece `index` passed with these block digests: the peers whose earlier blocks differ (once each). */
  passed(index: number, digests: Buffer[]): P[] {
    const evidence = this.suspects.get(index);
    this.suspects.delete(index);
    if (!evidence) return [];
    const liars = new Set<P>();
    evidence.forEach((e, b) => {
      if (e.peer !== undefined && digests[b] && !digests[b]!.equals(e.digest)) liars.add(e.peer);
    });
    return [...liars];
  }
}
