/**
 * PieceReader and UploadMemory: whole pieces read from a real file, shared reads, the LRU
 * within the memory budget, pinned buffers, the bound on prefetch, blocks read alone, and
 * pieces of a changed file hashed before they are served. The FileHandle's `read` is wrapped
 * only to count (and in one test hold back) the real reads.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, type Metainfo } from '../../network/metainfo/metainfo.js';
import { MAX_LOADS, PieceReader, PieceRefusedError, openForRead, newReadCounters, type PieceHasher } from '../../network/storage/piece-reader.js';
import { UploadMemory } from '../../network/storage/upload-memory.js';
import { cleanup, rejection, tempDir, waitFor } from '../helpers.js';

const PIECE = 16 * 1024;
const PIECES = 20;
/** Nineteen whole pieces and a short last one. */
const LENGTH = (PIECES - 1) * PIECE + 777;

/** Counts the file reads per piece; `hold` keeps new reads waiting until `release()`. */
function countReads(fd: promises.FileHandle) {
  const real = fd.read.bind(fd) as (buf: Buffer, off: number, len: number, pos: number) => Promise<{ bytesRead: number; buffer: Buffer }>;
  const perPiece = new Map<number, number>();
  let held: Array<() => void> | null = null;
  const spy = {
    perPiece,
    started: 0,
    hold() {
      held = [];
    },
    release() {
      const go = held ?? [];
      held = null;
      for (const g of go) g();
    },
  };
  (fd as { read: unknown }).read = async (buf: Buffer, off: number, len: number, pos: number) => {
    const piece = Math.floor(pos / PIECE);
    perPiece.set(piece, (perPiece.get(piece) ?? 0) + 1);
    spy.started++;
    if (held) await new Promise<void>((r) => held!.push(r));
    return real(buf, off, len, pos);
  };
  return spy;
}

/** SHA-1 on the test's thread, with the lend-and-give-back shape of the node's hash pool. */
const syncHasher: PieceHasher & { calls: number } = {
  calls: 0,
  async lend(buf: Buffer, size: number) {
    this.calls++;
    return { digest: createHash('sha1').update(buf.subarray(0, size)).digest(), buf };
  },
};

describe('piece reader', function () {
  let dir: string;
  let file: string;
  let content: Buffer;
  let m: Metainfo;
  let fd: promises.FileHandle;

  beforeEach(async function () {
    dir = await tempDir('shoal-reader-');
    file = path.join(dir, 'data.bin');
    content = randomBytes(LENGTH);
    await fsp.writeFile(file, content);
    const digests: Buffer[] = [];
    for (let at = 0; at < LENGTH; at += PIECE) digests.push(createHash('sha1').update(content.subarray(at, at + PIECE)).digest());
    m = buildMetainfo({ name: 'data.bin', length: LENGTH, pieceLength: PIECE, pieces: Buffer.concat(digests) });
    fd = await openForRead(file);
  });
  afterEach(async function () {
    await fd.close().catch(() => {});
    await cleanup(dir);
  });

  const expected = (i: number) => content.subarray(i * PIECE, Math.min(LENGTH, (i + 1) * PIECE));

  it('reads whole pieces whose content and slices match the file, the last one short', async function () {
    const r = new PieceReader(fd, m);
    for (const i of [0, 7, PIECES - 1]) {
      const p = (await r.piece(i))!;
      expect(p.index).to.equal(i);
      expect(p.buf.equals(expected(i)), `piece ${i}`).to.equal(true);
      // A 1 KiB block at 5 KiB into the piece: what a peer's request gets.
      expect(p.buf.subarray(5 * 1024, 6 * 1024).equals(content.subarray(i * PIECE + 5 * 1024, i * PIECE + 6 * 1024))).to.equal(true);
    }
    expect((await r.piece(PIECES - 1))!.buf.length).to.equal(777);
  });

  it('concurrent asks for one piece share a single read, and a cached piece is not read again', async function () {
    const spy = countReads(fd);
    const r = new PieceReader(fd, m);
    expect(r.cached(3), 'nothing in memory before').to.equal(undefined);
    const [a, b, c] = await Promise.all([r.piece(3), r.piece(3), r.piece(3)]);
    expect(a).to.equal(b);
    expect(a).to.equal(c);
    expect(spy.perPiece.get(3)).to.equal(1);
    expect(r.cached(3)).to.equal(a);
    expect(await r.piece(3)).to.equal(a);
    expect(spy.perPiece.get(3)).to.equal(1);
  });

  it('keeps pieces within its memory (four at least), dropping the least recently used', async function () {
    const spy = countReads(fd);
    const r = new PieceReader(fd, m, 0); // asks for none: gets the floor of four
    for (const i of [0, 1, 2, 3]) await r.piece(i);
    expect(r.cached(0), 'piece 0 used again: now the most recent').to.not.equal(undefined);
    await r.piece(4);
    expect(r.cached(1), 'the least recently used went').to.equal(undefined);
    for (const i of [0, 2, 3, 4]) expect(r.cached(i), `piece ${i} stays`).to.not.equal(undefined);
    await r.piece(1);
    expect(spy.perPiece.get(1), 'an evicted piece is read again').to.equal(2);

    const big = new PieceReader(fd, m, 6 * PIECE);
    for (let i = 0; i < 7; i++) await big.piece(i);
    expect([...Array(7).keys()].filter((i) => big.cached(i))).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('one memory for every reader: a second file read pushes the first one\'s idle pieces out, never past the budget', async function () {
    const memory = new UploadMemory(8 * PIECE);
    const a = new PieceReader(fd, m, { memory });
    const other = await openForRead(file);
    try {
      const b = new PieceReader(other, m, { memory });
      for (let i = 0; i < 6; i++) await a.piece(i);
      for (let i = 0; i < 6; i++) await b.piece(i);
      expect(memory.stats.used).to.be.at.most(8 * PIECE);
      expect(memory.stats.peak).to.be.at.most(8 * PIECE);
      expect([...Array(6).keys()].filter((i) => a.cached(i)), 'a keeps its two most recent').to.deep.equal([4, 5]);
      a.close();
      expect(memory.stats.cached, 'a closed reader leaves the LRU').to.equal(6 * PIECE);
    } finally {
      await other.close();
    }
  });

  it('a pinned piece is never evicted by a read: with every piece pinned there is no room (null) until one is unpinned', async function () {
    const memory = new UploadMemory(4 * PIECE);
    const r = new PieceReader(fd, m, { memory });
    const pinned = [];
    for (let i = 0; i < 4; i++) {
      const p = (await r.piece(i))!;
      r.pin(p);
      pinned.push(p);
    }
    expect(await r.piece(4), 'no room: the caller waits').to.equal(null);
    let woken = false;
    memory.whenFree(() => (woken = true));
    r.unpin(pinned[1]!);
    await new Promise((resolve) => setImmediate(resolve)); // waiters are woken once per turn of the loop
    expect(woken, 'a waiter hears that an unpinned piece can give way').to.equal(true);
    expect(await r.piece(4), 'an unpinned piece gave way').to.not.equal(null);
    expect(r.cached(1)).to.equal(undefined);
    for (const p of [pinned[0]!, pinned[2]!, pinned[3]!]) expect(p.buf.equals(expected(p.index)), 'pinned bytes never overwritten').to.equal(true);
  });

  it('prefetches nothing while uploads wait for memory: the reads they asked for go first', async function () {
    const memory = new UploadMemory(8 * PIECE);
    const r = new PieceReader(fd, m, { memory });
    expect(memory.reserve(8 * PIECE)).to.equal(true);
    memory.whenFree(() => {});
    r.prefetch(3);
    expect(r.loading(3), 'memory is short: no read ahead').to.equal(false);
    memory.release(8 * PIECE);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 1100)); // short no more
    r.prefetch(3);
    expect(r.loading(3)).to.equal(true);
  });

  it('a piece evicted while pinned keeps its bytes, counts as pinned memory, and is given back once unpinned', async function () {
    const memory = new UploadMemory(16 * PIECE);
    const r = new PieceReader(fd, m, { memory });
    const p0 = (await r.piece(0))!;
    r.pin(p0);
    r.pin(p0); // two blocks of it on two sockets
    r.suspect(0); // a suspect piece leaves the LRU at once
    expect(p0.evicted).to.equal(true);
    expect(r.cached(0)).to.equal(undefined);
    expect(memory.stats.pinned).to.equal(PIECE);
    for (let i = 1; i <= 8; i++) await r.piece(i);
    expect(p0.buf.equals(expected(0)), 'a handed-out buffer is never overwritten while pinned').to.equal(true);
    r.unpin(p0);
    expect(memory.stats.pinned, 'still pinned once').to.equal(PIECE);
    r.unpin(p0);
    expect(memory.stats.pinned).to.equal(0);
    // Kept as a spare buffer, and the next piece read goes into it.
    const next = (await r.piece(13))!;
    expect(next.buf.buffer, 'recycled once the last pin went').to.equal(p0.buf.buffer);
    expect(next.buf.equals(expected(13))).to.equal(true);
  });

  it(`prefetch starts at most MAX_LOADS (${MAX_LOADS}) reads at once, and none for a piece in memory or on its way`, async function () {
    const spy = countReads(fd);
    const r = new PieceReader(fd, m, PIECES * PIECE);
    await r.piece(0);
    spy.hold();
    r.prefetch(0); // cached
    for (let i = 1; i < PIECES; i++) r.prefetch(i);
    r.prefetch(1); // in flight
    expect(spy.started).to.equal(1 + MAX_LOADS);
    expect(spy.perPiece.get(1)).to.equal(1);
    spy.release();
    await waitFor(() => r.cached(MAX_LOADS), 5000, 'the prefetched pieces');
    for (let i = 1; i <= MAX_LOADS; i++) expect(r.cached(i)?.buf.equals(expected(i)), `piece ${i}`).to.equal(true);
    expect(r.cached(MAX_LOADS + 1), 'beyond the bound nothing was read').to.equal(undefined);
    // With the loads done there is room again.
    r.prefetch(MAX_LOADS + 1);
    await waitFor(() => r.cached(MAX_LOADS + 1), 5000, 'the next prefetch');
  });

  it('a block read alone: its bytes, counted in the memory until released, and no piece cached', async function () {
    const memory = new UploadMemory(8 * PIECE);
    const counters = newReadCounters();
    const r = new PieceReader(fd, m, { memory, counters });
    const block = (await r.block(5, 1024, 2048))!;
    expect(block.equals(content.subarray(5 * PIECE + 1024, 5 * PIECE + 3072))).to.equal(true);
    expect(memory.stats.used).to.equal(2048);
    expect(memory.stats.pinned).to.equal(2048);
    expect(r.cached(5)).to.equal(undefined);
    expect(counters.blockReads).to.equal(1);
    memory.release(2048);
    expect(memory.stats.used).to.equal(0);
  });

  it('a file that shrank is refused with a clear error, each time it is asked, without reading again', async function () {
    this.timeout(3000); // without the check the read loop spins forever
    const refused: number[] = [];
    const r = new PieceReader(fd, m, { refused: (i) => refused.push(i) });
    await fsp.truncate(file, 10 * PIECE + 100);
    const err = await rejection(r.piece(12));
    expect(err).to.be.instanceOf(PieceRefusedError);
    expect(err.message).to.equal('piece 12 could not be read whole: the file shrank');
    const mid = await rejection(r.piece(10));
    expect(mid.message).to.equal('piece 10 could not be read whole: the file shrank');
    expect(r.cached(10)).to.equal(undefined);
    const spy = countReads(fd);
    expect((await rejection(r.piece(10))).message, 'not stuck on a failed read').to.equal('piece 10 could not be read whole: the file shrank');
    expect((await rejection(r.block(10, 0, 100))).message).to.equal('piece 10 could not be read whole: the file shrank');
    expect(spy.started, 'a refused piece is not read again').to.equal(0);
    expect(refused, 'each refusal told once').to.deep.equal([12, 10]);
    expect((await r.piece(9))!.buf.equals(expected(9)), 'what is still there reads fine').to.equal(true);
  });

  describe('a file that changed since it was hashed', function () {
    /** The file as a source whose `unchanged()` answers what the test says. */
    function source(unchanged: () => boolean) {
      return { read: fd.read.bind(fd) as (b: Buffer, o: number, l: number, p: number) => Promise<{ bytesRead: number }>, unchanged: async () => unchanged() };
    }

    it('unchanged: pieces are served without hashing', async function () {
      syncHasher.calls = 0;
      const r = new PieceReader(source(() => true), m, { hasher: syncHasher });
      for (let i = 0; i < 5; i++) await r.piece(i);
      expect(syncHasher.calls).to.equal(0);
    });

    it('changed: each piece is hashed before it is served; a good one is served, a bad one refused for good and reported once', async function () {
      syncHasher.calls = 0;
      const counters = newReadCounters();
      const reports: string[] = [];
      const r = new PieceReader(source(() => false), m, { hasher: syncHasher, counters, refused: (_i, why) => reports.push(why) });
      // Piece 3 rewritten in place; piece 2 left as it was.
      const h = await fsp.open(file, 'r+');
      await h.write(randomBytes(100), 0, 100, 3 * PIECE + 50);
      await h.close();
      expect((await r.piece(2))!.buf.equals(expected(2)), 'a piece that still matches is served').to.equal(true);
      const err = await rejection(r.piece(3));
      expect(err).to.be.instanceOf(PieceRefusedError);
      expect(err.message).to.equal('piece 3 no longer matches its hash: the file changed since it was hashed');
      await rejection(r.piece(3));
      await rejection(r.block(3, 0, 1024));
      expect(counters.verified).to.equal(2);
      expect(counters.refused).to.equal(1);
      expect(reports).to.have.length(1);
      expect(r.cached(3)).to.equal(undefined);
    });

    it('changed, without a hasher: nothing is served', async function () {
      const err = await rejection(new PieceReader(source(() => false), m).piece(0));
      expect(err).to.be.instanceOf(PieceRefusedError);
    });

    it('a block of a changed file is served only from a whole piece that was hashed', async function () {
      syncHasher.calls = 0;
      const r = new PieceReader(source(() => false), m, { hasher: syncHasher });
      const b = (await r.block(4, 100, 1000))!;
      expect(b.equals(content.subarray(4 * PIECE + 100, 4 * PIECE + 1100))).to.equal(true);
      expect(syncHasher.calls).to.equal(1);
    });

    it('a suspect piece (a peer asked again for a block it had) is read and hashed again, at most once per cooldown', async function () {
      syncHasher.calls = 0;
      const spy = countReads(fd);
      const r = new PieceReader(source(() => true), m, { hasher: syncHasher });
      await r.piece(6);
      expect(r.suspect(6, 1000)).to.equal(true);
      expect(r.cached(6), 'out of memory at once').to.equal(undefined);
      await r.piece(6);
      expect(syncHasher.calls).to.equal(1);
      expect(spy.perPiece.get(6)).to.equal(2);
      expect(r.suspect(6, 2000), 'within the cooldown: ignored').to.equal(false);
      await r.piece(6);
      expect(syncHasher.calls).to.equal(1);
    });
  });
});
