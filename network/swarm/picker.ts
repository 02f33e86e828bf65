import { BLOCK_LENGTH } from '../wire/peer-wire.js';
import type { Bitfield } from '../wire/bitfield.js';
import { PriorityWindows, type Window } from './priority-windows.js';
import { IdlePieces } from './idle-pieces.js';
import { ActivePiece, type BlockRequest, type Geometry, type PickerPeer, type Received } from './active-piece.js';

export { ActivePiece, type BlockRequest, type Geometry, type PickerPeer, type Received } from './active-piece.js';
export { DEFAULT_PRIORITY_WINDOW, MAX_PRIORITY_WINDOWS } from './priority-windows.js';

/** A peer's outstanding requests and the pieces it fetches: kept here only, never on the peer. */
interface PeerRequests<P extends PickerPeer> {
  /** Keys (index * blocksPerPiece + block) requested and not yet received, in the order asked. */
  readonly keys: Set<number>;
  /** Pieces this peer started (or adopted) and is fetching. */
  readonly owned: Set<ActivePiece<P>>;
  /** Keys we stopped waiting for (released, cancelled) that it may still send: taken if they come. */
  readonly late: Set<number>;
}

/** What a peer's pick may take beyond what it has. */
export interface PickOptions {
  /** Only these pieces (a peer that chokes us serves its allowed-fast pieces only, BEP 6). */
  only?: (index: number) => boolean;
  /** Start these first among new pieces, in this order (pieces the peer suggested, BEP 6). */
  prefer?: readonly number[];
}

/** Late keys remembered per peer: what can be on the wire after a CANCEL (a full queue, and then some). */
const MAX_LATE = 1024;

const enum PieceState {
  Needed,
  Active,
  Verifying,
  Have,
  /** Not wanted: no selected file has a byte in it. Never asked for. */
  Skipped,
}

/**
 * Until this many pieces are verified, a new piece is picked at random among those the peer
 * has rather than rarest first: the first pieces should come fast (a random piece is as good
 * as any to trade with), and rarest-first needs availability we barely know yet (libtorrent's
 * initial picker threshold).
 */
export const RANDOM_FIRST_PIECES = 4;

/**
 * Chooses which blocks to ask which peer for, and is the one owner of who was asked for
 * what: a peer's outstanding requests, the pieces it fetches and each block's request count
 * live here and nowhere else. Random for the first few pieces, then rarest first: needed,
 * idle pieces sit in buckets by availability (IdlePieces). Only wanted pieces (those of the
 * selected files) are ever needed; the others are skipped. Each peer owns the pieces it starts, which keeps a piece's
 * blocks from one source (exact blame on a hash failure, sequential reads for the seed); a
 * piece whose owner leaves is an orphan that any peer having it adopts. When nothing new is
 * left, end-game asks a second peer for blocks still outstanding. Pieces in a streaming
 * window (PriorityWindows) are started before anything else.
 */
export class PiecePicker<P extends PickerPeer = PickerPeer> {
  readonly blocksPerPiece: number;
  readonly active = new Map<number, ActivePiece<P>>();
  private readonly state: Uint8Array;
  private readonly exclusive: Uint8Array;
  private readonly orphans = new Set<ActivePiece<P>>();
  private readonly peers = new Map<P, PeerRequests<P>>();
  private readonly idleSet: IdlePieces;
  private haveCount = 0;
  private readonly windows: PriorityWindows;
  private wanted: Bitfield | null;

  /** `wanted`: the pieces to fetch (those of the selected files); every piece when absent. */
  constructor(
    private readonly g: Geometry,
    have: Bitfield,
    private readonly allocate: () => Buffer | null,
    private readonly maxDuplicates = 2,
    wanted?: Bitfield,
  ) {
    this.wanted = wanted ?? null;
    this.blocksPerPiece = Math.ceil(g.pieceLength / BLOCK_LENGTH);
    this.state = new Uint8Array(g.pieceCount);
    this.exclusive = new Uint8Array(g.pieceCount);
    this.idleSet = new IdlePieces(g.pieceCount);
    this.windows = new PriorityWindows(g.pieceCount);
    for (let i = 0; i < g.pieceCount; i++) {
      if (have.get(i)) {
        this.state[i] = PieceState.Have;
        this.haveCount++;
      } else if (this.wanted && !this.wanted.get(i)) this.state[i] = PieceState.Skipped;
      else this.insert(i);
    }
  }

  /**
   * Fetch these pieces from now on: a needed piece no longer wanted is skipped, a skipped one
   * wanted again is needed. Pieces being fetched or verified finish either way.
   */
  want(wanted: Bitfield): void {
    this.wanted = wanted;
    for (let i = 0; i < this.g.pieceCount; i++) {
      const s = this.state[i];
      if (s === PieceState.Needed && !wanted.get(i)) {
        this.remove(i);
        this.state[i] = PieceState.Skipped;
      } else if (s === PieceState.Skipped && wanted.get(i)) this.insert(i);
    }
  }

  /** Pieces needed and not being fetched. */
  get idle(): number {
    return this.idleSet.size;
  }

  get endgame(): boolean {
    return this.idleSet.size === 0;
  }

  addAvailability(bits: Bitfield): void {
    for (let i = 0; i < bits.length; i++) if (bits.get(i)) this.idleSet.bump(i, 1);
  }

  removeAvailability(bits: Bitfield): void {
    for (let i = 0; i < bits.length; i++) if (bits.get(i)) this.idleSet.bump(i, -1);
  }

  addHave(i: number): void {
    this.idleSet.bump(i, 1);
  }

  /** Does `peer` have any piece we still need? */
  interesting(peer: P): boolean {
    for (let i = 0; i < this.g.pieceCount; i++) if (this.isNeeded(i) && peer.bitfield.get(i)) return true;
    return false;
  }

  /** Wanted and not verified yet (needed, being fetched or being verified). */
  isNeeded(i: number): boolean {
    return this.state[i] !== PieceState.Have && this.state[i] !== PieceState.Skipped;
  }

  /** Fetch pieces `from` .. `from + count - 1` before anything else (a reader waits there). */
  prioritize(from: number, count?: number): void {
    this.windows.add(from, count);
  }

  /** The priority windows now, newest first (for tests and the dashboard). */
  priorityWindows(): Window[] {
    return this.windows.list();
  }

  /** Requests sent to `peer` and not answered yet. */
  outstanding(peer: P): number {
    return this.peers.get(peer)?.keys.size ?? 0;
  }

  /**
   * Blocks `peer` was asked for before the first one of piece `index` (all it has queued when
   * it was asked for nothing of that piece): what stands before that piece at the peer.
   */
  queuedBefore(peer: P, index: number): number {
    let ahead = 0;
    for (const key of this.peers.get(peer)?.keys ?? []) {
      if (Math.floor(key / this.blocksPerPiece) === index) break;
      ahead++;
    }
    return ahead;
  }

  /**
   * Up to `max` new requests for `peer`. `maxOwned` bounds the pieces one peer works on at
   * once (its request queue spans that many). `opts.only` narrows what it may be asked for,
   * `opts.prefer` names new pieces to start first (after the streaming windows).
   */
  pick(peer: P, max: number, maxOwned: number, opts: PickOptions = {}): BlockRequest[] {
    const out: BlockRequest[] = [];
    const mine = this.requestsOf(peer).owned;
    const { only, prefer } = opts;
    const has = only ? (i: number) => peer.bitfield.get(i) && only(i) : (i: number) => peer.bitfield.get(i);
    // A piece a reader waits for is asked first, before this peer's own unfinished ones, and
    // may take one slot beyond the usual bound: an orphan of a window, or an idle piece.
    if (mine.size <= maxOwned) {
      const urgent = this.prioritizedStart(has);
      if (urgent instanceof ActivePiece) {
        this.orphans.delete(urgent);
        urgent.owner = peer;
        mine.add(urgent);
        this.take(peer, urgent, max, out);
      } else if (urgent >= 0 && !this.begin(peer, urgent, mine, max, out)) return out;
    }
    for (const ap of mine) if ((!only || only(ap.index)) && this.take(peer, ap, max, out) >= max) return out;
    for (const ap of this.orphans) {
      if (out.length >= max) return out;
      if (!has(ap.index)) continue;
      this.orphans.delete(ap);
      ap.owner = peer;
      mine.add(ap);
      this.take(peer, ap, max, out);
    }
    for (;;) {
      if (out.length >= max) break;
      const more = mine.size <= maxOwned ? this.prioritized(has) : -1;
      const i = more >= 0 ? more : mine.size < maxOwned ? this.preferred(prefer, has) ?? this.next(has) : -1;
      if (i < 0 || !this.begin(peer, i, mine, max, out)) break;
    }
    if (out.length === 0 && this.idleSet.size === 0) this.endgamePick(peer, has, max, out);
    return out;
  }

  /**
   * A block arrived. Returns the piece if this block completed it (it is then out of the
   * active set and awaits verification), 'dup' for a block we already have or did not
   * expect, 'bad' for a block that does not fit the piece.
   */
  received(peer: P, index: number, begin: number, block: Uint8Array): Received<P> {
    if (index >= this.g.pieceCount) return 'bad';
    const key = index * this.blocksPerPiece + Math.floor(begin / BLOCK_LENGTH);
    const r = this.peers.get(peer);
    // Only what we asked this peer for (or asked and then let go: it may be on the wire) is taken.
    const asked = r !== undefined && (r.keys.delete(key) || r.late.delete(key));
    const ap = this.active.get(index);
    if (!ap) return asked ? 'dup' : 'unrequested';
    if (begin % BLOCK_LENGTH !== 0) return 'bad';
    const b = begin / BLOCK_LENGTH;
    if (b >= ap.blocks || block.length !== ap.blockLength(b)) return 'bad';
    if (!asked) return 'unrequested';
    if (ap.received[b]) return 'dup';
    if (ap.requests[b]! > 0) ap.requests[b]!--;
    ap.buffer.set(block, begin);
    ap.received[b] = 1;
    ap.from[b] = peer;
    ap.contributors.add(peer);
    if (++ap.receivedCount < ap.blocks) return null;
    this.active.delete(index);
    this.disown(ap);
    this.state[index] = PieceState.Verifying;
    return ap;
  }

  /**
   * End-game: a block arrived from `from`; the other peers asked for the same block need not
   * send it. Their requests are forgotten here; the caller sends them CANCEL.
   */
  cancelDuplicates(from: P, index: number, begin: number): P[] {
    const key = index * this.blocksPerPiece + begin / BLOCK_LENGTH;
    const out: P[] = [];
    for (const [peer, r] of this.peers) {
      if (peer === from || !r.keys.delete(key)) continue;
      late(r, key);
      out.push(peer);
    }
    return out;
  }

  /**
   * `peer` refused one block (BEP 6 reject): the block may be asked of anyone again, and the
   * piece it belongs to becomes an orphan, so another peer can finish it. False for a block
   * it was not asked for.
   */
  rejected(peer: P, index: number, begin: number): boolean {
    const r = this.peers.get(peer);
    const ap = this.active.get(index);
    if (!r || !ap || begin % BLOCK_LENGTH !== 0) return false;
    const b = begin / BLOCK_LENGTH;
    if (!r.keys.delete(index * this.blocksPerPiece + b)) return false;
    if (ap.requests[b]! > 0) ap.requests[b]!--;
    if (ap.owner === peer) {
      r.owned.delete(ap);
      ap.owner = null;
      this.orphans.add(ap);
    }
    return true;
  }

  /**
   * Forget the outstanding requests of `peer` (choked us, stalled or left) so others can
   * fetch those blocks; the pieces it fetched become orphans any peer having them adopts.
   * Requests and pieces that `keep` names stay its own (a peer that chokes us still serves
   * its allowed-fast pieces, BEP 6). Returns the requests forgotten (to CANCEL them when it
   * is still connected).
   */
  release(peer: P, keep?: (index: number) => boolean): BlockRequest[] {
    const r = this.peers.get(peer);
    if (!r) return [];
    const out: BlockRequest[] = [];
    for (const key of r.keys) {
      const index = Math.floor(key / this.blocksPerPiece);
      if (keep?.(index)) continue;
      r.keys.delete(key);
      late(r, key);
      const ap = this.active.get(index);
      const b = key % this.blocksPerPiece;
      if (!ap) continue;
      if (ap.requests[b]! > 0) ap.requests[b]!--;
      out.push({ index, begin: b * BLOCK_LENGTH, length: ap.blockLength(b), key });
    }
    for (const ap of r.owned) {
      if (keep?.(ap.index)) continue;
      r.owned.delete(ap);
      ap.owner = null;
      this.orphans.add(ap);
    }
    return out;
  }

  /** `peer` left: release what it had, and forget it. */
  forget(peer: P): void {
    this.release(peer);
    this.peers.delete(peer);
  }

  verified(i: number): void {
    if (this.state[i] !== PieceState.Have) this.haveCount++;
    this.state[i] = PieceState.Have;
    this.windows.verified(i, (k) => this.state[k] === PieceState.Have);
  }

  /** The piece was verified but could not be written (the disk is full): fetch it again. */
  again(i: number): void {
    if (this.wanted && !this.wanted.get(i)) this.state[i] = PieceState.Skipped;
    else this.insert(i);
  }

  /** The piece failed its hash: fetch it again, from a single peer this time. */
  failed(i: number): void {
    this.exclusive[i] = 1;
    if (this.wanted && !this.wanted.get(i)) this.state[i] = PieceState.Skipped;
    else this.insert(i);
  }

  private requestsOf(peer: P): PeerRequests<P> {
    let r = this.peers.get(peer);
    if (!r) this.peers.set(peer, (r = { keys: new Set(), owned: new Set(), late: new Set() }));
    return r;
  }

  private take(peer: P, ap: ActivePiece<P>, max: number, out: BlockRequest[]): number {
    const keys = this.requestsOf(peer).keys;
    for (let b = 0; b < ap.blocks && out.length < max; b++) {
      if (ap.received[b] || ap.requests[b]) continue;
      const key = ap.index * this.blocksPerPiece + b;
      ap.requests[b] = 1;
      keys.add(key);
      out.push({ index: ap.index, begin: b * BLOCK_LENGTH, length: ap.blockLength(b), key });
    }
    return out.length;
  }

  private endgamePick(peer: P, has: (i: number) => boolean, max: number, out: BlockRequest[]): void {
    const keys = this.requestsOf(peer).keys;
    for (const ap of this.active.values()) {
      if (ap.exclusive || !has(ap.index)) continue;
      for (let b = 0; b < ap.blocks && out.length < max; b++) {
        const key = ap.index * this.blocksPerPiece + b;
        if (ap.received[b] || keys.has(key) || ap.requests[b]! >= this.maxDuplicates) continue;
        ap.requests[b]!++;
        keys.add(key);
        out.push({ index: ap.index, begin: b * BLOCK_LENGTH, length: ap.blockLength(b), key });
      }
      if (out.length >= max) return;
    }
  }

  private disown(ap: ActivePiece<P>): void {
    this.orphans.delete(ap);
    if (ap.owner) this.peers.get(ap.owner)?.owned.delete(ap);
    ap.owner = null;
  }

  /** Start fetching idle piece `i` from `peer`; false when no piece buffer is free. */
  private begin(peer: P, i: number, mine: Set<ActivePiece<P>>, max: number, out: BlockRequest[]): boolean {
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
  private prioritizedStart(has: (i: number) => boolean): ActivePiece<P> | number {
    for (const i of this.windows.pieces()) {
      if (!has(i)) continue;
      if (this.idleSet.has(i)) return i;
      const ap = this.active.get(i);
      if (ap && ap.owner === null && this.orphans.has(ap)) return ap;
    }
    return -1;
  }

  /** The first needed idle piece of the newest window that the peer has, or -1. */
  private prioritized(has: (i: number) => boolean): number {
    for (const i of this.windows.pieces()) if (this.idleSet.has(i) && has(i)) return i;
    return -1;
  }

  /** The first of `prefer` that is idle and the peer has, or undefined. */
  private preferred(prefer: readonly number[] | undefined, has: (i: number) => boolean): number | undefined {
    if (prefer) for (const i of prefer) if (i < this.g.pieceCount && this.idleSet.has(i) && has(i)) return i;
    return undefined;
  }

  /** The next idle piece to start for the peer: random for the first few, then rarest first; -1 if none. */
  private next(has: (i: number) => boolean): number {
    return this.haveCount < RANDOM_FIRST_PIECES ? this.idleSet.random(has) : this.idleSet.rarest(has);
  }

  private insert(i: number): void {
    this.state[i] = PieceState.Needed;
    this.idleSet.insert(i);
  }

  private remove(i: number): void {
    this.idleSet.remove(i);
  }
}

/** Remember a key `r`'s peer may still send; the oldest go beyond the bound. */
function late<P extends PickerPeer>(r: PeerRequests<P>, key: number): void {
  r.late.add(key);
  if (r.late.size > MAX_LATE) r.late.delete(r.late.values().next().value as number);
}
