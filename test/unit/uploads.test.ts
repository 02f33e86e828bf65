/**
 * The upload pump when a whole piece does not fit beside what the socket still holds: it
 * must wait for the socket's writes, not try again at once. With 4 MiB pieces (the peer's
 * share of the upload memory is 4 MiB too) a block first sent as a copy left the next whole
 * piece never fitting, and the pump spun on it forever: the node's event loop stopped and a
 * Transmission downloading from it stalled mid-block (docs/interop.md). The peer, its socket
 * and the piece reader are stand-ins that record what is sent; the memory is the real one.
 */
import { expect } from 'chai';
import { BLOCK_LENGTH } from '../../network/wire/peer-wire.js';
import type { Metainfo } from '../../network/metainfo/metainfo.js';
import type { CachedPiece, PieceReader } from '../../network/storage/piece-reader.js';
import { UploadMemory } from '../../network/storage/upload-memory.js';
import type { Peer } from '../../network/swarm/peer.js';
import type { RateLimiter } from '../../network/swarm/rate.js';
import { Uploads } from '../../network/swarm/uploads.js';
import { captureLog } from '../helpers.js';

const PIECE = 8 * BLOCK_LENGTH;

describe('upload pump: a whole piece that does not fit beside what the socket holds', () => {
  it('waits for the socket to write, then sends the piece, without spinning meanwhile', async () => {
    const piece: CachedPiece = { index: 0, buf: Buffer.alloc(PIECE, 7), refs: 0, evicted: false, home: new Map() };
    let lookups = 0;
    const reader = {
      cached: (i: number) => {
        // A pump that spins comes back here without end: stop it with an error it must not see.
        if (++lookups > 1000) throw new Error('the upload pump spun');
        return i === 0 ? piece : undefined;
      },
      loading: () => false,
      prefetch: () => {},
      suspect: () => false,
      block: async () => null,
      piece: async () => piece,
    } as unknown as PieceReader;
    const sent: number[] = [];
    const pending: Array<() => void> = [];
    let closed: string | null = null;
    const peer = {
      closed: false,
      socket: { writableLength: 0, once: () => {}, cork: () => {}, uncork: () => {} },
      sendBlock: (_index: number, begin: number, _block: Buffer, written: () => void) => {
        sent.push(begin / BLOCK_LENGTH);
        pending.push(written); // the socket has not written it yet
      },
      close: (why: string) => (closed = why),
    } as unknown as Peer;
    const { logger } = captureLog();
    // The peer's share of the upload memory is one piece, as 4 MiB pieces have it by default.
    const memory = new UploadMemory(64 * PIECE, PIECE);
    const metainfo = { pieceLength: PIECE, pieceCount: 1, length: PIECE } as Metainfo;
    const uploads = new Uploads({
      peer,
      metainfo,
      reader: () => reader,
      limiter: { limited: false, take: () => null } as unknown as RateLimiter,
      memory,
      log: logger,
      allowed: () => true,
      sent: () => {},
      refused: () => {},
    });

    // One block asked for alone: sent as a copy, which the socket still holds.
    uploads.add({ index: 0, begin: 0, length: BLOCK_LENGTH });
    await uploads.pump();
    expect(sent).to.deep.equal([0]);
    expect(pending).to.have.length(1);

    // Then the rest of the piece: enough to send it whole, which does not fit beside that copy.
    for (let b = 1; b < 8; b++) uploads.add({ index: 0, begin: b * BLOCK_LENGTH, length: BLOCK_LENGTH });
    await uploads.pump();
    expect(closed, 'the pump failed').to.equal(null);
    expect(lookups, 'lookups of the piece while it waited').to.be.below(10);
    expect(sent).to.deep.equal([0]);

    // The socket writes the copy: the pump goes on by itself and sends the piece whole.
    pending.shift()!();
    await new Promise((r) => setTimeout(r, 10));
    expect(closed).to.equal(null);
    expect(sent).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    for (const w of pending.splice(0)) w();
    expect(uploads.holding).to.equal(0);
  });
});
