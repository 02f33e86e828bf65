/**
 * Where the tracker keeps announced peers: the SwarmStore interface (after bittorrent-tracker,
 * so a shared or persistent store can stand in) and the in-memory one. Bounded four ways:
 * torrents, peers per torrent, peers per source address in all (so one host cannot fill the
 * memory) and per source address in one torrent. Past the torrent and address bounds an
 * announce is refused with a 503.
 *
 * A full torrent makes room fairly: the stalest peer of the address that holds the most of
 * it gives way, as long as that address holds more than the newcomer's would; otherwise the
 * newcomer is refused. So one address announcing a thousand ports fills only its own share
 * and then evicts itself, never the honest peers of other addresses. A peer counts in the
 * share of the address it is dialled at, as address-bucket.ts says (an IPv6 /64 is one),
 * except that each loopback address counts on its own: announces from this machine name
 * other hosts with `ip=` (a local proxy, tests, the tracker benchmark).
 */
import { TrackerRequestError, type AnnounceParams } from '../network/wire/tracker-codec.js';
import { addressBucket } from './address-bucket.js';
import { isLoopbackAddress } from '../network/util/addresses.js';

export const DEFAULT_MAX_TORRENTS = 100_000;
export const DEFAULT_MAX_PEERS_PER_TORRENT = 1000;
export const DEFAULT_MAX_PEERS_PER_ADDRESS = 1000;
/** Peers of one torrent from one address: a few clients behind one NAT, not a thousand ports. */
export const DEFAULT_MAX_PEERS_PER_ADDRESS_PER_TORRENT = 32;

export interface SwarmPeer {
  /** `host|port`: what a peer is dialled by, and all an announce can speak for. */
  key: string;
  host: string;
  port: number;
  peerId: Buffer;
  seeder: boolean;
  source: string;
  expiresAt: number;
}

export interface SwarmCounts {
  complete: number;
  incomplete: number;
  downloaded: number;
}

/** Where announced peers live; swap in another (shared, persistent) store behind this. */
export interface SwarmStore {
  /** Apply an announce; throws TrackerRequestError (503) past a bound. */
  announce(p: AnnounceParams, expiresAt: number): void;
  /** Up to `want` live peers of a torrent, other than `exceptKey`; seeders left out when `noSeeders`. */
  peers(infoHash: string, want: number, exceptKey: string, noSeeders: boolean, now: number): SwarmPeer[];
  has(infoHash: string, key: string): boolean;
  counts(infoHash: string): SwarmCounts;
  /** Drop peers that stopped announcing; returns how many. */
  expire(now: number): number;
}

/** A peer as the store keeps it: also where it sits in its swarm's `slots`, and the address share it counts in. */
interface StoredPeer extends SwarmPeer {
  slot: number;
  bucket: string;
}

interface Swarm {
  /** Insertion order is last-announce order: the first entry is the stalest. */
  peers: Map<string, StoredPeer>;
  /** The same peers in an array, so an answer starts at a random one without walking there. */
  slots: StoredPeer[];
  /** Peers per address share (addressBucket of their source). */
  byBucket: Map<string, number>;
  complete: number;
  downloaded: number;
}

export interface MemorySwarmStoreInit {
  maxTorrents?: number;
  maxPeersPerTorrent?: number;
  maxPeersPerAddress?: number;
  maxPeersPerAddressPerTorrent?: number;
}

export class MemorySwarmStore implements SwarmStore {
  private readonly swarms = new Map<string, Swarm>();
  private readonly perAddress = new Map<string, number>();
  private readonly maxTorrents: number;
  private readonly maxPeersPerTorrent: number;
  private readonly maxPeersPerAddress: number;
  private readonly maxPeersPerAddressPerTorrent: number;

  constructor(init: MemorySwarmStoreInit = {}) {
    this.maxTorrents = init.maxTorrents ?? DEFAULT_MAX_TORRENTS;
    this.maxPeersPerTorrent = init.maxPeersPerTorrent ?? DEFAULT_MAX_PEERS_PER_TORRENT;
    this.maxPeersPerAddress = init.maxPeersPerAddress ?? DEFAULT_MAX_PEERS_PER_ADDRESS;
    this.maxPeersPerAddressPerTorrent = init.maxPeersPerAddressPerTorrent ?? DEFAULT_MAX_PEERS_PER_ADDRESS_PER_TORRENT;
  }

  get torrents(): number {
    return this.swarms.size;
  }

  announce(p: AnnounceParams, expiresAt: number): void {
    const key = `${p.host}|${p.port}`;
    let swarm = this.swarms.get(p.infoHash);
    if (p.event === 'stopped') {
      if (swarm) this.drop(p.infoHash, swarm, key);
      return;
    }
    if (!swarm) {
      if (this.swarms.size >= this.maxTorrents) throw new TrackerRequestError('the tracker tracks as many torrents as it can', 503);
      swarm = { peers: new Map(), slots: [], byBucket: new Map(), complete: 0, downloaded: 0 };
      this.swarms.set(p.infoHash, swarm);
    }
    const seeder = p.left === 0;
    const old = swarm.peers.get(key);
    if (old) {
      swarm.peers.delete(key); // re-inserted below: keeps the map in staleness order
      if (old.seeder !== seeder) swarm.complete += seeder ? 1 : -1;
      if (p.event === 'completed' && !old.seeder) swarm.downloaded++;
      old.peerId = p.peerId;
      old.seeder = seeder;
      old.expiresAt = expiresAt;
      swarm.peers.set(key, old);
      return;
    }
    const bucket = isLoopbackAddress(p.host) ? p.host : addressBucket(p.host);
    const fromHere = this.perAddress.get(bucket) ?? 0;
    const refuse = (why: string): never => {
      if (swarm.peers.size === 0) this.swarms.delete(p.infoHash);
      throw new TrackerRequestError(why, 503);
    };
    if (fromHere >= this.maxPeersPerAddress) refuse('too many announces from this address');
    const mine = swarm.byBucket.get(bucket) ?? 0;
    if (mine >= this.maxPeersPerAddressPerTorrent) refuse('too many peers of this torrent from this address');
    if (swarm.peers.size >= this.maxPeersPerTorrent) {
      const victim = this.giveWay(swarm, mine + 1) ?? refuse('this torrent has as many peers as the tracker keeps');
      this.drop(p.infoHash, swarm, victim.key);
      if (!this.swarms.has(p.infoHash)) this.swarms.set(p.infoHash, swarm);
    }
    const peer: StoredPeer = { key, host: p.host, port: p.port, peerId: p.peerId, seeder, source: p.source, bucket, expiresAt, slot: swarm.slots.length };
    swarm.peers.set(key, peer);
    swarm.slots.push(peer);
    swarm.byBucket.set(bucket, mine + 1);
    this.perAddress.set(bucket, fromHere + 1);
    if (seeder) swarm.complete++;
    if (p.event === 'completed') swarm.downloaded++;
  }

  peers(infoHash: string, want: number, exceptKey: string, noSeeders: boolean, now: number): SwarmPeer[] {
    const swarm = this.swarms.get(infoHash);
    const out: SwarmPeer[] = [];
    if (!swarm || want <= 0) return out;
    // From a random starting point, so a large swarm hands different peers to each asker.
    const { slots } = swarm;
    const n = slots.length;
    const start = n > want ? Math.floor(Math.random() * n) : 0;
    for (let i = 0; i < n && out.length < want; i++) {
      const peer = slots[(start + i) % n]!;
      if (peer.key === exceptKey || peer.expiresAt <= now || (noSeeders && peer.seeder)) continue;
      out.push(peer);
    }
    return out;
  }

  has(infoHash: string, key: string): boolean {
    return this.swarms.get(infoHash)?.peers.has(key) ?? false;
  }

  counts(infoHash: string): SwarmCounts {
    const swarm = this.swarms.get(infoHash);
    if (!swarm) return { complete: 0, incomplete: 0, downloaded: 0 };
    return { complete: swarm.complete, incomplete: swarm.peers.size - swarm.complete, downloaded: swarm.downloaded };
  }

  expire(now: number): number {
    let dropped = 0;
    for (const [infoHash, swarm] of this.swarms) {
      for (const peer of swarm.peers.values()) {
        if (peer.expiresAt > now) continue;
        this.drop(infoHash, swarm, peer.key);
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * A full torrent's peer that gives way to a newcomer whose address would then hold `after`:
   * the stalest of the address holding the most, if that is at least `after` (see the top).
   */
  private giveWay(swarm: Swarm, after: number): StoredPeer | undefined {
    let most = 0;
    for (const n of swarm.byBucket.values()) most = Math.max(most, n);
    if (most < after) return undefined;
    for (const peer of swarm.peers.values()) if (swarm.byBucket.get(peer.bucket) === most) return peer; // in staleness order
    return undefined;
  }

  private drop(infoHash: string, swarm: Swarm, key: string): void {
    const peer = swarm.peers.get(key);
    if (!peer) return;
    swarm.peers.delete(key);
    const last = swarm.slots.pop()!;
    if (last !== peer) {
      swarm.slots[peer.slot] = last;
      last.slot = peer.slot;
    }
    if (peer.seeder) swarm.complete--;
    const n = (this.perAddress.get(peer.bucket) ?? 1) - 1;
    if (n > 0) this.perAddress.set(peer.bucket, n);
    else this.perAddress.delete(peer.bucket);
    const m = (swarm.byBucket.get(peer.bucket) ?? 1) - 1;
    if (m > 0) swarm.byBucket.set(peer.bucket, m);
    else swarm.byBucket.delete(peer.bucket);
    // Keep `downloaded` only while the torrent has peers: an empty swarm costs nothing.
    if (swarm.peers.size === 0) this.swarms.delete(infoHash);
  }
}
