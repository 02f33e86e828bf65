import { BLOCK_LENGTH } from '../wire/peer-wire.js';
import type { Bitfield } from '../wire/bitfield.js';

/** What the picker needs to know of a peer. */
export interface PickerPeer {
  readonly bitfield: Bitfield;
  /** Keys (index * blocksPerPiece + block) of the blocks requested from this peer and not yet received. */
  readonly requested: Set<number>;
}

export interface Geometry {
  readonly pieceCount: number;
  readonly pieceLength: number;
  readonly length: number;
}

/** A piece being fetched: its buffer fills block by block. */
export class ActivePiece {
  readonly blocks: number;
  readonly received: Uint8Array;
  receivedCount = 0;
  /** Outstanding requests per block (more than one only in end-game). */
  readonly requests: Uint8Array;
  /** The peer fetching this piece; null when orphaned (its owner left or stalled). */
  owner: PickerPeer | null;
  readonly contributors = new Set<PickerPeer>();

  constructor(
    readonly index: number,
    readonly size: number,
    readonly buffer: Buffer,
    owner: PickerPeer,
    /** Fetched from one peer only, so a second hash failure names the liar exactly. */
    readonly exclusive: boolean,
  ) {
    this.blocks = Math.ceil(size / BLOCK_LENGTH);
    this.received = new Uint8Array(this.blocks);
    this.requests = new Uint8Array(this.blocks);
    this.owner = owner;
  }

  blockLength(b: number): number {
    return b === this.blocks - 1 ? this.size - b * BLOCK_LENGTH : BLOCK_LENGTH;
  }
}

const enum PieceState {
  Needed,
  Active,
  Verifying,
  Have,
}

/** Pieces a streaming window covers by default (from the piece a reader wants onwards). */
export const DEFAULT_PRIORITY_WINDOW = 8;
/** Streaming windows remembered; an older one is forgotten when a new one comes. */
export const MAX_PRIORITY_WINDOWS = 4;

export interface BlockRequest {
  index: number;
  begin: number;
  length: number;
  key: number;
}

/**
 * Chooses which blocks to ask which peer for. Rarest first: needed, idle pieces sit in
 * buckets by availability, so a pick is O(1) when the peer is a seed and a scan of one
 * bucket otherwise. Each peer owns the pieces it starts, which keeps a piece's blocks from
 * one source (exact blame on a hash failure, sequential reads for the seed); a piece whose
 * owner leaves is an orphan that any peer having it adopts. When nothing new is left,
 * end-game asks a second peer for blocks still outstanding.
 *
 * Streaming: a reader waiting at some byte sets a priority window (the next few pieces
 * from there); needed pieces inside the latest windows are started before rarest-first.
 */
export class PiecePicker {
  readonly blocksPerPiece: number;
  readonly active = new Map<number, ActivePiece>();
  private readonly availability: Uint32Array;
  private readonly state: Uint8Array;
  private readonly exclusive: Uint8Array;
  private readonly buckets: number[][] = [[]];
  private readonly pos: Int32Array;
  private readonly orphans = new Set<ActivePiece>();
  private readonly owned = new Map<PickerPeer, Set<ActivePiece>>();
  private idleCount = 0;
  /** Newest first: [from, to) piece ranges a reader is waiting on. */
  private windows: Array<{ from: number; to: number }> = [];

  constructor(
    private readonly g: Geometry,
    have: Bitfield,
    private readonly allocate: () => Buffer | null,
    private readonly maxDuplicates = 2,
  ) {
    this.blocksPerPiece = Math.ceil(g.pieceLength / BLOCK_LENGTH);
    this.availability = new Uint32Array(g.pieceCount);
    this.state = new Uint8Array(g.pieceCount);
    this.exclusive = new Uint8Array(g.pieceCount);
    this.pos = new Int32Array(g.pieceCount).fill(-1);
    for (let i = 0; i < g.pieceCount; i++) {
      if (have.get(i)) this.state[i] = PieceState.Have;
      else this.insert(i);
    }
  }

  /** Pieces needed and not being fetched. */
  get idle(): number {
    return this.idleCount;
  }

  get endgame(): boolean {
    return this.idleCount === 0;
  }

  addAvailability(bits: Bitfield): void {
    for (let i = 0; i < bits.length; i++) if (bits.get(i)) this.bump(i, 1);
  }

  removeAvailability(bits: Bitfield): void {
    for (let i = 0; i < bits.length; i++) if (bits.get(i)) this.bump(i, -1);
  }

  addHave(i: number): void {
    this.bump(i, 1);
  }

  /** Does `peer` have any piece we still need? */
  interesting(peer: PickerPeer): boolean {
    for (let i = 0; i < this.g.pieceCount; i++) if (this.state[i] !== PieceState.Have && peer.bitfield.get(i)) return true;
    return false;
  }

  isNeeded(i: number): boolean {
    return this.state[i] !== PieceState.Have;
  }

  /** Fetch pieces `from` .. `from + count - 1` before anything else (a reader waits there). */
  prioritize(from: number, count = DEFAULT_PRIORITY_WINDOW): void {
    if (!Number.isInteger(from) || from < 0 || from >= this.g.pieceCount) return;
    const w = { from, to: Math.min(this.g.pieceCount, from + Math.max(1, count)) };
    this.windows = [w, ...this.windows.filter((x) => x.from !== from)].slice(0, MAX_PRIORITY_WINDOWS);
  }

  /** The priority windows now, newest first (for tests and the dashboard). */
  priorityWindows(): Array<{ from: number; to: number }> {
    return this.windows.map((w) => ({ ...w }));
  }

  /**
   * Up to `max` new requests for `peer`, recorded in `peer.requested`. `maxOwned` bounds
   * the pieces one peer works on at once (its request queue spans that many).
   */
  pick(peer: PickerPeer, max: number, maxOwned: number): BlockRequest[] {
    const out: BlockRequest[] = [];
    let mine = this.owned.get(peer);
    if (!mine) this.owned.set(peer, (mine = new Set()));
    // A piece a reader waits for is asked first, before this peer's own unfinished ones, and
    // may take one slot beyond the usual bound: an orphan of a window, or an idle piece.
    if (mine.size <= maxOwned) {
      const urgent = this.prioritizedStart(peer);
      if (urgent instanceof ActivePiece) {
        this.orphans.delete(urgent);
        urgent.owner = peer;
        mine.add(urgent);
        this.take(peer, urgent, max, out);
      } else if (urgent >= 0 && !this.begin(peer, urgent, mine, max, out)) return out;
    }
    for (const ap of mine) if (this.take(peer, ap, max, out) >= max) return out;
    for (const ap of this.orphans) {
      if (out.length >= max) return out;
      if (!peer.bitfield.get(ap.index)) continue;
      this.orphans.delete(ap);
      ap.owner = peer;
      mine.add(ap);
      this.take(peer, ap, max, out);
    }
    for (;;) {
      if (out.length >= max) break;
      const more = mine.size <= maxOwned ? this.prioritized(peer) : -1;
      const i = more >= 0 ? more : mine.size < maxOwned ? this.rarest(peer) : -1;
      if (i < 0 || !this.begin(peer, i, mine, max, out)) break;
    }
    if (out.length === 0 && this.idleCount === 0) this.endgamePick(peer, max, out);
    return out;
  }

  /**
   * A block arrived. Returns the piece if this block completed it (it is then out of the
   * active set and awaits verification), 'dup' for a block we already have or did not
   * expect, 'bad' for a block that does not fit the piece.
   */
  received(peer: PickerPeer, index: number, begin: number, block: Uint8Array): ActivePiece | 'dup' | 'bad' | null {
    if (index >= this.g.pieceCount) return 'bad';
    const ap = this.active.get(index);
    if (!ap) return 'dup';
    if (begin % BLOCK_LENGTH !== 0) return 'bad';
    const b = begin / BLOCK_LENGTH;
    if (b >= ap.blocks || block.length !== ap.blockLength(b)) return 'bad';
    peer.requested.delete(index * this.blocksPerPiece + b);
    if (ap.received[b]) return 'dup';
    if (ap.requests[b]! > 0) ap.requests[b]!--;
    ap.buffer.set(block, begin);
    ap.received[b] = 1;
    ap.contributors.add(peer);
    if (++ap.receivedCount < ap.blocks) return null;
    this.active.delete(index);
    this.disown(ap);
    this.state[index] = PieceState.Verifying;
    return ap;
  }

  /** Forget the outstanding requests of `peer` (choked us, stalled or left) so others can fetch those blocks. */
  release(peer: PickerPeer): void {
    for (const key of peer.requested) {
      const ap = this.active.get(Math.floor(key / this.blocksPerPiece));
      const b = key % this.blocksPerPiece;
      if (ap && ap.requests[b]! > 0) ap.requests[b]!--;
    }
    peer.requested.clear();
    const mine = this.owned.get(peer);
    if (mine) {
      for (const ap of mine) {
        ap.owner = null;
        this.orphans.add(ap);
      }
      this.owned.delete(peer);
    }
  }

  verified(i: number): void {
    this.state[i] = PieceState.Have;
    if (this.windows.length > 0) this.windows = this.windows.filter((w) => !(i >= w.from && i < w.to) || !this.allHave(w));
  }

  /** The piece failed its hash: fetch it again, from a single peer this time. */
  failed(i: number): void {
    this.exclusive[i] = 1;
    this.insert(i);
  }

  private take(peer: PickerPeer, ap: ActivePiece, max: number, out: BlockRequest[]): number {
    for (let b = 0; b < ap.blocks && out.length < max; b++) {
      if (ap.received[b] || ap.requests[b]) continue;
      const key = ap.index * this.blocksPerPiece + b;
      ap.requests[b] = 1;
      peer.requested.add(key);
      out.push({ index: ap.index, begin: b * BLOCK_LENGTH, length: ap.blockLength(b), key });
    }
    return out.length;
  }

  private endgamePick(peer: PickerPeer, max: number, out: BlockRequest[]): void {
    for (const ap of this.active.values()) {
      if (ap.exclusive || !peer.bitfield.get(ap.index)) continue;
      for (let b = 0; b < ap.blocks && out.length < max; b++) {
        const key = ap.index * this.blocksPerPiece + b;
        if (ap.received[b] || peer.requested.has(key) || ap.requests[b]! >= this.maxDuplicates) continue;
        ap.requests[b]!++;
        peer.requested.add(key);
        out.push({ index: ap.index, begin: b * BLOCK_LENGTH, length: ap.blockLength(b), key });
      }
      if (out.length >= max) return;
    }
  }

  private disown(ap: ActivePiece): void {
    this.orphans.delete(ap);
    if (ap.owner) this.owned.get(ap.owner)?.delete(ap);
    ap.owner = null;
  }

  /** Start fetching idle piece `i` from `peer`; false when no piece buffer is free. */
  private begin(peer: PickerPeer, i: number, mine: Set<ActivePiece>, max: number, out: BlockRequest[]): boolean {
    const buffer = this.allocate();
    if (!buffer) return false;
    this.remove(i);
    this.state[i] = PieceState.Active;
    const size = i === this.g.pieceCount - 1 ? this.g.length - i * this.g.pieceLength : this.g.pieceLength;
    const ap = new ActivePiece(i, size, buffer, peer, this.exclusive[i] === 1);
    this.active.set(i, ap);
    mine.add(ap);
    this.take(peer, ap, max, out);
    return true;
  }

  /**
   * The first piece of the newest window that `peer` has and nobody fetches: an orphan
   * (started, its owner gone) or an idle piece (its index); -1 when there is none.
   */
  private prioritizedStart(peer: PickerPeer): ActivePiece | number {
    for (const w of this.windows) {
      for (let i = w.from; i < w.to; i++) {
        if (!peer.bitfield.get(i)) continue;
        if (this.pos[i]! >= 0) return i;
        const ap = this.active.get(i);
        if (ap && ap.owner === null && this.orphans.has(ap)) return ap;
      }
    }
    return -1;
  }

  /** The first needed idle piece of the newest window that `peer` has, or -1. */
  private prioritized(peer: PickerPeer): number {
    for (const w of this.windows) {
      for (let i = w.from; i < w.to; i++) if (this.pos[i]! >= 0 && peer.bitfield.get(i)) return i;
    }
    return -1;
  }

  private allHave(w: { from: number; to: number }): boolean {
    for (let i = w.from; i < w.to; i++) if (this.state[i] !== PieceState.Have) return false;
    return true;
  }

  /** The needed idle piece with the lowest availability that `peer` has, or -1. */
  private rarest(peer: PickerPeer): number {
    for (let a = 1; a < this.buckets.length; a++) {
      const bucket = this.buckets[a]!;
      const n = bucket.length;
      if (n === 0) continue;
      const start = (Math.random() * n) | 0;
      for (let k = 0; k < n; k++) {
        const i = bucket[(start + k) % n]!;
        if (peer.bitfield.get(i)) return i;
      }
    }
    return -1;
  }

  private bump(i: number, delta: number): void {
    if (i >= this.g.pieceCount) return;
    const was = this.pos[i]! >= 0;
    if (was) this.remove(i);
    this.availability[i] = Math.max(0, this.availability[i]! + delta);
    if (was) this.insert(i);
  }

  private insert(i: number): void {
    this.state[i] = PieceState.Needed;
    const a = this.availability[i]!;
    while (this.buckets.length <= a) this.buckets.push([]);
    const bucket = this.buckets[a]!;
    this.pos[i] = bucket.length;
    bucket.push(i);
    this.idleCount++;
  }

  private remove(i: number): void {
    const bucket = this.buckets[this.availability[i]!]!;
    const p = this.pos[i]!;
    const last = bucket.pop()!;
    if (last !== i) {
      bucket[p] = last;
      this.pos[last] = p;
    }
    this.pos[i] = -1;
    this.idleCount--;
  }
}
