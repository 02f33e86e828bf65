/**
 * The piece picker on its own: which blocks it asks of which peer, and the request state it
 * alone keeps. Peers here are plain objects with a bitfield, which is all the picker sees.
 */
import { expect } from 'chai';
import { Bitfield } from '../../network/wire/bitfield.js';
import { BLOCK_LENGTH } from '../../network/wire/peer-wire.js';
import { PiecePicker, MAX_PRIORITY_WINDOWS, RANDOM_FIRST_PIECES, type BlockRequest, type PickerPeer } from '../../network/swarm/picker.js';
import type { ActivePiece } from '../../network/swarm/active-piece.js';

/** 32 KiB pieces: two blocks each. */
const L = 2 * BLOCK_LENGTH;

interface Setup {
  picker: PiecePicker<PickerPeer>;
  /** Buffers handed out so far. */
  allocated(): number;
}

function make(pieces: number, have: number[] = [], opts: { buffers?: number } = {}): Setup {
  const bits = new Bitfield(pieces);
  for (const i of have) bits.set(i);
  let allocated = 0;
  const picker = new PiecePicker<PickerPeer>({ pieceCount: pieces, pieceLength: L, length: pieces * L }, bits, () => {
    if (opts.buffers !== undefined && allocated >= opts.buffers) return null;
    allocated++;
    return Buffer.alloc(L);
  });
  return { picker, allocated: () => allocated };
}

function peer(pieces: number, has?: (i: number) => boolean): PickerPeer {
  const b = new Bitfield(pieces);
  for (let i = 0; i < pieces; i++) if (!has || has(i)) b.set(i);
  return { bitfield: b };
}

function join(picker: PiecePicker<PickerPeer>, p: PickerPeer): PickerPeer {
  picker.addAvailability(p.bitfield);
  return p;
}

const started = (reqs: BlockRequest[]) => [...new Set(reqs.map((r) => r.index))];

/** Deliver every requested block of `reqs` from `p`; returns the pieces that completed. */
function deliver(picker: PiecePicker<PickerPeer>, p: PickerPeer, reqs: BlockRequest[]): ActivePiece<PickerPeer>[] {
  const done: ActivePiece<PickerPeer>[] = [];
  for (const r of reqs) {
    const res = picker.received(p, r.index, r.begin, Buffer.alloc(r.length, r.index));
    if (res && typeof res === 'object') done.push(res);
  }
  return done;
}

describe('piece picker', () => {
  describe('which piece first', () => {
    it('picks the first pieces at random, not in index or rarity order', () => {
      const firsts = new Set<number>();
      let rare = 0;
      for (let run = 0; run < 60; run++) {
        const { picker } = make(64);
        const a = join(picker, peer(64));
        join(picker, peer(64, (i) => i < 10 || i >= 20)); // pieces 10..19 are the rare ones
        const [first] = started(picker.pick(a, 2, 1));
        firsts.add(first!);
        if (first! >= 10 && first! < 20) rare++;
      }
      expect(firsts.size, 'many different first pieces').to.be.greaterThan(10);
      expect(rare, 'the rare pieces get no preference yet').to.be.lessThan(40);
    });

    it(`then rarest first, once ${RANDOM_FIRST_PIECES} pieces are verified`, () => {
      for (let run = 0; run < 30; run++) {
        const { picker } = make(64, [40, 41, 42, 43]);
        const a = join(picker, peer(64));
        join(picker, peer(64, (i) => i < 10 || i >= 20));
        const picks = started(picker.pick(a, 8, 4));
        expect(picks, `run ${run}`).to.have.length(4);
        for (const i of picks) expect(i, 'one of the rare pieces').to.be.within(10, 19);
      }
    });

    it('asks a peer only for pieces it has, and for none when it has nothing we need', () => {
      const { picker } = make(16, [0, 1, 2, 3]);
      const some = join(picker, peer(16, (i) => i === 7 || i === 9));
      expect(started(picker.pick(some, 100, 10)).sort((x, y) => x - y)).to.deep.equal([7, 9]);
      const useless = join(picker, peer(16, (i) => i < 4));
      expect(picker.interesting(useless)).to.equal(false);
      expect(picker.pick(useless, 100, 10)).to.deep.equal([]);
    });

    it('starts no piece when no buffer is free (the memory bound)', () => {
      const { picker, allocated } = make(16, [], { buffers: 2 });
      const a = join(picker, peer(16));
      expect(started(picker.pick(a, 100, 10))).to.have.length(2);
      expect(allocated()).to.equal(2);
    });
  });

  describe('requests, kept by the picker alone', () => {
    it('counts what a peer was asked and has not sent, and forgets it on release', () => {
      const { picker } = make(8);
      const a = join(picker, peer(8));
      const reqs = picker.pick(a, 3, 2);
      expect(picker.outstanding(a)).to.equal(3);
      deliver(picker, a, reqs.slice(0, 1));
      expect(picker.outstanding(a)).to.equal(2);
      const taken = picker.release(a);
      expect(taken.map((r) => r.key)).to.deep.equal(reqs.slice(1).map((r) => r.key));
      expect(picker.outstanding(a)).to.equal(0);
    });

    it('keeps a piece with the peer that started it; a released piece is an orphan another peer adopts', () => {
      const { picker } = make(8, [4, 5, 6, 7]);
      const a = join(picker, peer(8));
      const b = join(picker, peer(8));
      const first = picker.pick(a, 1, 1);
      expect(first).to.have.length(1);
      const piece = first[0]!.index;
      // a owns the piece: b starts another one rather than its second block.
      expect(started(picker.pick(b, 1, 1))).to.not.include(piece);
      picker.release(a);
      const adopted = picker.pick(b, 2, 2);
      expect(adopted.some((r) => r.index === piece && r.begin === 0), 'the orphan block comes first').to.equal(true);
      expect(picker.active.get(piece)!.owner).to.equal(b);
    });

    it('returns a completed piece once; the same block again, unasked, is unrequested; a block that does not fit is bad', () => {
      const { picker } = make(4);
      const a = join(picker, peer(4));
      const reqs = picker.pick(a, 2, 1);
      const [done] = deliver(picker, a, reqs);
      expect(done!.index).to.equal(reqs[0]!.index);
      expect(done!.buffer.subarray(0, 2).equals(Buffer.from([done!.index, done!.index]))).to.equal(true);
      expect(picker.received(a, reqs[0]!.index, 0, Buffer.alloc(BLOCK_LENGTH))).to.equal('unrequested');
      const other = picker.pick(a, 1, 1)[0]!;
      expect(picker.received(a, other.index, 100, Buffer.alloc(BLOCK_LENGTH))).to.equal('bad');
      expect(picker.received(a, other.index, 0, Buffer.alloc(BLOCK_LENGTH - 1))).to.equal('bad');
      expect(picker.received(a, 99, 0, Buffer.alloc(BLOCK_LENGTH))).to.equal('bad');
    });

    it('counts the blocks queued before a piece at a peer (what stands before a streamed piece)', () => {
      const { picker } = make(8, [0, 1, 2, 3]);
      const a = join(picker, peer(8));
      const reqs = picker.pick(a, 8, 4);
      const order = started(reqs);
      expect(picker.queuedBefore(a, order[0]!)).to.equal(0);
      expect(picker.queuedBefore(a, order[2]!)).to.equal(4);
      expect(picker.queuedBefore(a, 99), 'nothing of that piece: all of its queue').to.equal(8);
    });
  });

  describe('blocks nobody asked for', () => {
    it('takes a block only from the peer it was asked of; anything else is unrequested and lands nowhere', () => {
      const { picker } = make(4);
      const a = join(picker, peer(4));
      const stranger = join(picker, peer(4));
      const [r] = picker.pick(a, 1, 1);
      expect(picker.received(stranger, r!.index, r!.begin, Buffer.alloc(r!.length, 9))).to.equal('unrequested');
      expect(picker.received(stranger, 3, 0, Buffer.alloc(BLOCK_LENGTH)), 'a piece nobody fetches').to.equal('unrequested');
      expect(picker.active.get(r!.index)!.received[0], 'the garbage was not taken').to.equal(0);
      expect(picker.received(a, r!.index, r!.begin, Buffer.alloc(r!.length, 1))).to.equal(null);
      expect(picker.active.get(r!.index)!.from[0]).to.equal(a);
    });

    it('still takes a block let go of (released, cancelled in end-game): it may have been on the wire', () => {
      const { picker } = make(4, [0, 1, 2]);
      const a = join(picker, peer(4));
      const b = join(picker, peer(4));
      const [first, second] = picker.pick(a, 2, 1);
      picker.release(a); // a choked us, or stalled: its requests go back to the pool
      expect(picker.received(a, first!.index, first!.begin, Buffer.alloc(first!.length))).to.equal(null);
      picker.pick(b, 2, 2);
      picker.received(b, second!.index, second!.begin, Buffer.alloc(second!.length));
      expect(picker.received(a, second!.index, second!.begin, Buffer.alloc(second!.length)), 'late, and already here').to.equal('dup');
      expect(picker.received(a, second!.index, second!.begin, Buffer.alloc(second!.length)), 'but only once').to.equal('unrequested');
    });
  });

  describe('end-game', () => {
    it('when nothing new is left, asks a second peer for outstanding blocks, and names it for a CANCEL when the first delivers', () => {
      const { picker } = make(4, [0, 1, 2]);
      const a = join(picker, peer(4));
      const b = join(picker, peer(4));
      const fromA = picker.pick(a, 2, 2);
      expect(started(fromA)).to.deep.equal([3]);
      expect(picker.endgame).to.equal(true);
      const fromB = picker.pick(b, 2, 2);
      expect(fromB.map((r) => r.key).sort()).to.deep.equal(fromA.map((r) => r.key).sort());
      expect(picker.pick(b, 2, 2), 'never the same block twice to one peer').to.deep.equal([]);
      const r = fromA[0]!;
      picker.received(a, r.index, r.begin, Buffer.alloc(r.length));
      expect(picker.cancelDuplicates(a, r.index, r.begin)).to.deep.equal([b]);
      expect(picker.outstanding(b)).to.equal(1);
    });

    it('after a hash failure fetches the piece again from a single peer: no end-game duplicates for it', () => {
      const { picker } = make(4, [0, 1, 2]);
      const a = join(picker, peer(4));
      const b = join(picker, peer(4));
      const reqs = picker.pick(a, 1, 2);
      const dupOfA = picker.pick(b, 2, 2);
      expect(dupOfA.length, 'end-game: b gets the other block and a duplicate').to.be.greaterThan(0);
      // Blocks from both peers: nobody can be blamed for a bad hash.
      const [done] = [...deliver(picker, a, reqs), ...deliver(picker, b, dupOfA)];
      expect(done!.contributors.size).to.equal(2);
      picker.failed(done!.index);
      const again = picker.pick(a, 2, 2);
      expect(started(again)).to.deep.equal([3]);
      expect(picker.active.get(3)!.exclusive).to.equal(true);
      expect(picker.pick(b, 2, 2), 'an exclusive piece is not duplicated').to.deep.equal([]);
    });
  });

  describe('streaming windows', () => {
    it('starts the pieces of the newest window before rarest-first, in order', () => {
      const { picker } = make(100);
      const p = join(picker, peer(100));
      picker.prioritize(90, 3);
      // Owning at most one piece, a peer may still start one urgent piece beyond that bound.
      expect(started(picker.pick(p, 4, 1))).to.deep.equal([90, 91]);
      const more = started(picker.pick(p, 200, 4));
      expect(more[0]).to.equal(92);
      expect(more.slice(1).every((i) => i < 90 || i > 92), 'then the usual order elsewhere').to.equal(true);
      expect(more).to.have.length.greaterThan(1);
    });

    it('takes an orphan of a window before anything else', () => {
      const { picker } = make(100, [0, 1, 2, 3]);
      const a = join(picker, peer(100));
      const b = join(picker, peer(100));
      picker.prioritize(50, 1);
      expect(started(picker.pick(a, 1, 1))).to.deep.equal([50]);
      picker.release(a);
      expect(started(picker.pick(b, 1, 1))).to.deep.equal([50]);
    });

    it('remembers only the latest windows, and drops one whose pieces are all verified', () => {
      const { picker } = make(100);
      for (let w = 0; w < MAX_PRIORITY_WINDOWS + 2; w++) picker.prioritize(w * 10, 2);
      const windows = picker.priorityWindows();
      expect(windows).to.have.length(MAX_PRIORITY_WINDOWS);
      expect(windows[0]).to.deep.equal({ from: (MAX_PRIORITY_WINDOWS + 1) * 10, to: (MAX_PRIORITY_WINDOWS + 1) * 10 + 2 });
      picker.prioritize(98, 8);
      expect(picker.priorityWindows()[0]).to.deep.equal({ from: 98, to: 100 }, 'clamped to the torrent');
      picker.verified(98);
      expect(picker.priorityWindows()[0]!.from).to.equal(98);
      picker.verified(99);
      expect(picker.priorityWindows().map((w) => w.from)).to.not.include(98);
      picker.prioritize(-1);
      picker.prioritize(100);
      expect(picker.priorityWindows().map((w) => w.from)).to.not.include(100);
    });
  });

  describe('the fast extension (BEP 6): allowed-fast and suggested pieces', () => {
    it('asks a peer that chokes us for its allowed-fast pieces only, orphans and end-game included', () => {
      const { picker } = make(16, [0, 1, 2, 3]);
      const other = join(picker, peer(16));
      const orphan = picker.pick(other, 1, 1)[0]!.index;
      picker.release(other);
      const a = join(picker, peer(16));
      const allowed = new Set([5, 9, 12, 13].filter((i) => i !== orphan).slice(0, 3));
      const reqs = picker.pick(a, 100, 10, { only: (i) => allowed.has(i) });
      expect(started(reqs).sort((x, y) => x - y)).to.deep.equal([...allowed].sort((x, y) => x - y));
      expect(reqs.some((r) => r.index === orphan), 'not even the orphan of another peer').to.equal(false);
      expect(picker.pick(a, 100, 10, { only: () => false }), 'nothing outside the set, not even end-game duplicates').to.deep.equal([]);
      expect(picker.pick(a, 100, 10, { only: (i) => i === 0 }), 'a piece we have is never asked').to.deep.equal([]);
    });

    it('of its own pieces, a peer that chokes us is asked only for the allowed ones', () => {
      const { picker } = make(8);
      const a = join(picker, peer(8));
      const owned = started(picker.pick(a, 3, 2)); // one whole piece and the first block of a second
      expect(owned).to.have.length(2);
      const [first, second] = owned as [number, number];
      picker.release(a, (i) => i === second);
      const more = picker.pick(a, 100, 10, { only: (i) => i === second });
      expect(started(more)).to.deep.equal([second]);
      expect(picker.active.get(first)!.owner, 'the other piece went to the orphans').to.equal(null);
    });

    it('release keeps the requests and pieces it is told to keep, and forgets the rest', () => {
      const { picker } = make(8);
      const a = join(picker, peer(8));
      const reqs = picker.pick(a, 4, 2);
      const [p, q] = started(reqs) as [number, number];
      const taken = picker.release(a, (i) => i === p);
      expect(taken.every((r) => r.index === q)).to.equal(true);
      expect(picker.outstanding(a)).to.equal(reqs.filter((r) => r.index === p).length);
      expect(picker.active.get(p)!.owner).to.equal(a);
      expect(picker.active.get(q)!.owner).to.equal(null);
      expect(deliver(picker, a, reqs.filter((r) => r.index === p)).map((ap) => ap.index), 'the kept piece completes').to.deep.equal([p]);
    });

    it('starts the pieces a peer suggested first, newest first, but after a streaming window', () => {
      const { picker } = make(64, [0, 1, 2, 3, 4, 5]);
      const a = join(picker, peer(64));
      expect(started(picker.pick(a, 2, 1, { prefer: [40, 7] }))).to.deep.equal([40]);
      expect(started(picker.pick(a, 2, 2, { prefer: [40, 7] })), 'the next suggestion once 40 is under way').to.deep.equal([7]);
      const b = join(picker, peer(64));
      expect(started(picker.pick(b, 2, 1, { prefer: [63, 0] })), 'a piece we have is no hint').to.deep.equal([63]);
      const c = join(picker, peer(64, (i) => i !== 50));
      picker.prioritize(30, 1);
      expect(started(picker.pick(c, 2, 1, { prefer: [50, 20] })), 'the window first').to.deep.equal([30]);
      expect(started(picker.pick(c, 2, 2, { prefer: [50, 20] })), 'then the suggestion it has').to.deep.equal([20]);
    });
  });
});
