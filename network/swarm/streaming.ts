/**
 * Streaming: a reader (a video element, an HTTP range request) waits for one piece. The
 * picker moves the piece and a few after it to the front (its priority windows); what a
 * peer has queued still comes first, which at a slow peer is seconds of data, so the queue
 * standing before the wanted piece is taken back with BEP 3 CANCELs and its pieces go back
 * to the pool (blocks already on the wire are still used).
 */
import { encodeCancel } from '../wire/peer-wire.js';
import type { Logger } from '../util/log.js';
import type { PiecePicker } from './picker.js';
import type { PeerSession } from './peer-session.js';

/** Blocks (16 KiB each) that may stand before a piece a reader waits for; more are cancelled. */
export const PREEMPT_AHEAD_BLOCKS = 16;

/**
 * Streaming: what a peer has queued comes before anything asked of it now, which at a slow
 * peer is seconds of data. The peer whose queue to take back so that piece `index` comes
 * next: the one fetching it, when more than PREEMPT_AHEAD_BLOCKS stand before it there; if
 * nobody fetches it, the fastest peer that has it and has more than that queued. Null when
 * no queue stands in the way (or the piece is an orphan, which the next pick adopts first).
 */
export function queueStandingBefore(picker: PiecePicker<PeerSession>, peers: ReadonlySet<PeerSession>, index: number): PeerSession | null {
  const ap = picker.active.get(index);
  if (ap) {
    const owner = ap.owner;
    if (!owner || !peers.has(owner)) return null;
    return picker.queuedBefore(owner, index) > PREEMPT_AHEAD_BLOCKS ? owner : null;
  }
  let best: PeerSession | null = null;
  for (const p of peers) {
    if (p.closed || p.peerChoking || !p.bitfield.get(index) || picker.outstanding(p) <= PREEMPT_AHEAD_BLOCKS) continue;
    if (!best || p.downloadRate() > best.downloadRate()) best = p;
  }
  return best;
}

/** Cancel what `owner` has queued (its pieces go back to the pool) so the wanted piece comes next. */
export function takeBackQueue(owner: PeerSession, picker: PiecePicker<PeerSession>, log: Logger): void {
  const taken = picker.release(owner);
  if (taken.length > 0) owner.send(Buffer.concat(taken.map((r) => encodeCancel(r.index, r.begin, r.length))));
  log.debug({ peer: owner.label, cancelled: taken.length }, 'streaming: took back a queue for a wanted piece');
}
