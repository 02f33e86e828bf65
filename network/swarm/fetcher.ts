import { encodeCancel } from '../wire/peer-wire.js';
import { Bitfield } from '../wire/bitfield.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { Logger } from '../util/log.js';
import type { PieceWriter } from '../storage/stores.js';
import type { Hasher } from '../storage/part-file.js';
import { PiecePicker } from './picker.js';
import type { ActivePiece } from './active-piece.js';
import type { PeerSession } from './peer-session.js';
import type { SwarmLimits } from './limits.js';
import { queueStandingBefore, takeBackQueue } from './streaming.js';
import { verifyPiece } from './verifier.js';
import { Blame, blockDigests } from './blame.js';
import { diskFullCode } from '../util/errors.js';

/** Blocks a peer may send unasked (a race with our CANCEL is counted as late, not here) before it is closed. */
export const MAX_UNREQUESTED_BLOCKS = 64;

export interface FetcherInit {
  metainfo: Metainfo;
  writer: PieceWriter;
  hasher: Hasher;
  log: Logger;
  limits: SwarmLimits;
  /** The torrent's connected peers now. */
  peers(): ReadonlySet<PeerSession>;
  /** The torrent stopped: drop what is under way. */
  stopped(): boolean;
  /** Counters shared with the torrent's stats. */
  stats: { fetched: number; wasted: number; hashFailures: number };
  /** A remote peer broke the protocol: the torrent logs it and closes that connection. */
  violation(session: PeerSession, why: string): void;
  /** Never take this peer again (it sent corrupt data too often). */
  ban(session: PeerSession): void;
  /** A piece was verified and written. */
  verified(index: number): void;
  /** The last wanted piece was verified and written. */
  complete(): void;
  /** A local failure (disk, hash worker): the download cannot go on. */
  failed(err: Error): void;
  /** A verified piece could not be written: the disk is full. The piece is fetched again once there is room. */
  diskFull(err: Error): void;
}

/**
 * The download side of one torrent: fetch what we lack from the peers that have it. Keeps
 * the picker fed with what each peer has, tops up each peer's request pipeline, takes the
 * blocks that come back (end-game CANCELs for duplicates), verifies each completed piece
 * off the event loop and blames the sender of corrupt data (strikes, then a ban), re-asks
 * the blocks of a peer that stalls, and moves a streamed piece to the front. Seeds have none.
 */
export class Fetcher {
  readonly picker: PiecePicker<PeerSession>;
  private readonly blame = new Blame<PeerSession>();
  private done = false;

  constructor(private readonly init: FetcherInit) {
    const pool = init.writer.pool;
    this.picker = new PiecePicker<PeerSession>(init.metainfo, init.writer.have, () => pool.acquire(), undefined, init.writer.wanted);
    // Peers already connected (a fetcher made again for files selected after the last piece).
    for (const p of init.peers()) this.sawBitfield(p, new Bitfield(p.bitfield.length), p.bitfield);
  }

  /**
   * The selection of files changed: fetch the writer's wanted pieces from now on. Peers that
   * have one of them become interesting; when every wanted piece is here already, done.
   */
  reselect(): void {
    this.picker.want(this.init.writer.wanted);
    if (this.init.writer.done()) return this.finished();
    for (const p of this.init.peers()) if (this.picker.interesting(p)) p.setInterested(true);
    this.requestAll();
  }

  // ---- what peers have ------------------------------------------------------------------

  /** A peer's bitfield replaced `old` (an empty one for a new peer). */
  sawBitfield(session: PeerSession, old: Bitfield, bits: Bitfield): void {
    this.picker.removeAvailability(old);
    this.picker.addAvailability(bits);
    if (this.picker.interesting(session)) session.setInterested(true);
  }

  /** A peer announced piece `index` (new to us from it). */
  sawHave(session: PeerSession, index: number): void {
    this.picker.addHave(index);
    if (this.picker.isNeeded(index)) session.setInterested(true);
  }

  /** A peer left: its blocks go to the others at once. */
  left(session: PeerSession): void {
    this.picker.forget(session);
    this.picker.removeAvailability(session.bitfield);
    this.requestAll();
  }

  /** A peer refused one of our requests (BEP 6): someone else may take that block. */
  rejected(session: PeerSession, index: number, begin: number): void {
    if (this.picker.rejected(session, index, begin)) this.requestOthers(session);
  }

  /**
   * A peer choked us: what it had queued is asked of the others, but for its allowed-fast
   * pieces (BEP 6), which it still serves (or rejects one by one) and we go on asking it for.
   */
  choked(session: PeerSession): void {
    this.picker.release(session, session.fast ? (i) => session.allowsFast(i) : undefined);
    this.requestOthers(session);
    this.request(session);
  }

  // ---- requests and blocks --------------------------------------------------------------

  request(session: PeerSession): void {
    session.requestMore(this.picker, this.init.metainfo.pieceLength);
  }

  requestAll(): void {
    for (const p of this.init.peers()) this.request(p);
  }

  /** A block arrived from `session` (the torrent counted its bytes already). */
  onBlock(session: PeerSession, index: number, begin: number, block: Buffer): void {
    const picker = this.picker;
    const result = picker.received(session, index, begin, block);
    if (result === 'bad') return this.init.violation(session, `block ${index}/${begin}+${block.length} does not fit the torrent`);
    if (result === 'unrequested') {
      // Never asked of this peer: not taken (a poisoner's garbage cannot land in a piece), and a
      // peer that keeps sending such blocks is closed.
      this.init.stats.wasted += block.length;
      if (session.unrequestedBlock() > MAX_UNREQUESTED_BLOCKS) this.init.violation(session, `sent more than ${MAX_UNREQUESTED_BLOCKS} blocks it was not asked for`);
      return;
    }
    session.progressed();
    if (result === 'dup') {
      this.init.stats.wasted += block.length;
    } else {
      if (picker.endgame) {
        const cancel = encodeCancel(index, begin, block.length);
        for (const p of picker.cancelDuplicates(session, index, begin)) p.send(cancel);
      }
      if (result) this.verify(result);
    }
    this.request(session);
  }

  /** Streaming: fetch the pieces from `index` on before rarest-first, and ask for them now. */
  prioritize(index: number, count?: number): void {
    const picker = this.picker;
    picker.prioritize(index, count);
    if (picker.isNeeded(index)) {
      const owner = queueStandingBefore(picker, this.init.peers(), index);
      if (owner) takeBackQueue(owner, picker, this.init.log);
    }
    this.requestAll();
  }

  /**
   * Once a second per peer: a peer with requests outstanding that sent nothing for the
   * request timeout stalled (its blocks are asked elsewhere; too many stalls close it);
   * otherwise its queue depth follows its rate, and interest ends when it has nothing we need.
   */
  tick(session: PeerSession, now: number): void {
    const { picker } = this;
    const limits = this.init.limits;
    if (session.checkStall(now, picker.outstanding(session), limits.requestTimeoutMs)) {
      this.init.log.warn(
        { peer: session.label, outstanding: picker.outstanding(session), stalls: session.stalls },
        `peer sent nothing for ${limits.requestTimeoutMs} ms: re-asking its blocks elsewhere`,
      );
      picker.release(session);
      if (session.stalls >= limits.maxStalls) return this.init.violation(session, `stalled ${session.stalls} times`);
      return this.requestOthers(session);
    }
    session.adjustDepth(limits.maxQueueDepth);
    if (session.amInterested && picker.outstanding(session) === 0 && !picker.interesting(session)) session.setInterested(false);
    this.request(session);
  }

  private requestOthers(except: PeerSession): void {
    for (const p of this.init.peers()) if (p !== except) this.request(p);
  }

  // ---- verification ---------------------------------------------------------------------

  private verify(ap: ActivePiece<PeerSession>): void {
    const { metainfo, hasher, writer } = this.init;
    // Block digests only where they can name a liar: several sources, or a piece that failed before.
    const digests = ap.contributors.size > 1 || this.blame.has(ap.index) ? blockDigests(ap.buffer.subarray(0, ap.size)) : null;
    verifyPiece(ap, metainfo, hasher, writer, this.init.stopped)
      .then(
        (verdict) => {
          if (verdict === 'corrupt') this.hashFailed(ap, digests);
          else if (verdict === 'verified') this.verified(ap, digests);
        },
        (err: Error) => {
          if (this.init.stopped()) return;
          if (!diskFullCode(err)) return this.init.failed(err);
          this.picker.again(ap.index);
          this.init.diskFull(err);
        },
      )
      .finally(() => {
        if (!this.done) this.requestAll();
      });
  }

  private verified(ap: ActivePiece<PeerSession>, digests: Buffer[] | null): void {
    if (digests) for (const liar of this.blame.passed(ap.index, digests)) this.strike(liar, ap.index, 'sent a corrupt block of a piece with several sources');
    this.picker.verified(ap.index);
    this.init.stats.fetched += ap.size;
    this.init.verified(ap.index);
    if (this.init.writer.done()) this.finished();
  }

  private finished(): void {
    if (this.done) return;
    this.done = true;
    this.init.complete();
  }

  /**
   * The piece is fetched again from one peer. A peer that alone sent it takes a strike; with
   * several sources the blocks' digests are kept, and the good copy names the liar later.
   */
  private hashFailed(ap: ActivePiece<PeerSession>, digests: Buffer[] | null): void {
    const stats = this.init.stats;
    stats.hashFailures++;
    stats.wasted += ap.size;
    this.picker.failed(ap.index);
    if (ap.contributors.size !== 1) {
      this.init.log.warn({ piece: ap.index, peers: ap.contributors.size }, 'piece failed its hash check; fetching it again from a single peer');
      if (digests) this.blame.failed(ap.index, digests, ap.from);
      return;
    }
    const [session] = ap.contributors;
    if (session) this.strike(session, ap.index, 'peer sent corrupt data');
  }

  /** One more strike for `session`: banned at the limit. */
  private strike(session: PeerSession, piece: number, why: string): void {
    if (session.closed) return;
    const strikes = session.strike();
    this.init.log.warn({ peer: session.label, piece, strikes }, `piece failed its hash check: ${why}`);
    if (strikes >= this.init.limits.maxStrikes) {
      this.init.ban(session);
      this.init.violation(session, `sent ${strikes} corrupt pieces: banned`);
    }
  }
}
