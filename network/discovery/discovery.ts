/**
 * The one interface every discovery source implements (multicast beacons, the bootstrap
 * client): it emits `peer` for each sighting of a node and `lost` when it stops seeing
 * one, owns its own cache lifetime (a source knows best when its sightings go stale), and
 * reports its health for the console and the dashboard. `start()` and `stop()` are safe to
 * call twice, and a source that cannot work (no multicast route, server down) says so in
 * its health and keeps retrying by itself rather than throwing out of `start()`.
 */
import type { EventEmitter } from 'node:events';

/** Where we heard of a peer. */
export type PeerSource = 'multicast' | 'bootstrap' | 'manual' | 'peer' | 'tracker' | 'magnet';
export const PEER_SOURCES: readonly PeerSource[] = ['multicast', 'bootstrap', 'manual', 'peer', 'tracker', 'magnet'];

/** A node as a discovery source saw it. */
export interface DiscoveredPeer {
  /** Stable node id (survives restarts); the registry's key. */
  id: string;
  host: string;
  port: number;
  name?: string;
  /** Changes at every start of that node, so a restart is noticed at once. */
  instance?: string;
}

export type HealthState = 'stopped' | 'starting' | 'ok' | 'failing';

export interface DiscoveryHealth {
  state: HealthState;
  /** Why it is failing (or what it does), one line for people. */
  detail?: string;
  /** When `state` last changed (ms since epoch). */
  since: number;
  /** Last time the source worked (sent or received, server answered). */
  lastOk?: number;
  /** What the source ignored since it started, by reason (beacons that failed their checks). */
  rejected?: Partial<Record<string, number>>;
}

/**
 * Why a source no longer vouches for a peer:
 * - `goodbye`: the peer said it is leaving (multicast GOODBYE);
 * - `expired`: the peer itself went quiet, or the authority dropped it (missed beacons;
 *   the bootstrap server no longer lists it);
 * - `gone`: this source stopped or lost its own view (our stop, the bootstrap server
 *   unreachable for a whole TTL): it says nothing about the peer.
 */
export type LostReason = 'goodbye' | 'expired' | 'gone';

export interface PeerDiscoveryEvents {
  /** A sighting: emitted again at every refresh, so the registry can track last-seen. */
  peer: [peer: DiscoveredPeer];
  /** The source no longer sees this node id. */
  lost: [id: string, reason: LostReason];
  health: [health: DiscoveryHealth];
}

export interface PeerDiscovery extends EventEmitter<PeerDiscoveryEvents> {
  readonly source: PeerSource;
  /** Idempotent; resolves once the source is running (or retrying in the background). */
  start(): Promise<void>;
  /** Idempotent; says goodbye where the source can, then releases sockets and timers. */
  stop(): Promise<void>;
  health(): DiscoveryHealth;
}
