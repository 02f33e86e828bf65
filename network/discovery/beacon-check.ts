/**
 * Which beacons a node believes (the bytes are network/wire/beacon-codec.ts; what a believed
 * beacon does is multicast.ts). A beacon counts only when, cheapest check first:
 *
 * 1. in a private swarm, its HMAC is the swarm's over this group and port (a node without
 *    the secret, or a beacon copied from another group, fails here); a node with no secret
 *    ignores beacons of private swarms, which it could not check;
 * 2. its node id is the one derived from its public key (no one can claim another's id);
 * 3. its timestamp is within `maxSkewMs` of our clock (an old beacon replayed later);
 * 4. it is newer than the last believed beacon of that id: a later timestamp, or the same
 *    timestamp with a nonce not yet seen (the copies a node sends on several links at once);
 * 5. its signature holds (Ed25519, about 0.1 ms: the costly check comes last, and only
 *    `verifyPerSecond` of them are done per second, fewer per source address, so a flood
 *    costs a bounded share of one core).
 *
 * Only a beacon that passed every check moves the replay state on, so a forged beacon with a
 * timestamp in the future cannot lock a node out. What fails is counted by reason.
 *
 * What this cannot stop: a beacon replayed within the window to a node that never heard a
 * newer one of its sender (it started since); it carries the sender's own signed content,
 * so at worst that node lists the sender a few intervals longer.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { idMatchesKey, verifySignature } from '../security/identity.js';
import { macInput, signingInput, type DecodedBeacon } from '../wire/beacon-codec.js';

/** Why a beacon was ignored; the counters are keyed by these. */
export type BeaconRejection =
  | 'malformed'
  | 'unauthenticated'
  | 'private'
  | 'forged-id'
  | 'impersonation'
  | 'stale'
  | 'replayed'
  | 'bad-signature'
  | 'rate-limited'
  | 'table-full';

export const BEACON_REJECTIONS: readonly BeaconRejection[] = [
  'malformed', 'unauthenticated', 'private', 'forged-id', 'impersonation', 'stale', 'replayed', 'bad-signature', 'rate-limited', 'table-full',
];

/** Beacons farther than this from our clock are refused (LAN clocks drift; replays get at most this long). */
export const DEFAULT_MAX_BEACON_SKEW_MS = 5 * 60_000;
/** Signatures checked per second at most, and per source address. */
export const DEFAULT_VERIFY_PER_SECOND = 2000;
export const DEFAULT_VERIFY_PER_SOURCE_PER_SECOND = 200;
/** Node ids whose last timestamp is remembered (oldest forgotten first). */
export const DEFAULT_REPLAY_IDS = 16_384;
/** Nonces remembered per id at its latest timestamp (one per link it beacons on). */
const NONCES_PER_STAMP = 8;

export interface BeaconCheckInit {
  /** beaconContext(group, port) of the group we listen on. */
  context: Buffer;
  /** Our own id and key: a beacon of ours comes back (loopback), one with our id and another key is an impersonation. */
  self: { id: string; publicKey: Buffer };
  /** The swarm's beacon key in a private swarm. */
  macKey?: Buffer;
  maxSkewMs?: number;
  verifyPerSecond?: number;
  verifyPerSourcePerSecond?: number;
  replayIds?: number;
}

export type BeaconVerdict = { ok: true } | { ok: false; reason: BeaconRejection | 'self'; detail: string };

interface Stamp {
  ts: number;
  nonces: string[];
}

export class BeaconCheck {
  private readonly maxSkewMs: number;
  private readonly stamps = new Map<string, Stamp>();
  private readonly replayIds: number;
  private readonly budget: { second: number; total: number; perSource: Map<string, number> } = { second: 0, total: 0, perSource: new Map() };

  constructor(private readonly init: BeaconCheckInit) {
    this.maxSkewMs = init.maxSkewMs ?? DEFAULT_MAX_BEACON_SKEW_MS;
    this.replayIds = init.replayIds ?? DEFAULT_REPLAY_IDS;
  }

  /** Judge one decoded beacon heard from `from`; a good one moves the replay state on. */
  check(b: DecodedBeacon, from: string, now = Date.now()): BeaconVerdict {
    const { self, macKey, context } = this.init;
    if (b.id === self.id) {
      if (b.publicKey.equals(self.publicKey)) return { ok: false, reason: 'self', detail: 'our own beacon' };
      return { ok: false, reason: 'impersonation', detail: `a beacon with our own node id ${b.id} and another key` };
    }
    if (macKey) {
      if (!b.mac) return { ok: false, reason: 'unauthenticated', detail: `no swarm hmac from ${b.id}: not a member of this private swarm` };
      const want = createHmac('sha256', macKey).update(macInput(context, b.macked)).digest();
      if (!timingSafeEqual(want, b.mac)) return { ok: false, reason: 'unauthenticated', detail: `wrong swarm hmac from ${b.id}: another secret, or copied from another group or port` };
    } else if (b.mac) {
      return { ok: false, reason: 'private', detail: `${b.id} beacons for a private swarm (it has a secret, we have none)` };
    }
    if (!idMatchesKey(b.id, b.publicKey)) return { ok: false, reason: 'forged-id', detail: `node id ${b.id} is not the id of the key it carries` };
    const skew = b.timestamp - now;
    if (Math.abs(skew) > this.maxSkewMs) {
      return { ok: false, reason: 'stale', detail: `timestamp ${Math.round(Math.abs(skew) / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} our clock (at most ${Math.round(this.maxSkewMs / 1000)} s): replayed, or a clock is wrong` };
    }
    const nonce = b.nonce.toString('hex');
    const last = this.stamps.get(b.id);
    if (last && (b.timestamp < last.ts || (b.timestamp === last.ts && last.nonces.includes(nonce)))) {
      return { ok: false, reason: 'replayed', detail: `not newer than the last beacon of ${b.id}` };
    }
    if (!this.spend(from, now)) return { ok: false, reason: 'rate-limited', detail: `more beacons than can be checked from ${from}` };
    if (!verifySignature(b.publicKey, signingInput(context, b.signed), b.signature)) {
      return { ok: false, reason: 'bad-signature', detail: `the signature of ${b.id} does not hold (forged, or made for another group or port)` };
    }
    this.remember(b.id, b.timestamp, nonce, last);
    return { ok: true };
  }

  private remember(id: string, ts: number, nonce: string, last: Stamp | undefined): void {
    if (last && last.ts === ts) {
      last.nonces.push(nonce);
      if (last.nonces.length > NONCES_PER_STAMP) last.nonces.shift();
    }
    this.stamps.delete(id); // re-inserted last: the map stays in least-recently-heard order
    if (this.stamps.size >= this.replayIds) this.stamps.delete(this.stamps.keys().next().value!);
    this.stamps.set(id, last && last.ts === ts ? last : { ts, nonces: [nonce] });
  }

  /** One signature check from `from` within this second's budgets? */
  private spend(from: string, now: number): boolean {
    const second = Math.floor(now / 1000);
    const b = this.budget;
    if (b.second !== second) {
      b.second = second;
      b.total = 0;
      b.perSource.clear();
    }
    const mine = b.perSource.get(from) ?? 0;
    if (b.total >= (this.init.verifyPerSecond ?? DEFAULT_VERIFY_PER_SECOND)) return false;
    if (mine >= (this.init.verifyPerSourcePerSecond ?? DEFAULT_VERIFY_PER_SOURCE_PER_SECOND)) return false;
    b.total++;
    b.perSource.set(from, mine + 1);
    return true;
  }
}
