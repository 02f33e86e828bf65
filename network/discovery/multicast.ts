/**
 * LAN discovery by multicast beacons (see network/wire/beacon-codec.ts for the packet).
 * This file moves bytes only: it sends a HELLO on every usable IPv4 interface each
 * interval, a GOODBYE on a clean stop, and turns the beacons it hears into `peer` / `lost`
 * events. Several nodes on one host share the group port (SO_REUSEADDR; Linux hands every
 * such socket its own copy), so multicast loopback stays on.
 *
 * Sockets: one receiving socket bound to group:port that joins the group on each
 * interface, and one sending socket per interface, bound to that interface's address so
 * the beacon leaves where we mean it to. Interfaces are re-read every round, so a cable
 * plugged in or a VPN going away is followed without a restart.
 *
 * Nothing here throws out of start() or crashes the process: every socket has an 'error'
 * handler, and each distinct problem (no such interface, join refused, send unreachable)
 * is logged once, shown in health(), and retried with exponential back-off.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
import type { DiscoveryHealth, HealthState, PeerDiscovery, PeerDiscoveryEvents } from './discovery.js';
import { decodeBeacon, encodeBeacon, MAX_NAME_BYTES, type Beacon, type BeaconType } from '../wire/beacon-codec.js';
import { silentLogger, type Logger } from '../util/log.js';
import { chooseInterfaces } from './interfaces.js';
import { Problems } from '../util/problems.js';

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
const GOODBYE_TIMEOUT_MS = 1000;

export interface MulticastInit {
  /** host: the address we advertise (--peer-ip); omitted = unspecified, receivers use the source. */
  self: { id: string; instance: string; name: string; port: number; host?: string };
  group?: string;
  port?: number;
  /** Interface names or IPv4 addresses; default: every usable IPv4 interface. */
  interfaces?: string[];
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

interface Link {
  name: string;
  address: string;
  socket?: dgram.Socket;
  joined: boolean;
}

interface PeerEntry {
  instance: string;
  host: string;
  hostSeen: number;
  port: number;
  name: string;
  expireMs: number;
  expiry: NodeJS.Timeout;
}

export class MulticastDiscovery extends EventEmitter<PeerDiscoveryEvents> implements PeerDiscovery {
  readonly source = 'multicast' as const;
  private readonly self: { id: string; instance: string; name: string; port: number; host?: string };
  private readonly group: string;
  private readonly port: number;
  private readonly ttl: number;
  private readonly intervalMs: number;
  private readonly missed: number;
  private readonly maxPeers: number;
  private readonly wanted: string[] | undefined;
  private readonly log: Logger;
  private readonly problems: Problems;

  private running = false;
  /** Bumped at each start and stop, so async work from an older run drops its results. */
  private generation = 0;
  private started?: Promise<void>;
  private stopping?: Promise<void>;
  private recv?: dgram.Socket;
  private readonly sockets = new Set<dgram.Socket>();
  private readonly links = new Map<string, Link>();
  private readonly peers = new Map<string, PeerEntry>();
  private readonly garbageWarned = new Map<string, number>();
  private tickTimer?: NodeJS.Timeout;
  private replyTimer?: NodeJS.Timeout;
  private nextBeaconAt = 0;
  private lastReplyAt = 0;
  private current: DiscoveryHealth = { state: 'stopped', since: Date.now() };
  private lastOk?: number;

  constructor(init: MulticastInit) {
    super();
    this.log = init.logger ?? silentLogger();
    this.group = init.group ?? DEFAULT_MULTICAST_GROUP;
    this.port = init.port ?? DEFAULT_MULTICAST_PORT;
    this.ttl = init.ttl ?? DEFAULT_MULTICAST_TTL;
    this.intervalMs = init.intervalMs ?? DEFAULT_BEACON_INTERVAL_MS;
    this.missed = init.expireAfterMissed ?? DEFAULT_EXPIRE_AFTER_MISSED;
    this.maxPeers = init.maxPeers ?? MAX_MULTICAST_PEERS;
    this.wanted = init.interfaces && init.interfaces.length > 0 ? [...init.interfaces] : undefined;
    const first = Number(this.group.split('.')[0]);
    if (!isIPv4(this.group) || first < 224 || first > 239) throw new RangeError(`multicast group must be 224.0.0.0..239.255.255.255, got ${this.group}`);
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw new RangeError(`multicast port must be 1..65535, got ${this.port}`);
    if (!Number.isInteger(this.ttl) || this.ttl < 0 || this.ttl > 255) throw new RangeError(`multicast TTL must be 0..255, got ${this.ttl}`);
    if (!(this.missed >= 1)) throw new RangeError(`expireAfterMissed must be at least 1, got ${this.missed}`);
    this.self = { ...init.self, name: fitName(init.self.name) };
    if (this.self.host !== undefined && !isAdvertisable(this.self.host)) {
      this.log.warn({ host: this.self.host }, `multicast: ${this.self.host} is not a unicast IPv4 address; beacons leave the host unspecified`);
      delete this.self.host;
    }
    this.beacon('HELLO'); // a bad id, instance, port or interval is a programming error: say so now
    this.problems = new Problems(this.log, 'multicast: ');
  }

  health(): DiscoveryHealth {
    return this.lastOk === undefined ? { ...this.current } : { ...this.current, lastOk: this.lastOk };
  }

  async start(): Promise<void> {
    if (this.stopping) await this.stopping;
    if (!this.running) {
      this.running = true;
      this.generation++;
      this.nextBeaconAt = 0;
      this.setHealth('starting', `joining ${this.group}:${this.port}`);
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
    if (goodbye) await Promise.race([this.sendAll('GOODBYE'), sleep(GOODBYE_TIMEOUT_MS)]);
    await Promise.all([...this.sockets].map(closeSocket));
    this.sockets.clear();
    this.links.clear();
    this.recv = undefined;
    this.problems.reset();
    const ids = [...this.peers.keys()];
    for (const p of this.peers.values()) clearTimeout(p.expiry);
    this.peers.clear();
    // Our sightings die with us; the registry keeps a peer only while some source vouches.
    for (const id of ids) this.emit('lost', id, 'gone');
    this.setHealth('stopped');
  }

  // ---- the round: interfaces, sockets, HELLO --------------------------------------------

  private async tick(): Promise<void> {
    const gen = this.generation;
    try {
      const { links, problems } = await chooseInterfaces(this.wanted);
      if (gen !== this.generation) return;
      this.problems.sync('iface:', problems);
      for (const link of this.links.values()) {
        if (!links.some((l) => l.address === link.address)) this.dropLink(link);
      }
      await this.ensureReceiver(gen);
      let fresh = false;
      for (const l of links) fresh = (await this.ensureLink(l, gen)) || fresh;
      if (gen !== this.generation) return;
      const now = Date.now();
      if (fresh || now >= this.nextBeaconAt) {
        // A little jitter, only ever earlier, so nodes drift apart and expiry margins hold.
        this.nextBeaconAt = now + this.intervalMs * (0.9 + 0.1 * Math.random());
        await this.sendAll('HELLO');
      }
      this.updateHealth();
    } catch (err) {
      this.log.error({ err }, 'multicast: unexpected failure in the beacon round');
    }
    if (gen === this.generation) this.schedule();
  }

  private schedule(): void {
    const retry = this.problems.nextDue();
    const at = retry === undefined ? this.nextBeaconAt : Math.min(this.nextBeaconAt, retry);
    this.tickTimer = setTimeout(() => void this.tick(), Math.max(10, at - Date.now())).unref();
  }

  private async ensureReceiver(gen: number): Promise<void> {
    if (this.recv || !this.problems.due('recv')) return;
    const sock = this.socket();
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address));
    sock.on('error', (err) => this.onReceiverError(sock, err));
    try {
      // Bound to the group (not 0.0.0.0) where the OS allows it, so datagrams for other
      // groups on the same port, which Linux delivers by default, never reach us.
      await bindSocket(sock, this.port, process.platform === 'win32' ? undefined : this.group);
    } catch (err) {
      void closeSocket(sock);
      if (gen !== this.generation) return; // stop() closed it under us: not a problem
      this.problems.report('recv', `cannot listen on ${this.group}:${this.port}: ${explain(err)}`);
      return;
    }
    if (gen !== this.generation) {
      void closeSocket(sock);
      return;
    }
    this.recv = sock;
    for (const link of this.links.values()) link.joined = false;
    this.problems.clear('recv');
  }

  private onReceiverError(sock: dgram.Socket, err: Error): void {
    if (this.recv !== sock) return;
    this.recv = undefined;
    void closeSocket(sock);
    this.problems.report('recv', `receiving on ${this.group}:${this.port} failed: ${explain(err)}`);
    this.updateHealth();
  }

  /** Opens the link's send socket and joins the group there; true if it just became usable. */
  private async ensureLink(l: { name: string; address: string }, gen: number): Promise<boolean> {
    let link = this.links.get(l.address);
    if (!link) {
      link = { name: l.name, address: l.address, joined: false };
      this.links.set(l.address, link);
    }
    if (link.socket && (link.joined || !this.recv)) return false;
    const key = `link:${link.address}`;
    if (!this.problems.due(key)) return false;
    const label = `${link.name} (${link.address})`;
    let fresh = false;
    if (!link.socket) {
      const sock = this.socket();
      sock.on('error', (err) => this.onLinkError(link, sock, err));
      try {
        await bindSocket(sock, 0, link.address);
        sock.setMulticastInterface(link.address);
        sock.setMulticastTTL(this.ttl);
        sock.setMulticastLoopback(true); // other nodes on this host must hear us
      } catch (err) {
        void closeSocket(sock);
        if (gen !== this.generation) return false;
        this.problems.report(key, `cannot send beacons on ${label}: ${explain(err)}`);
        return false;
      }
      if (gen !== this.generation || this.links.get(link.address) !== link) {
        void closeSocket(sock); // stopped, or the interface went away while we bound
        return false;
      }
      link.socket = sock;
      fresh = true;
    }
    if (this.recv && !link.joined) {
      try {
        this.recv.addMembership(this.group, link.address);
      } catch (err) {
        // Already a member (the kernel kept us joined through a flap): that is what we want.
        if (errorCode(err) !== 'EADDRINUSE') {
          this.problems.report(key, `cannot join ${this.group} on ${label}: ${explain(err)}`);
          return fresh;
        }
      }
      link.joined = true;
    }
    this.problems.clear(key);
    return fresh;
  }

  private onLinkError(link: Link, sock: dgram.Socket, err: Error): void {
    if (link.socket !== sock) return;
    link.socket = undefined;
    void closeSocket(sock);
    this.problems.report(`link:${link.address}`, `beacon socket on ${link.name} (${link.address}) failed: ${explain(err)}`);
  }

  private dropLink(link: Link): void {
    this.links.delete(link.address);
    if (link.socket) void closeSocket(link.socket);
    try {
      if (link.joined) this.recv?.dropMembership(this.group, link.address);
    } catch {
      // The interface is gone and took the membership with it.
    }
    this.problems.forget(`link:${link.address}`);
    this.problems.forget(`send:${link.address}`);
    if (link.socket) this.log.info(`multicast: no longer beaconing on ${link.name} (${link.address}): interface gone or down`);
  }

  private socket(): dgram.Socket {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    return sock;
  }

  private beacon(type: BeaconType): Buffer {
    const { id, instance, name, port, host } = this.self;
    return encodeBeacon({ type, id, instance, name, port, host, intervalMs: this.intervalMs });
  }

  private async sendAll(type: BeaconType): Promise<void> {
    const buf = this.beacon(type);
    await Promise.all([...this.links.values()].map((link) => this.sendOn(link, buf)));
  }

  private sendOn(link: Link, buf: Buffer): Promise<void> {
    const sock = link.socket;
    if (!sock) return Promise.resolve();
    const key = `send:${link.address}`;
    return new Promise((resolve) => {
      const done = (err: Error | null): void => {
        if (err) {
          this.problems.report(key, `cannot send beacons on ${link.name} (${link.address}) to ${this.group}:${this.port}: ${explain(err)}`);
        } else {
          this.lastOk = Date.now();
          this.problems.clear(key);
        }
        this.updateHealth();
        resolve();
      };
      try {
        sock.send(buf, this.port, this.group, done);
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err))); // closed under us by stop()
      }
    });
  }

  private updateHealth(): void {
    if (!this.running) return;
    const working = [...this.links.values()].filter((l) => l.socket && l.joined && !this.problems.has(`send:${l.address}`));
    const issues = this.problems.messages();
    if (this.recv && working.length > 0) {
      const where = `${this.group}:${this.port} on ${working.map((l) => l.name).join(', ')}`;
      this.setHealth('ok', issues.length > 0 ? `${where}; ${issues.join('; ')}` : where);
    } else if (issues.length > 0) {
      this.setHealth('failing', issues.join('; '));
    } else {
      this.setHealth('failing', 'no usable IPv4 interface (up, multicast-capable, with an IPv4 address)');
    }
  }

  private setHealth(state: HealthState, detail?: string): void {
    if (state === this.current.state && detail === this.current.detail) return;
    if (state !== this.current.state) this.current = { state, since: Date.now() };
    if (detail === undefined) delete this.current.detail;
    else this.current.detail = detail;
    this.emit('health', this.health());
  }

  // ---- what we hear ---------------------------------------------------------------------

  private onMessage(msg: Buffer, from: string): void {
    // Linux hands a socket bound to group:port the group's traffic once *any* socket on the
    // host joined it (IP_MULTICAST_ALL, which Node cannot turn off): joined nowhere, we
    // must not pretend to hear anything. (Node cannot tell us the arrival interface either.)
    if (!this.running || !this.joinedSomewhere()) return;
    let b: Beacon;
    try {
      b = decodeBeacon(msg); // refuses oversize datagrams before reading a field
    } catch (err) {
      this.garbage(from, err instanceof Error ? err.message : String(err));
      return;
    }
    if (b.id === this.self.id) return; // our own beacon, looped back
    this.lastOk = Date.now();
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
    const now = Date.now();
    const expireMs = b.intervalMs * this.missed;
    const fresh = !known || known.instance !== b.instance;
    let host = b.host ?? from;
    let entry = known;
    if (!entry) {
      entry = { instance: b.instance, host, hostSeen: now, port: b.port, name: b.name, expireMs, expiry: this.expiry(b.id, expireMs) };
      this.peers.set(b.id, entry);
    } else {
      // A node beaconing on two interfaces reaches us from two source addresses: keep the
      // first while it stays current, so the registry does not see the peer flap.
      const sticky = !fresh && host !== entry.host && now - entry.hostSeen < b.intervalMs * 1.5;
      if (sticky) host = entry.host;
      else entry.hostSeen = now;
      Object.assign(entry, { instance: b.instance, host, port: b.port, name: b.name });
      if (entry.expireMs === expireMs) entry.expiry.refresh();
      else {
        clearTimeout(entry.expiry);
        entry.expireMs = expireMs;
        entry.expiry = this.expiry(b.id, expireMs);
      }
    }
    this.emit('peer', { id: b.id, host, port: b.port, name: b.name, instance: b.instance });
    if (fresh) this.scheduleReply();
  }

  /** Per datagram, so a loop rather than an array of the links. */
  private joinedSomewhere(): boolean {
    for (const l of this.links.values()) if (l.joined) return true;
    return false;
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
      void this.sendAll('HELLO');
    }, delay).unref();
  }

  /** What a remote sends wrong is a warning, at most one per source a minute. */
  private garbage(from: string, why: string): void {
    const now = Date.now();
    const last = this.garbageWarned.get(from);
    if (last !== undefined && now - last < GARBAGE_WARN_EVERY_MS) {
      this.log.debug({ from, reason: why }, 'multicast: ignored a bad beacon');
      return;
    }
    if (this.garbageWarned.size >= GARBAGE_SOURCES_KEPT) this.garbageWarned.clear();
    this.garbageWarned.set(from, now);
    this.log.warn({ from, reason: why }, `multicast: ignored a bad beacon from ${from}: ${why} (more from there are logged at debug for a minute)`);
  }
}

// ---- small helpers --------------------------------------------------------------------------

function bindSocket(sock: dgram.Socket, port: number, address: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.off('close', onClose);
      reject(err);
    };
    // stop() may close the socket before the bind completes: do not hang the round.
    const onClose = (): void => {
      sock.off('error', onError);
      reject(new Error('socket closed'));
    };
    sock.once('error', onError);
    sock.once('close', onClose);
    sock.bind({ port, address }, () => {
      sock.off('error', onError);
      sock.off('close', onClose);
      resolve();
    });
  });
}

function closeSocket(sock: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      sock.close(() => resolve());
    } catch {
      resolve(); // already closed
    }
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const HINTS: Record<string, string> = {
  ENETUNREACH: 'no route for multicast',
  EADDRNOTAVAIL: 'address not available on this machine',
  ENODEV: 'no such device',
  ENOMEM: 'too many memberships',
  ENOBUFS: 'too many memberships',
  EADDRINUSE: 'port in use without address reuse',
  EACCES: 'not permitted',
  EPERM: 'not permitted (firewall?)',
};

function explain(err: unknown): string {
  const code = errorCode(err);
  if (code && HINTS[code]) return `${code} (${HINTS[code]})`;
  return code ?? (err instanceof Error ? err.message : String(err));
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

function isAdvertisable(host: string): boolean {
  try {
    encodeBeacon({ type: 'HELLO', id: 'x', instance: 'x', name: '', port: 1, host, intervalMs: 1000 });
    return true;
  } catch {
    return false;
  }
}
