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
 */
import { EventEmitter } from 'node:events';
import type { DiscoveryHealth, HealthState, PeerDiscovery, PeerDiscoveryEvents } from './discovery.js';
import { decodeBeacon, encodeBeacon, MAX_NAME_BYTES, type Beacon, type BeaconType } from '../wire/beacon-codec.js';
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

/** A new peer's HELLO is answered after 100-300 ms, so a burst of newcomers gets one reply. */
const REPLY_MIN_DELAY_MS = 100;
const REPLY_SPREAD_MS = 200;
const REPLY_MIN_GAP_MS = 1000;
const GARBAGE_WARN_EVERY_MS = 60_000;
const GARBAGE_SOURCES_KEPT = 1024;

export interface MulticastInit {
  /** host: the address we advertise (--peer-ip); omitted = unspecified, receivers use the source. */
  self: { id: string; instance: string; name: string; port: number; host?: string };
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
  private readonly self: { id: string; instance: string; name: string; port: number; host?: string };
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
    this.socket = new MulticastSocket({
      group: init.group ?? DEFAULT_MULTICAST_GROUP,
      port: init.port ?? DEFAULT_MULTICAST_PORT,
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
    if (!(this.missed >= 1)) throw new RangeError(`expireAfterMissed must be at least 1, got ${this.missed}`);
    this.self = { ...init.self, name: fitName(init.self.name) };
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
    return lastOk === undefined ? { ...this.current } : { ...this.current, lastOk };
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
    await this.socket.close(goodbye ? this.beacon('GOODBYE') : undefined);
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
        await this.socket.send(this.beacon('HELLO'));
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

  private beacon(type: BeaconType): Buffer {
    const { id, instance, name, port, host } = this.self;
    return encodeBeacon({ type, id, instance, name, port, host, intervalMs: this.intervalMs });
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
    let b: Beacon;
    try {
      b = decodeBeacon(msg); // refuses oversize datagrams before reading a field
    } catch (err) {
      this.garbage(from, err instanceof Error ? err.message : String(err));
      return;
    }
    if (b.id === this.self.id) return; // our own beacon, looped back
    this.lastHeardAt = Date.now();
    const known = this.peers.get(b.id);
    if (b.type === 'GOODBYE') {
      // A late GOODBYE of an earlier run must not remove the one that replaced it.
      if (known && known.instance === b.instance) this.forget(b.id, 'goodbye');
      return;
    }
    if (!known && this.peers.size >= this.maxPeers) {
      this.garbage(from, `peer table full (${this.maxPeers}), ignoring ${b.id}`);
      return;
    }
    // The peer's own beacon interval sets its expiry: a slow beaconer is not dropped early.
    const expireMs = b.intervalMs * this.missed;
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
      void this.socket.send(this.beacon('HELLO'));
    }, delay).unref();
  }

  /** A warning the first time in a minute per source, so a noisy sender cannot flood the log. */
  private garbage(from: string, why: string): void {
    if (!this.garbageWarned.take(from)) {
      this.log.debug({ from, reason: why }, 'multicast: ignored a bad beacon');
      return;
    }
    this.log.warn({ from, reason: why }, `multicast: ignored a bad beacon from ${from}: ${why} (more from there are logged at debug for a minute)`);
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
    encodeBeacon({ type: 'HELLO', id: 'x', instance: 'x', name: '', port: 1, host, intervalMs: 1000 });
    return true;
  } catch {
    return false;
  }
}
