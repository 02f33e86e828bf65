/**
 * LAN discovery by multicast beacons: what the datagrams mean. The packet format is
 * network/wire/beacon-codec.ts and the sockets are multicast-socket.ts; this file sends a
 * HELLO every interval and a GOODBYE on a clean stop, and turns the beacons it hears into
 * `peer` / `lost` events: a table of the peers it hears, each expiring after a few missed
 * intervals, a restart noticed by its new instance id, and a newcomer answered promptly.
 *
 * Each sighting carries the address the beacon names, or else the one it came from, as
 * heard: a node beaconing on two interfaces reaches us from two addresses, and which one
 * a peer keeps is the peer registry's rule (peer-registry.ts), not this source's.
 *
 * Trust: every beacon is signed by its sender's node key (and carries the swarm's HMAC in a
 * private swarm); beacon-check.ts decides which to believe, and the rest are ignored and
 * counted by reason (health().rejected; a warning per source a minute). So a GOODBYE can
 * only remove its own signer, and a HELLO cannot take over another node's id. A node's
 * claimed interval counts only within [minIntervalMs, maxIntervalMs], so a forged
 * one-hour interval cannot pin an entry for hours; and when the table is full, a newcomer
 * takes the place of the longest-listed peer that never answered us (`answered`), so a
 * flood of fake ids cannot keep honest newcomers out: they answer, the fakes do not.
 */
import { EventEmitter } from 'node:events';
import type { DiscoveryHealth, HealthState, PeerDiscovery, PeerDiscoveryEvents } from './discovery.js';
import { createHmac, randomBytes } from 'node:crypto';
import { beaconContext, decodeBeacon, encodeBeacon, BEACON_NONCE_BYTES, MAX_NAME_BYTES, type BeaconType, type DecodedBeacon } from '../wire/beacon-codec.js';
import type { Signer } from '../security/identity.js';
import { BeaconCheck, BEACON_REJECTIONS, type BeaconRejection } from './beacon-check.js';
import { silentLogger, type Logger } from '../util/log.js';
import { Cooldown } from '../util/cooldown.js';
import { MulticastSocket } from './multicast-socket.js';

export const DEFAULT_MULTICAST_GROUP = '224.1.1.1';
export const DEFAULT_MULTICAST_PORT = 10000;
export const DEFAULT_MULTICAST_TTL = 1;
export const DEFAULT_BEACON_INTERVAL_MS = 5000;
export const DEFAULT_EXPIRE_AFTER_MISSED = 3;
/** Upper bound on peers this source tracks, so a flood of forged ids cannot grow memory. */
export const MAX_MULTICAST_PEERS = 4096;
/**
 * The intervals a peer's claim counts within, for its expiry: below the floor a peer would
 * flap in and out; above the ceiling one beacon would list it for hours. The command line
 * takes 0.1 to 300 s, so an honest node is always within.
 */
export const MIN_TRUSTED_INTERVAL_MS = 100;
export const MAX_TRUSTED_INTERVAL_MS = 300_000;

/** A new peer's HELLO is answered after 100-300 ms, so a burst of newcomers gets one reply. */
const REPLY_MIN_DELAY_MS = 100;
const REPLY_SPREAD_MS = 200;
const REPLY_MIN_GAP_MS = 1000;
const GARBAGE_WARN_EVERY_MS = 60_000;
const GARBAGE_SOURCES_KEPT = 1024;

/** This node as its beacons name it; `signer` holds the key its id derives from. */
export interface MulticastSelf {
  id: string;
  instance: string;
  name: string;
  port: number;
  /** The address we advertise (--peer-ip); omitted = unspecified, receivers use the source. */
  host?: string;
  signer: Signer;
}

export interface MulticastInit {
  self: MulticastSelf;
  /** The swarm's beacon key (network/security/secret.ts) in a private swarm: beacons carry its HMAC, and must. */
  beaconKey?: Buffer;
  group?: string;
  port?: number;
  /** Interface names or IPv4 addresses; default: every usable IPv4 interface. */
  interfaces?: string[];
  /** The one address the node listens on, if it listens on one only: beacons go only where it is reachable. */
  bound?: string;
  ttl?: number;
  intervalMs?: number;
  expireAfterMissed?: number;
  /** Peers this source tracks at most; MAX_MULTICAST_PEERS by default. */
  maxPeers?: number;
  /** Bounds on the interval a peer's beacon claims, for its expiry (MIN/MAX_TRUSTED_INTERVAL_MS). */
  minIntervalMs?: number;
  maxIntervalMs?: number;
  /** Beacons farther than this from our clock are refused (beacon-check.ts). */
  maxSkewMs?: number;
  /** Signature checks per second, and per source address (beacon-check.ts). */
  verifyPerSecond?: number;
  verifyPerSourcePerSecond?: number;
  /** Has this node answered us (search, peers, metainfo)? A full table makes room among those that have not. */
  answered?: (id: string) => boolean;
  logger?: Logger;
}

export interface MulticastStopOptions {
  /** false: close without a GOODBYE, as a killed process would (peers expire us instead). */
  goodbye?: boolean;
}

interface PeerEntry {
  /** A GOODBYE counts only from this instance; a new one means the peer restarted. */
  instance: string;
  expireMs: number;
  expiry: NodeJS.Timeout;
}

export class MulticastDiscovery extends EventEmitter<PeerDiscoveryEvents> implements PeerDiscovery {
  readonly source = 'multicast' as const;
  private readonly self: MulticastSelf;
  private readonly context: Buffer;
  private readonly checker: BeaconCheck;
  private readonly beaconKey?: Buffer;
  private readonly minIntervalMs: number;
  private readonly maxIntervalMs: number;
  private readonly answered: (id: string) => boolean;
  /** Beacons ignored since the start of this source, by reason. */
  private readonly rejected: Record<BeaconRejection, number> = Object.fromEntries(BEACON_REJECTIONS.map((r) => [r, 0])) as Record<BeaconRejection, number>;
  private accepted = 0;
  private readonly intervalMs: number;
  private readonly missed: number;
  private readonly maxPeers: number;
  private readonly log: Logger;
  private readonly socket: MulticastSocket;

  private running = false;
  /** Bumped at each start and stop, so async work from an older run drops its results. */
  private generation = 0;
  private started?: Promise<void>;
  private stopping?: Promise<void>;
  private readonly peers = new Map<string, PeerEntry>();
  /** What a remote sends wrong is a warning, at most one per source a minute. */
  private readonly garbageWarned = new Cooldown(GARBAGE_WARN_EVERY_MS, GARBAGE_SOURCES_KEPT);
  private tickTimer?: NodeJS.Timeout;
  private replyTimer?: NodeJS.Timeout;
  private nextBeaconAt = 0;
  private lastReplyAt = 0;
  private current: DiscoveryHealth = { state: 'stopped', since: Date.now() };
  private lastHeardAt?: number;

  constructor(init: MulticastInit) {
    super();
    this.log = init.logger ?? silentLogger();
    const group = init.group ?? DEFAULT_MULTICAST_GROUP;
    const groupPort = init.port ?? DEFAULT_MULTICAST_PORT;
    this.socket = new MulticastSocket({
      group,
      port: groupPort,
      ttl: init.ttl ?? DEFAULT_MULTICAST_TTL,
      interfaces: init.interfaces,
      bound: init.bound,
      logger: this.log,
      onDatagram: (msg, from) => this.onDatagram(msg, from),
      onStatusChange: () => this.updateHealth(),
    });
    this.intervalMs = init.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS;
    this.missed = init.expireAfterMissed ?? DEFAULT_EXPIRE_AFTER_MISSED;
    this.maxPeers = init.maxPeers ?? MAX_MULTICAST_PEERS;
    this.minIntervalMs = init.minIntervalMs ?? MIN_TRUSTED_INTERVAL_MS;
    this.maxIntervalMs = init.maxIntervalMs ?? MAX_TRUSTED_INTERVAL_MS;
    this.answered = init.answered ?? (() => false);
    if (!(this.missed >= 1)) throw new RangeError(`expireAfterMissed must be at least 1, got ${this.missed}`);
    if (init.self.signer.id !== init.self.id) throw new RangeError(`node id ${init.self.id} is not the id of the key that signs its beacons (${init.self.signer.id})`);
    this.self = { ...init.self, name: fitName(init.self.name) };
    this.beaconKey = init.beaconKey;
    this.context = beaconContext(group, groupPort);
    this.checker = new BeaconCheck({
      context: this.context,
      self: { id: this.self.id, publicKey: this.self.signer.publicKey },
      macKey: init.beaconKey,
      maxSkewMs: init.maxSkewMs,
      verifyPerSecond: init.verifyPerSecond,
      verifyPerSourcePerSecond: init.verifyPerSourcePerSecond,
    });
    if (this.self.host !== undefined && !isAdvertisable(this.self.host)) {
      this.log.warn({ host: this.self.host }, `multicast: ${this.self.host} is not a unicast IPv4 address; beacons leave the host unspecified`);
      delete this.self.host;
    }
    this.beacon('HELLO'); // a bad id, instance, port or interval is a programming error: say so now
  }

  health(): DiscoveryHealth {
    const sent = this.socket.lastSentAt;
    const heard = this.lastHeardAt;
    const lastOk = sent === undefined ? heard : heard === undefined ? sent : Math.max(sent, heard);
    const rejected = this.rejectedCounts();
    const h: DiscoveryHealth = { ...this.current };
    if (lastOk !== undefined) h.lastOk = lastOk;
    if (Object.keys(rejected).length > 0) h.rejected = rejected;
    return h;
  }

  /** Beacons believed and ignored (by reason) since this source was made. */
  stats(): { accepted: number; rejected: Partial<Record<BeaconRejection, number>>; peers: number } {
    return { accepted: this.accepted, rejected: this.rejectedCounts(), peers: this.peers.size };
  }

  private rejectedCounts(): Partial<Record<BeaconRejection, number>> {
    const out: Partial<Record<BeaconRejection, number>> = {};
    for (const r of BEACON_REJECTIONS) if (this.rejected[r] > 0) out[r] = this.rejected[r];
    return out;
  }

  async start(): Promise<void> {
    if (this.stopping) await this.stopping;
    if (!this.running) {
      this.running = true;
      this.generation++;
      this.nextBeaconAt = 0;
      this.socket.open();
      this.setHealth('starting', `joining ${this.socket.group}:${this.socket.port}`);
      this.started = this.tick();
    }
    await this.started;
  }

  /** Sends GOODBYE on every interface (unless `goodbye: false`), then closes everything. */
  async stop(opts: MulticastStopOptions = {}): Promise<void> {
    if (this.running) {
      this.running = false;
      this.generation++;
      this.stopping = this.shutdown(opts.goodbye !== false).finally(() => (this.stopping = undefined));
    }
    await this.stopping;
  }

  private async shutdown(goodbye: boolean): Promise<void> {
    clearTimeout(this.tickTimer);
    clearTimeout(this.replyTimer);
    this.replyTimer = undefined;
    await this.socket.close(goodbye ? this.beacons('GOODBYE') : undefined);
    const ids = [...this.peers.keys()];
    for (const p of this.peers.values()) clearTimeout(p.expiry);
    this.peers.clear();
    // Our sightings die with us; the registry keeps a peer only while some source vouches.
    for (const id of ids) this.emit('lost', id, 'gone');
    this.setHealth('stopped');
  }

  // ---- the round: sockets in line with the interfaces, then HELLO when due ----------------

  private async tick(): Promise<void> {
    const gen = this.generation;
    try {
      const fresh = await this.socket.refresh();
      if (gen !== this.generation) return;
      const now = Date.now();
      if (fresh || now >= this.nextBeaconAt) {
        // A little jitter, only ever earlier, so nodes drift apart and expiry margins hold.
        this.nextBeaconAt = now + this.intervalMs * (0.9 + 0.1 * Math.random());
        await this.socket.send(this.beacons('HELLO'));
      }
      this.updateHealth();
    } catch (err) {
      this.log.error({ err }, 'multicast: unexpected failure in the beacon round');
    }
    if (gen === this.generation) this.schedule();
  }

  /** The next beacon, or sooner when the socket layer has a back-off ending before it. */
  private schedule(): void {
    const retry = this.socket.retryAt();
    const at = retry === undefined ? this.nextBeaconAt : Math.min(this.nextBeaconAt, retry);
    this.tickTimer = setTimeout(() => void this.tick(), Math.max(10, at - Date.now())).unref();
  }

  /**
   * One beacon, signed (and with the swarm's HMAC in a private swarm). Beacons are not
   * encrypted, so a private swarm's carry no name: members learn it over TLS (the `peers`
   * answer), outsiders never.
   */
  private beacon(type: BeaconType, timestamp = Date.now()): Buffer {
    const { id, instance, port, host, signer } = this.self;
    const key = this.beaconKey;
    const name = key ? '' : this.self.name;
    return encodeBeacon(
      { type, id, instance, name, port, host, intervalMs: this.intervalMs, timestamp, nonce: randomBytes(BEACON_NONCE_BYTES), publicKey: signer.publicKey },
      { context: this.context, sign: (data) => signer.sign(data), mac: key ? (data) => createHmac('sha256', key).update(data).digest() : undefined },
    );
  }

  /** One round's beacons: one per link, at one timestamp, each with its own nonce (a receiver takes each once). */
  private beacons(type: BeaconType): () => Buffer {
    const timestamp = Date.now();
    return () => this.beacon(type, timestamp);
  }

  private updateHealth(): void {
    if (!this.running) return;
    const { state, detail } = this.socket.status();
    this.setHealth(state, detail);
  }

  private setHealth(state: HealthState, detail?: string): void {
    if (state === this.current.state && detail === this.current.detail) return;
    if (state !== this.current.state) this.current = { state, since: Date.now() };
    if (detail === undefined) delete this.current.detail;
    else this.current.detail = detail;
    this.emit('health', this.health());
  }

  // ---- what we hear ---------------------------------------------------------------------

  private onDatagram(msg: Buffer, from: string): void {
    if (!this.running) return;
    let b: DecodedBeacon;
    try {
      b = decodeBeacon(msg); // refuses oversize datagrams before reading a field
    } catch (err) {
      this.refuse('malformed', from, err instanceof Error ? err.message : String(err));
      return;
    }
    const verdict = this.checker.check(b, from);
    if (!verdict.ok) {
      if (verdict.reason !== 'self') this.refuse(verdict.reason, from, verdict.detail);
      return;
    }
    this.accepted++;
    this.lastHeardAt = Date.now();
    const known = this.peers.get(b.id);
    if (b.type === 'GOODBYE') {
      // A late GOODBYE of an earlier run must not remove the one that replaced it.
      if (known && known.instance === b.instance) this.forget(b.id, 'goodbye');
      return;
    }
    if (!known && this.peers.size >= this.maxPeers && !this.makeRoom()) {
      this.refuse('table-full', from, `peer table full (${this.maxPeers}, every one answered us), ignoring ${b.id}`);
      return;
    }
    // The peer's own beacon interval sets its expiry (a slow beaconer is not dropped early),
    // within bounds (a forged hour-long interval cannot pin an entry for hours).
    const expireMs = Math.min(this.maxIntervalMs, Math.max(this.minIntervalMs, b.intervalMs)) * this.missed;
    const fresh = !known || known.instance !== b.instance;
    if (!known) {
      this.peers.set(b.id, { instance: b.instance, expireMs, expiry: this.expiry(b.id, expireMs) });
    } else {
      known.instance = b.instance;
      if (known.expireMs === expireMs) known.expiry.refresh();
      else {
        clearTimeout(known.expiry);
        known.expireMs = expireMs;
        known.expiry = this.expiry(b.id, expireMs);
      }
    }
    this.emit('peer', { id: b.id, host: b.host ?? from, port: b.port, name: b.name, instance: b.instance });
    if (fresh) this.scheduleReply();
  }

  private expiry(id: string, ms: number): NodeJS.Timeout {
    return setTimeout(() => this.forget(id, 'expired'), ms).unref();
  }

  /**
   * The table is full: the peer listed longest that never answered us gives way (its
   * sighting is 'expired'). False when every listed peer has answered.
   */
  private makeRoom(): boolean {
    for (const id of this.peers.keys()) {
      if (this.answered(id)) continue;
      this.forget(id, 'expired');
      return true;
    }
    return false;
  }

  private forget(id: string, reason: 'goodbye' | 'expired'): void {
    const entry = this.peers.get(id);
    if (!entry) return;
    clearTimeout(entry.expiry);
    this.peers.delete(id);
    this.emit('lost', id, reason);
  }

  /** A newcomer should not wait a whole interval to learn us: one coalesced, rate-limited HELLO. */
  private scheduleReply(): void {
    if (this.replyTimer || !this.running) return;
    const gap = Math.min(REPLY_MIN_GAP_MS, this.intervalMs);
    const delay = Math.max(REPLY_MIN_DELAY_MS + Math.random() * REPLY_SPREAD_MS, this.lastReplyAt + gap - Date.now());
    this.replyTimer = setTimeout(() => {
      this.replyTimer = undefined;
      this.lastReplyAt = Date.now();
      void this.socket.send(this.beacons('HELLO'));
    }, delay).unref();
  }

  /**
   * A beacon ignored: counted by reason, and a warning the first time in a minute per
   * source (debug after that), so a noisy sender cannot flood the log. Beacons of another
   * private swarm on the same group are normal, not a warning.
   */
  private refuse(reason: BeaconRejection, from: string, why: string): void {
    this.rejected[reason]++;
    const count = this.rejected[reason];
    if (reason === 'private' || !this.garbageWarned.take(from)) {
      this.log.debug({ from, reason, detail: why, count }, 'multicast: ignored a beacon');
      return;
    }
    this.log.warn({ from, reason, detail: why, count }, `multicast: ignored a bad beacon from ${from} (${reason}, ${count} so far): ${why} (more from there are logged at debug for a minute)`);
  }
}

/** The node name cut to the beacon's 64 bytes on a character boundary, controls blanked. */
function fitName(name: string): string {
  let out = '';
  for (const ch of name.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')) {
    if (Buffer.byteLength(out + ch, 'utf8') > MAX_NAME_BYTES) break;
    out += ch;
  }
  return out;
}

/** The codec is the one judge of what a beacon may name as its host. */
function isAdvertisable(host: string): boolean {
  try {
    const zeros = Buffer.alloc(32);
    encodeBeacon(
      { type: 'HELLO', id: 'x', instance: 'x', name: '', port: 1, host, intervalMs: 1000, timestamp: 0, nonce: Buffer.alloc(BEACON_NONCE_BYTES), publicKey: zeros },
      { context: Buffer.alloc(6), sign: () => Buffer.alloc(64) },
    );
    return true;
  } catch {
    return false;
  }
}
