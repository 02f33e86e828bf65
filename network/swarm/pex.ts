/**
 * Peer exchange (BEP 11) on one torrent: every minute each peer that takes `ut_pex` hears
 * which peers we connected to or lost since it last heard (50 of each at most), and what a
 * peer tells us becomes dial candidates. Bounded: a peer's own messages count at most one per
 * PEX_MIN_GAP_MS (more are ignored), each list is cut at decode, and the candidates are
 * bounded by the torrent. Never on a private torrent (BEP 27): it does not even offer it.
 */
import { decodePex, encodePex, MAX_PEX_PEERS } from '../wire/pex.js';
import { encodeExtendedMessage } from '../wire/extension.js';
import { hostPort } from '../util/addresses.js';
import type { PeerSession } from './peer-session.js';

/** How often a peer hears from us (BEP 11: no more than once a minute). */
export const PEX_INTERVAL_MS = 60_000;
/** A peer's messages closer together than this are ignored. */
const PEX_MIN_GAP_MS = 30_000;

type Endpoint = { host: string; port: number };

export class PeerExchange {
  /** What each peer was told last: the endpoints it knows from us. */
  private readonly told = new WeakMap<PeerSession, Map<string, Endpoint>>();
  private readonly lastSent = new WeakMap<PeerSession, number>();
  private readonly lastHeard = new WeakMap<PeerSession, number>();

  constructor(private readonly intervalMs = PEX_INTERVAL_MS) {}

  /**
   * If `session` is due, send it the peers it has not heard of and those gone since
   * (`connected` is everyone we are connected to now, it included: it is left out).
   */
  tick(session: PeerSession, connected: Iterable<PeerSession>, now: number): void {
    const id = session.extensionId('ut_pex');
    if (id === undefined || now - (this.lastSent.get(session) ?? 0) < this.intervalMs) return;
    const current = new Map<string, Endpoint>();
    for (const p of connected) {
      const port = p.listenPort;
      if (p === session || port === undefined) continue;
      const e = { host: p.peer.address, port };
      current.set(hostPort(e.host, e.port), e);
    }
    const before = this.told.get(session) ?? new Map<string, Endpoint>();
    const added = [...current].filter(([k]) => !before.has(k)).slice(0, MAX_PEX_PEERS);
    const dropped = [...before].filter(([k]) => !current.has(k)).slice(0, MAX_PEX_PEERS);
    this.lastSent.set(session, now);
    if (added.length === 0 && dropped.length === 0) return;
    const next = new Map(before);
    for (const [k] of dropped) next.delete(k);
    for (const [k, e] of added) next.set(k, e);
    this.told.set(session, next);
    session.send(encodeExtendedMessage(id, encodePex({ added: added.map(([, e]) => e), dropped: dropped.map(([, e]) => e) })));
  }

  /** A ut_pex message from `session`: the peers it names, or none when it speaks too often. WireError when malformed. */
  heard(session: PeerSession, payload: Uint8Array, now: number): Endpoint[] {
    const last = this.lastHeard.get(session);
    if (last !== undefined && now - last < PEX_MIN_GAP_MS) return [];
    this.lastHeard.set(session, now);
    return decodePex(payload).added;
  }
}
