import type { Logger } from '../util/log.js';
import { hostPort } from '../util/addresses.js';
import type { Peer, Hello, PeerTimeouts } from './peer.js';
import { Dial, PLAIN_TCP, type TransportPolicy } from './dial.js';

export type { TransportPolicy } from './dial.js';

export interface ConnectionsInit {
  /** The torrent's infohash: a dialled peer's handshake must name it. */
  infoHash: Buffer;
  /** Our handshake for this torrent, sent as soon as a dial connects. */
  handshake: Buffer;
  /** Connections per torrent, dialled and accepted together. */
  maxPeers: number;
  connectTimeoutMs: number;
  timeouts: PeerTimeouts;
  /** TCP or uTP, MSE or plain, and in which order (plain TCP when not given). */
  transport?: TransportPolicy;
  log: Logger;
  /** Peers connected now (sessions of the torrent). */
  connected(): number;
  /** Is this address connected already by a dial of ours? */
  isConnected(host: string, port: number): boolean;
  /** A dial completed its handshake: hand the transport to the torrent. */
  established(peer: Peer, hello: Hello): void;
  /** First back-off after a failed dial (doubling); RETRY_FIRST_MS by default. */
  retryFirstMs?: number;
  /** Candidates kept at most; MAX_CANDIDATES by default. */
  maxCandidates?: number;
}

interface Candidate {
  host: string;
  port: number;
  failures: number;
  nextTry: number;
}

/** Candidates remembered per torrent (trackers name up to 1000, peer exchange adds more). */
export const MAX_CANDIDATES = 2000;
/**
 * A candidate that failed this many dials in a row (about two minutes of back-off) is
 * forgotten: a source that still vouches for it names it again (a tracker's next answer, the
 * registry when the peer comes back), and a made-up one stops costing dials.
 */
export const FORGET_AFTER_FAILURES = 6;
/** Back-off after a failed dial: 2 s doubling, at most five minutes. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 300_000;
/** A connected peer that left is dialled again no sooner than this. */
const REDIAL_AFTER_CLOSE_MS = 5_000;
/** Two seeds have nothing to say to each other: not again for a long while. */
const REDIAL_SEED_MS = 10 * 60_000;

/**
 * Whom a torrent dials: the candidates every source named (trackers, the registry, hints),
 * each with its own back-off, dialled up to the torrent's connection limit, never twice at
 * once and never when banned. Bounded and pruned: a candidate that keeps failing is
 * forgotten, and when the list is full a newcomer takes the place of the one that failed
 * most (none that has not failed gives way). A dial's first message must be the handshake for this
 * torrent; then the transport goes to the torrent, which decides what else to refuse
 * (ourselves, duplicates, a full torrent).
 */
export class Connections {
  private readonly candidates = new Map<string, Candidate>();
  private readonly connecting = new Set<string>();
  /** Peer ids (hex) and addresses of peers that sent corrupt data. */
  private readonly banned = new Set<string>();
  /** Dials under way, cancelled by `stop()`. */
  private readonly dials = new Set<Dial>();
  private stopped = false;

  constructor(private readonly init: ConnectionsInit) {}

  /** Dial no more, and give up the dials under way (the torrent stopped). */
  stop(): void {
    this.stopped = true;
    for (const d of this.dials) d.cancel('torrent stopped');
    this.dials.clear();
  }

  /** Remember peers to dial (again, with back-off, if they drop while we still need pieces). */
  add(list: Iterable<{ host: string; port: number }>): void {
    for (const { host, port } of list) {
      const key = hostPort(host, port);
      if (this.candidates.has(key)) continue;
      if (this.candidates.size >= (this.init.maxCandidates ?? MAX_CANDIDATES) && !this.makeRoom()) return;
      this.candidates.set(key, { host, port, failures: 0, nextTry: 0 });
    }
  }

  /** Candidates known now. */
  get size(): number {
    return this.candidates.size;
  }

  has(host: string, port: number): boolean {
    return this.candidates.has(hostPort(host, port));
  }

  /** Forget the candidate that failed most (not one being dialled); false when none has failed. */
  private makeRoom(): boolean {
    let worst: string | null = null;
    let most = 0;
    for (const [key, c] of this.candidates) {
      if (c.failures > most && !this.connecting.has(key)) [worst, most] = [key, c.failures];
    }
    if (worst === null) return false;
    this.candidates.delete(worst);
    return true;
  }

  /** Dial every candidate that is due, up to the connection limit. */
  dial(): void {
    if (this.stopped) return;
    const now = Date.now();
    for (const [key, c] of this.candidates) {
      if (this.init.connected() + this.connecting.size >= this.init.maxPeers) return;
      if (c.nextTry > now || this.connecting.has(key) || this.banned.has(key)) continue;
      if (this.init.isConnected(c.host, c.port)) continue;
      this.open(key, c);
    }
  }

  /** Every candidate is due again at once (a resumed download). */
  resetBackoff(): void {
    for (const c of this.candidates.values()) {
      c.failures = 0;
      c.nextTry = 0;
    }
  }

  /** A connected peer left: if we dialled it, wait before dialling it again (long when both sides were seeds). */
  closed(peer: Peer, bothSeeds = false): void {
    const c = peer.outgoing ? this.candidates.get(peer.label) : undefined;
    if (c) c.nextTry = Date.now() + (bothSeeds ? REDIAL_SEED_MS : REDIAL_AFTER_CLOSE_MS);
  }

  ban(peer: Peer, peerId: Buffer): void {
    this.banned.add(peerId.toString('hex'));
    this.banned.add(peer.label);
  }

  isBanned(peer: Peer, peerId: Buffer): boolean {
    return this.banned.has(peerId.toString('hex')) || this.banned.has(peer.label);
  }

  private open(key: string, c: Candidate): void {
    this.connecting.add(key);
    const { infoHash, handshake, timeouts, connectTimeoutMs } = this.init;
    let dial: Dial | undefined;
    dial = new Dial({ host: c.host, port: c.port, infoHash, handshake, policy: this.init.transport ?? PLAIN_TCP, timeouts, connectTimeoutMs }, {
      established: (p, msg) => {
        if (dial) this.dials.delete(dial);
        this.connecting.delete(key);
        c.failures = 0;
        this.init.established(p, { peerId: msg.peerId, reserved: msg.reserved });
      },
      failed: (reason) => {
        if (dial) this.dials.delete(dial);
        this.connecting.delete(key);
        c.failures++;
        c.nextTry = Date.now() + Math.min(RETRY_MAX_MS, (this.init.retryFirstMs ?? RETRY_FIRST_MS) * 2 ** Math.min(c.failures, 8));
        if (c.failures >= FORGET_AFTER_FAILURES && this.candidates.get(key) === c) this.candidates.delete(key);
        this.init.log.debug({ peer: key, reason }, 'could not connect to peer');
      },
    });
    // A dial that failed at once (no way left to try) settled before it could be remembered.
    if (this.connecting.has(key)) this.dials.add(dial);
  }
}
