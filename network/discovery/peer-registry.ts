/**
 * The one list of peers a node knows, merged from every source: multicast beacons, the
 * bootstrap server, peers given by hand, peers learnt from other peers (control `peers`),
 * trackers and magnet links. A peer is keyed by its node id when a source told us one
 * (multicast, bootstrap, learnt); peers known only by address (by hand, trackers) are
 * keyed by address until a sighting with an id at the same address merges them.
 *
 * For each peer it keeps the sources that vouch for it and when each last did, and
 * whether it answers. A peer lives as long as one source vouches for it: sources own their
 * lifetimes (multicast expires after missed beacons, the bootstrap after the server drops
 * it), except learnt, tracker and magnet sightings, which carry no liveness of their own
 * and fade after `learntTtlMs` or after repeated failures to reach them.
 *
 * Hearsay must not outlive the truth: when a first-hand source reports that a peer left
 * (GOODBYE) or went quiet (missed beacons, dropped by the server), its learnt, tracker and
 * magnet sightings go with it, and for `learntTtlMs` more hearsay about that node id is
 * ignored (other nodes may still be passing on the copy they have), until a first-hand
 * source sees it again.
 *
 * Sightings are claims: anyone on the LAN can make up ids (a key costs nothing) and name any
 * address in their beacons, to make every node dial an address of their choice. So at most
 * `maxUnverifiedPerHost` peers at one host may be waiting for their first answer; more
 * sightings there are refused until some answer or go (peers added by hand excepted). A
 * peer whose address answers as another node (`contact` with the id that answered) is
 * marked as not answering at once.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { LostReason, PeerSource } from './discovery.js';
import { isLoopbackAddress } from '../util/addresses.js';

export type { PeerSource } from './discovery.js';

export type Reachability = 'unknown' | 'yes' | 'no';

export interface KnownPeer {
  /** Registry key: `id:<node id>` or `addr:<host>:<port>`. */
  readonly key: string;
  id?: string;
  name?: string;
  host: string;
  port: number;
  instance?: string;
  sources: Set<PeerSource>;
  /** Last sighting per source (ms since epoch). */
  seen: Partial<Record<PeerSource, number>>;
  firstSeen: number;
  lastSeen: number;
  reachable: Reachability;
  /** Failed contacts in a row (reset by one success). */
  failures: number;
  lastContact?: number;
}

/** A sighting reported to the registry. */
export interface Sighting {
  id?: string;
  host: string;
  port: number;
  name?: string;
  instance?: string;
}

export interface PeerRegistryEvents {
  'peer-up': [peer: KnownPeer];
  'peer-down': [peer: KnownPeer];
  /**
   * Same node, new address or new instance (it restarted): reconnect where it matters. `id`:
   * a peer known by address only told us its node id, so its key changed from
   * `addr:<host>:<port>` to `id:<id>` (lists keyed by it must drop the old key).
   */
  'peer-changed': [peer: KnownPeer, what: 'address' | 'instance' | 'id'];
  /** Crossed from answering (or unknown) to not answering. */
  'peer-unreachable': [peer: KnownPeer];
}

/** Upper bound on peers we remember, so no source can grow the registry without limit. */
export const MAX_KNOWN_PEERS = 10_000;
/** Peers that only other peers vouch for: an untrusted source gets a smaller share. */
export const MAX_LEARNT_PEERS = 1_000;
/** How long a learnt, tracker or magnet sighting lasts without being repeated. */
export const DEFAULT_LEARNT_TTL_MS = 10 * 60_000;
/** Failed contacts in a row after which a peer counts as not answering. */
export const UNREACHABLE_AFTER = 3;
/** Peers at one host that have not answered yet (several nodes on one machine, not thousands). */
export const MAX_UNVERIFIED_PER_HOST = 16;
/** A peer that does not answer is asked again (by a search, a metainfo lookup) at most this often. */
export const RETRY_SILENT_MS = 60_000;

/** Sources that carry no liveness of their own: their sightings fade by time. */
const FADING: ReadonlySet<PeerSource> = new Set<PeerSource>(['peer', 'tracker', 'magnet']);

export interface PeerRegistryInit {
  /** This node: its own id and endpoints are never listed. */
  self?: { id?: string; port: number; hosts?: string[] };
  learntTtlMs?: number;
  maxPeers?: number;
  maxLearnt?: number;
  maxUnverifiedPerHost?: number;
}

export class PeerRegistry extends EventEmitter<PeerRegistryEvents> {
  private readonly peers = new Map<string, KnownPeer>();
  private readonly byAddr = new Map<string, KnownPeer>();
  /** Every listed peer by its host: how many there have not answered yet. */
  private readonly byHost = new Map<string, Set<KnownPeer>>();
  private readonly maxUnverifiedPerHost: number;
  /** Sightings refused because their host had as many peers waiting for a first answer as it may. */
  private crowdedCount = 0;
  private self: { id?: string; port: number; hosts: Set<string> } | null;
  private readonly learntTtlMs: number;
  private readonly maxPeers: number;
  private readonly maxLearnt: number;
  /** Node ids a first-hand source saw leave, and when: hearsay about them is ignored a while. */
  private readonly departed = new Map<string, number>();
  /** How many listed peers source 'peer' vouches for, kept in step so `see` never counts. */
  private learnt = 0;

  constructor(init: PeerRegistryInit = {}) {
    super();
    this.self = init.self ? { ...init.self, hosts: new Set(init.self.hosts ?? []) } : null;
    this.learntTtlMs = init.learntTtlMs ?? DEFAULT_LEARNT_TTL_MS;
    this.maxPeers = init.maxPeers ?? MAX_KNOWN_PEERS;
    this.maxLearnt = init.maxLearnt ?? MAX_LEARNT_PEERS;
    this.maxUnverifiedPerHost = init.maxUnverifiedPerHost ?? MAX_UNVERIFIED_PER_HOST;
  }

  /** Sightings refused since the start because their host had too many peers not yet answering. */
  get crowded(): number {
    return this.crowdedCount;
  }

  /** Tell the registry who we are once the port is known. */
  setSelf(self: { id?: string; port: number; hosts?: string[] }): void {
    this.self = { ...self, hosts: new Set(self.hosts ?? []) };
  }

  /**
   * Record a sighting. Returns the peer, or null when it was refused (our own id or
   * address, a bad port or host, or a bound reached).
   */
  see(source: PeerSource, s: Sighting): KnownPeer | null {
    if (!validEndpoint(s.host, s.port) || this.isSelf(s)) return null;
    const now = Date.now();
    if (s.id !== undefined && this.departed.has(s.id)) {
      if (!FADING.has(source)) this.departed.delete(s.id);
      else if (now - this.departed.get(s.id)! < this.learntTtlMs) return null;
      else this.departed.delete(s.id);
    }
    const addr = `${s.host}:${s.port}`;
    let peer = s.id ? this.peers.get(`id:${s.id}`) : undefined;
    if (!peer) {
      const atAddr = this.byAddr.get(addr);
      // An address-only entry gains the id; an entry of another node id at the same
      // address is a different node that has since taken the port, so it is not reused.
      if (atAddr && (!atAddr.id || !s.id || atAddr.id === s.id)) peer = atAddr;
    }
    if (!peer) {
      if (this.peers.size >= this.maxPeers) return null;
      if (source === 'peer' && this.learnt >= this.maxLearnt) return null;
      if (source !== 'manual' && this.unverifiedAt(s.host) >= this.maxUnverifiedPerHost) {
        this.crowdedCount++;
        return null;
      }
      peer = {
        key: s.id ? `id:${s.id}` : `addr:${addr}`,
        id: s.id,
        name: s.name,
        host: s.host,
        port: s.port,
        instance: s.instance,
        sources: new Set([source]),
        seen: { [source]: now },
        firstSeen: now,
        lastSeen: now,
        reachable: 'unknown',
        failures: 0,
      };
      this.peers.set(peer.key, peer);
      // An address where a node answered keeps pointing at it, whatever else claims the address.
      if (this.byAddr.get(addr)?.reachable !== 'yes') this.byAddr.set(addr, peer);
      this.hostSet(s.host).add(peer);
      if (source === 'peer') this.learnt++;
      this.emit('peer-up', peer);
      return peer;
    }
    const rekeyed = s.id !== undefined && !peer.id && this.rekey(peer, s.id);
    if (source === 'peer' && !peer.sources.has('peer')) this.learnt++;
    peer.sources.add(source);
    peer.seen[source] = now;
    peer.lastSeen = now;
    if (s.name) peer.name = s.name;
    const restarted = s.instance !== undefined && peer.instance !== undefined && s.instance !== peer.instance;
    if (s.instance !== undefined) peer.instance = s.instance;
    // A node seen at two addresses (two interfaces, a VPN) keeps the one it has: moving on
    // every beacon would flap. It moves when it restarted, or when its address stopped
    // answering.
    const moved = (peer.host !== s.host || peer.port !== s.port) && (restarted || peer.reachable === 'no');
    if (moved) {
      if (this.byAddr.get(`${peer.host}:${peer.port}`) === peer) this.byAddr.delete(`${peer.host}:${peer.port}`);
      this.leaveHost(peer);
      this.hostSet(s.host).add(peer);
      peer.host = s.host;
      peer.port = s.port;
      this.byAddr.set(addr, peer);
      peer.reachable = 'unknown';
      peer.failures = 0;
    }
    if (rekeyed) this.emit('peer-changed', peer, 'id');
    if (restarted) {
      peer.reachable = 'unknown';
      peer.failures = 0;
      this.emit('peer-changed', peer, 'instance');
    } else if (moved) this.emit('peer-changed', peer, 'address');
    return peer;
  }

  /**
   * A source no longer vouches for a peer (by node id or by `host:port`). With a reason
   * other than `gone` from a first-hand source, the peer itself left or went quiet: the
   * hearsay about it goes too (see the top of this file).
   */
  lose(source: PeerSource, idOrAddr: string, reason: LostReason = 'gone'): void {
    const peer = this.peers.get(`id:${idOrAddr}`) ?? this.byAddr.get(idOrAddr);
    if (!peer || !peer.sources.has(source)) return;
    this.unvouch(peer, source);
    if (reason !== 'gone' && !FADING.has(source)) {
      for (const s of peer.sources) if (FADING.has(s)) this.unvouch(peer, s);
      if (peer.id !== undefined) {
        this.departed.delete(peer.id); // re-inserted last: the map stays in order of departure
        if (this.departed.size >= this.maxPeers) this.departed.delete(this.departed.keys().next().value!);
        this.departed.set(peer.id, Date.now());
      }
    }
    if (peer.sources.size === 0) this.drop(peer);
  }

  /** Backwards-compatible: an address-only sighting. */
  add(host: string, port: number, source: PeerSource): KnownPeer | null {
    return this.see(source, { host, port });
  }

  /** Forget a peer whatever its sources (the user removed it). */
  remove(host: string, port: number): void {
    const peer = this.byAddr.get(`${host}:${port}`);
    if (peer) this.drop(peer);
  }

  get(idOrAddr: string): KnownPeer | undefined {
    return this.peers.get(`id:${idOrAddr}`) ?? this.byAddr.get(idOrAddr);
  }

  /** Every peer, or those one source vouches for. Freshest first. */
  list(source?: PeerSource): KnownPeer[] {
    const all = [...this.peers.values()];
    return (source ? all.filter((p) => p.sources.has(source)) : all).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  get size(): number {
    return this.peers.size;
  }

  /**
   * The peers worth asking something now, freshest first: one per address (however many ids
   * claim it), and those that do not answer only once per RETRY_SILENT_MS.
   */
  askable(now = Date.now()): KnownPeer[] {
    const addrs = new Set<string>();
    return this.list().filter((p) => {
      const addr = `${p.host}:${p.port}`;
      if (addrs.has(addr) || (p.reachable === 'no' && now - (p.lastContact ?? 0) < RETRY_SILENT_MS)) return false;
      addrs.add(addr);
      return true;
    });
  }

  /** Peers that answer or were not tried yet, and those that do not answer (listed, but not counted or passed on). */
  count(): { peers: number; unreachable: number } {
    let unreachable = 0;
    for (const p of this.peers.values()) if (p.reachable === 'no') unreachable++;
    return { peers: this.peers.size - unreachable, unreachable };
  }

  /**
   * Record whether a contact (search, metainfo, dial) worked. A peer that fails
   * UNREACHABLE_AFTER times in a row counts as not answering; one that only fading sources
   * vouch for is then forgotten. Returns a peer this contact made unreachable, if any.
   * `answeredAs`: the id the node that answered gave (see `answered`).
   */
  contact(host: string, port: number, ok: boolean, answeredAs?: string): KnownPeer | null {
    const peer = this.byAddr.get(`${host}:${port}`);
    if (!peer) return null;
    if (answeredAs !== undefined) return this.answered(host, port, answeredAs);
    peer.lastContact = Date.now();
    if (ok) {
      peer.failures = 0;
      peer.reachable = 'yes';
      return null;
    }
    // Nothing answers at that address: a failure for every peer that claims it, not only
    // the one the address leads to (forged sightings may all name one address).
    let marked: KnownPeer | null = null;
    for (const p of [peer, ...[...(this.byHost.get(host) ?? [])].filter((q) => q.port === port && q !== peer)]) {
      p.lastContact = peer.lastContact;
      p.failures += 1;
      if (p.failures < UNREACHABLE_AFTER || p.reachable === 'no') continue;
      p.reachable = 'no';
      marked ??= p;
      this.emit('peer-unreachable', p);
      if ([...p.sources].every((s) => FADING.has(s))) this.drop(p);
    }
    return marked;
  }

  /**
   * The node at `host:port` answered, naming itself `id`: that peer answers; any other peer
   * listed there claimed an address that is not its own, and counts as not answering at once.
   */
  private answered(host: string, port: number, id: string): KnownPeer | null {
    let marked: KnownPeer | null = null;
    for (const p of [...(this.byHost.get(host) ?? [])]) {
      if (p.port !== port) continue;
      if (p.id === undefined || p.id === id) {
        p.lastContact = Date.now();
        p.failures = 0;
        p.reachable = 'yes';
        this.byAddr.set(`${host}:${port}`, p);
      } else if (p.reachable !== 'no') {
        p.lastContact = Date.now();
        p.failures = UNREACHABLE_AFTER;
        p.reachable = 'no';
        marked = p;
        this.emit('peer-unreachable', p);
        if ([...p.sources].every((s) => FADING.has(s))) this.drop(p);
      }
    }
    return marked;
  }

  private unverifiedAt(host: string): number {
    let n = 0;
    for (const p of this.byHost.get(host) ?? []) if (p.reachable !== 'yes') n++;
    return n;
  }

  private hostSet(host: string): Set<KnownPeer> {
    let set = this.byHost.get(host);
    if (!set) this.byHost.set(host, (set = new Set()));
    return set;
  }

  private leaveHost(peer: KnownPeer): void {
    const set = this.byHost.get(peer.host);
    if (!set) return;
    set.delete(peer);
    if (set.size === 0) this.byHost.delete(peer.host);
  }

  /** Let fading sightings go once they are older than the TTL. Call now and then. */
  expire(now = Date.now()): void {
    for (const [id, at] of this.departed) {
      if (now - at <= this.learntTtlMs) break; // in order of departure
      this.departed.delete(id);
    }
    for (const peer of [...this.peers.values()]) {
      for (const s of peer.sources) {
        if (FADING.has(s) && now - (peer.seen[s] ?? 0) > this.learntTtlMs) this.unvouch(peer, s);
      }
      if (peer.sources.size === 0) this.drop(peer);
    }
  }

  /** One source stops vouching for a listed peer (it may be left with none: the caller drops it). */
  private unvouch(peer: KnownPeer, source: PeerSource): void {
    if (!peer.sources.delete(source)) return;
    delete peer.seen[source];
    if (source === 'peer') this.learnt--;
  }

  /** An address-only peer told us its id: key it by id from now on. False when that id is known elsewhere already. */
  private rekey(peer: KnownPeer, id: string): boolean {
    const other = this.peers.get(`id:${id}`);
    if (other) return false; // already known under its id elsewhere; keep both rather than guess
    this.peers.delete(peer.key);
    (peer as { key: string }).key = `id:${id}`;
    peer.id = id;
    this.peers.set(peer.key, peer);
    return true;
  }

  private drop(peer: KnownPeer): void {
    if (!this.peers.delete(peer.key)) return;
    if (peer.sources.has('peer')) this.learnt--;
    this.leaveHost(peer);
    const addr = `${peer.host}:${peer.port}`;
    if (this.byAddr.get(addr) === peer) {
      this.byAddr.delete(addr);
      // Another peer listed at that address takes it over.
      for (const p of this.byHost.get(peer.host) ?? []) if (p.port === peer.port) this.byAddr.set(addr, p);
    }
    this.emit('peer-down', peer);
  }

  private isSelf(s: Sighting): boolean {
    if (!this.self) return false;
    if (s.id && s.id === this.self.id) return true;
    return s.port === this.self.port && (this.self.hosts.has(s.host) || isLoopbackAddress(s.host) || s.host === 'localhost');
  }
}

function validEndpoint(host: string, port: number): boolean {
  if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
  if (host.length === 0 || host.length > 255) return false;
  return isIP(host) !== 0 || /^[A-Za-z0-9.-]+$/.test(host);
}

