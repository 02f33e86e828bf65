/**
 * PieceReader: whole pieces read from a real file, shared reads, the LRU, pinned buffers
 * and the bound on prefetch. The FileHandle's `read` is wrapped only to count (and in one
 * test hold back) the real reads.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp, type promises } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, type Metainfo } from '../../network/metainfo/metainfo.js';
import { MAX_LOADS, PieceReader, openForRead } from '../../network/storage/piece-reader.js';
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
      const p = await r.piece(i);
      expect(p.index).to.equal(i);
      expect(p.buf.equals(expected(i)), `piece ${i}`).to.equal(true);
      // A 1 KiB block at 5 KiB into the piece: what a peer's request gets.
      expect(p.buf.subarray(5 * 1024, 6 * 1024).equals(content.subarray(i * PIECE + 5 * 1024, i * PIECE + 6 * 1024))).to.equal(true);
    }
    expect((await r.piece(PIECES - 1)).buf.length).to.equal(777);
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

  it('keeps at most cacheBytes of pieces (four at least), dropping the least recently used', async function () {
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

  it('a pinned piece keeps its bytes after eviction until unpinned; then its buffer is reused', async function () {
    const r = new PieceReader(fd, m, 4 * PIECE);
    const p0 = await r.piece(0);
    r.pin(p0);
    r.pin(p0); // two blocks of it on two sockets
    for (let i = 1; i <= 8; i++) await r.piece(i);
    expect(p0.evicted).to.equal(true);
    expect(r.cached(0)).to.equal(undefined);
    expect(p0.buf.equals(expected(0)), 'a handed-out buffer is never overwritten while pinned').to.equal(true);

    r.unpin(p0);
    for (let i = 9; i <= 12; i++) expect((await r.piece(i)).buf.buffer).to.not.equal(p0.buf.buffer);
    expect(p0.buf.equals(expected(0)), 'still pinned once').to.equal(true);

    r.unpin(p0);
    // Every other evicted buffer was recycled at eviction and reused since; this one is on top now.
    const next = await r.piece(13);
    expect(next.buf.buffer, 'recycled once the last pin went').to.equal(p0.buf.buffer);
    expect(next.buf.equals(expected(13))).to.equal(true);
  });

  it('an unpinned piece still in the cache is not recycled', async function () {
    const r = new PieceReader(fd, m, 4 * PIECE);
    const p = await r.piece(0);
    r.pin(p);
    r.unpin(p);
    for (let i = 1; i <= 3; i++) await r.piece(i);
    expect(r.cached(0)).to.equal(p);
    expect(p.buf.equals(expected(0))).to.equal(true);
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

  it('a file that shrank gives a clear error, each time it is asked', async function () {
    this.timeout(3000); // without the check the read loop spins forever
    const r = new PieceReader(fd, m);
    await fsp.truncate(file, 10 * PIECE + 100);
    const err = await rejection(r.piece(12));
    expect(err.message).to.equal('short read at piece 12: the file shrank');
    const mid = await rejection(r.piece(10));
    expect(mid.message).to.equal('short read at piece 10: the file shrank');
    expect(r.cached(10)).to.equal(undefined);
    expect((await rejection(r.piece(10))).message, 'not stuck on a failed read').to.equal('short read at piece 10: the file shrank');
    expect((await r.piece(9)).buf.equals(expected(9)), 'what is still there reads fine').to.equal(true);
  });
});
