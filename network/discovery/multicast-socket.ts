/**
 * The bytes of LAN discovery: UDP multicast on one group and port, over every usable IPv4
 * interface (see interfaces.ts). It sends a buffer on every link and hands every datagram
 * it hears, with its source address, to its owner; what the bytes mean (beacons, peers,
 * expiry) is network/discovery/multicast.ts. Several nodes on one host share the group port
 * (SO_REUSEADDR; Linux hands every such socket its own copy), so multicast loopback stays on.
 *
 * A node that listens on one address only beacons only where that address is reachable
 * (interfaces.ts `pickLinks`), so no other node records an address where nothing listens.
 *
 * Sockets: one receiving socket bound to group:port that joins the group on each
 * interface, and one sending socket per interface, bound to that interface's address so
 * the datagram leaves where we mean it to. The owner calls refresh() every round, which
 * re-reads the interfaces, so a cable plugged in or a VPN going away is followed without
 * a restart.
 *
 * Nothing here throws out of a round or crashes the process: every socket has an 'error'
 * handler, and each distinct problem (no such interface, join refused, send unreachable)
 * is logged once, shown in status(), and retried with exponential back-off (retryAt()).
 */
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { Logger } from '../util/log.js';
import { Problems } from '../util/problems.js';
import { chooseInterfaces } from './interfaces.js';

/** A farewell must not hold up a stop when a link no longer sends. */
const FAREWELL_TIMEOUT_MS = 1000;

export interface MulticastSocketInit {
  group: string;
  port: number;
  ttl: number;
  /** Interface names or IPv4 addresses; default: every usable IPv4 interface. */
  interfaces?: string[];
  /** The one address the node listens on, if it listens on one only: beacons go only where it is reachable. */
  bound?: string;
  logger: Logger;
  /** Every datagram heard while joined somewhere, with its source address. */
  onDatagram: (msg: Buffer, from: string) => void;
  /** Something status() reports may have changed (a send finished, the receiver failed). */
  onStatusChange?: () => void;
}

/** The socket layer's part of a discovery source's health. */
export interface MulticastStatus {
  state: 'ok' | 'failing';
  detail: string;
}

interface Link {
  name: string;
  address: string;
  socket?: dgram.Socket;
  joined: boolean;
}

export class MulticastSocket {
  readonly group: string;
  readonly port: number;
  private readonly ttl: number;
  private readonly wanted: string[] | undefined;
  private readonly bound: string | undefined;
  private readonly log: Logger;
  private readonly problems: Problems;
  private readonly onDatagram: (msg: Buffer, from: string) => void;
  private readonly onStatusChange: () => void;

  private isOpen = false;
  /** Bumped at each open and close, so async work from an older run drops its results. */
  private generation = 0;
  private recv?: dgram.Socket;
  private readonly sockets = new Set<dgram.Socket>();
  private readonly links = new Map<string, Link>();
  private sentAt?: number;

  constructor(init: MulticastSocketInit) {
    this.group = init.group;
    this.port = init.port;
    this.ttl = init.ttl;
    const first = Number(this.group.split('.')[0]);
    if (!isIPv4(this.group) || first < 224 || first > 239) throw new RangeError(`multicast group must be 224.0.0.0..239.255.255.255, got ${this.group}`);
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65535) throw new RangeError(`multicast port must be 1..65535, got ${this.port}`);
    if (!Number.isInteger(this.ttl) || this.ttl < 0 || this.ttl > 255) throw new RangeError(`multicast TTL must be 0..255, got ${this.ttl}`);
    this.wanted = init.interfaces && init.interfaces.length > 0 ? [...init.interfaces] : undefined;
    this.bound = init.bound;
    this.log = init.logger;
    this.onDatagram = init.onDatagram;
    this.onStatusChange = init.onStatusChange ?? (() => {});
    this.problems = new Problems(this.log, 'multicast: ');
  }

  /** Begins a run; the sockets themselves open at the next refresh(). */
  open(): void {
    this.isOpen = true;
    this.generation++;
  }

  /** Last time a datagram left on some link (ms since epoch). */
  get lastSentAt(): number | undefined {
    return this.sentAt;
  }

  /**
   * Re-reads the interfaces and brings sockets and memberships in line with them, retrying
   * what failed before once its back-off is over. True when a link just became usable, so
   * the owner can send at once rather than wait for its next round.
   */
  async refresh(): Promise<boolean> {
    const gen = this.generation;
    if (!this.isOpen) return false;
    const { links, problems } = await chooseInterfaces(this.wanted, this.bound);
    if (gen !== this.generation) return false;
    this.problems.sync('iface:', problems);
    for (const link of this.links.values()) {
      if (!links.some((l) => l.address === link.address)) this.dropLink(link);
    }
    await this.ensureReceiver(gen);
    let fresh = false;
    for (const l of links) fresh = (await this.ensureLink(l, gen)) || fresh;
    return gen === this.generation && fresh;
  }

  /**
   * Sends to group:port on every link that has a socket; failures become problems. A
   * function is called once per link, so each link's copy can be its own (a new nonce).
   */
  async send(buf: Buffer | (() => Buffer)): Promise<void> {
    await Promise.all([...this.links.values()].map((link) => this.sendOn(link, typeof buf === 'function' ? buf() : buf)));
  }

  /** When the earliest back-off ends (ms since epoch), if anything is waiting to be retried. */
  retryAt(): number | undefined {
    return this.problems.nextDue();
  }

  /** Sends `farewell` on every link first (bounded in time) if given, then closes everything. */
  async close(farewell?: Buffer | (() => Buffer)): Promise<void> {
    // At once, before the farewell: a round still binding or joining must not report what
    // the close does to it, and nothing heard from now on is handed over.
    this.isOpen = false;
    this.generation++;
    if (farewell) await Promise.race([this.send(farewell), sleep(FAREWELL_TIMEOUT_MS)]);
    await Promise.all([...this.sockets].map(closeSocket));
    this.sockets.clear();
    this.links.clear();
    this.recv = undefined;
    this.problems.reset();
  }

  status(): MulticastStatus {
    const working = [...this.links.values()].filter((l) => l.socket && l.joined && !this.problems.has(`send:${l.address}`));
    const issues = this.problems.messages();
    if (this.recv && working.length > 0) {
      const where = `${this.group}:${this.port} on ${working.map((l) => l.name).join(', ')}`;
      return { state: 'ok', detail: issues.length > 0 ? `${where}; ${issues.join('; ')}` : where };
    }
    if (issues.length > 0) return { state: 'failing', detail: issues.join('; ') };
    return { state: 'failing', detail: 'no usable IPv4 interface (up, multicast-capable, with an IPv4 address)' };
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
      if (gen !== this.generation) return; // close() closed it under us: not a problem
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

  private onMessage(msg: Buffer, from: string): void {
    // Linux hands a socket bound to group:port the group's traffic once *any* socket on the
    // host joined it (IP_MULTICAST_ALL, which Node cannot turn off): joined nowhere, we
    // must not pretend to hear anything. (Node cannot tell us the arrival interface either.)
    if (!this.isOpen || !this.joinedSomewhere()) return;
    this.onDatagram(msg, from);
  }

  /** Per datagram, so a loop rather than an array of the links. */
  private joinedSomewhere(): boolean {
    for (const l of this.links.values()) if (l.joined) return true;
    return false;
  }

  private onReceiverError(sock: dgram.Socket, err: Error): void {
    if (this.recv !== sock) return;
    this.recv = undefined;
    void closeSocket(sock);
    this.problems.report('recv', `receiving on ${this.group}:${this.port} failed: ${explain(err)}`);
    this.onStatusChange();
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
        void closeSocket(sock); // closed, or the interface went away while we bound
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

  private sendOn(link: Link, buf: Buffer): Promise<void> {
    const sock = link.socket;
    if (!sock) return Promise.resolve();
    const key = `send:${link.address}`;
    return new Promise((resolve) => {
      const done = (err: Error | null): void => {
        if (err) {
          this.problems.report(key, `cannot send beacons on ${link.name} (${link.address}) to ${this.group}:${this.port}: ${explain(err)}`);
        } else {
          this.sentAt = Date.now();
          this.problems.clear(key);
        }
        this.onStatusChange();
        resolve();
      };
      try {
        sock.send(buf, this.port, this.group, done);
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err))); // closed under us by close()
      }
    });
  }
}

// ---- small helpers --------------------------------------------------------------------------

function bindSocket(sock: dgram.Socket, port: number, address: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.off('close', onClose);
      reject(err);
    };
    // close() may close the socket before the bind completes: do not hang the round.
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
