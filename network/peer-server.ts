import net from 'node:net';
import { WarnLimiter, type Logger } from './util/log.js';
import { FairShare } from './util/fair-share.js';
import { specificAddress } from './util/addresses.js';
import { Peer, type PeerTimeouts } from './swarm/peer.js';
import type { WireMessage } from './wire/peer-wire.js';
import type { Hello } from './swarm/peer.js';
import { serveControl, type ControlHandler, type ControlLimits } from './control/control-server.js';

export interface PeerServerInit {
  /** Listen address; undefined listens on every interface. */
  host?: string;
  port: number;
  logger: Logger;
  maxConnections: number;
  /** Connections one address (an IPv6 /64) may hold; default a quarter of `maxConnections`. */
  maxConnectionsPerAddress?: number;
  peerTimeouts: PeerTimeouts;
  control: ControlLimits;
  /** The torrent an incoming handshake names, or null if we do not share it. */
  findTorrent(infoHash: Buffer): Promise<{ accept(peer: Peer, hello: Hello, early: WireMessage[]): void } | null>;
  controlHandler: ControlHandler;
}

/** Messages a peer may send after its handshake while we look its torrent up; more is a flood. */
export const MAX_EARLY_MESSAGES = 256;
/** Warnings about what remote peers do, at most this many a minute (the rest are counted). */
export const PEER_WARNINGS_PER_MINUTE = 30;

/**
 * The node's one TCP port. The first byte decides: 0x13 starts a BitTorrent handshake,
 * '{' the JSON-lines control protocol; anything else is refused. Connections share the
 * slots fairly between addresses (a per-address cap; when all are taken a newcomer takes one
 * from the address holding the most), must say something within the handshake timeout, and
 * are logged (at a bounded rate) and closed, never crashing the server, when they misbehave.
 */
export class PeerServer {
  private server: net.Server | null = null;
  private readonly sockets: FairShare<net.Socket>;
  private readonly warnings: WarnLimiter;
  /** Connections refused or cut for another address's sake, since start. */
  readonly refused = { full: 0, perAddress: 0, evicted: 0, protocol: 0, silent: 0 };
  port = 0;

  constructor(private readonly init: PeerServerInit) {
    this.sockets = new FairShare(init.maxConnections, init.maxConnectionsPerAddress ?? Math.max(1, Math.floor(init.maxConnections / 4)));
    this.warnings = new WarnLimiter(init.logger, PEER_WARNINGS_PER_MINUTE);
  }

  /** The one address the port listens on, or undefined when it listens on every interface (after start). */
  get boundAddress(): string | undefined {
    return specificAddress((this.server?.address() as net.AddressInfo | null)?.address);
  }

  get connections(): number {
    return this.sockets.size;
  }

  async start(): Promise<number> {
    if (this.server) return this.port;
    const server = net.createServer((s) => this.onConnection(s));
    this.server = server;
    server.on('error', (err) => this.init.logger.error({ err: err.message }, 'peer server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.init.host, port: this.init.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const s of [...this.sockets.values()]) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const who = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', () => {}); // reported by whoever owns the socket next; never crash
    const admission = this.sockets.admit(socket.remoteAddress);
    if (!admission.ok) {
      this.refused[admission.full === 'all' ? 'full' : 'perAddress']++;
      this.warnings.warn({ peer: who }, `refusing connection: ${admission.reason}`);
      socket.destroy();
      return;
    }
    if (admission.evict) {
      const old = admission.evict;
      this.refused.evicted++;
      this.sockets.delete(old);
      this.warnings.warn({ peer: `${old.remoteAddress}:${old.remotePort}`, for: who }, 'closing connection: its address holds the most of the slots, and another address needs one');
      old.destroy();
    }
    this.sockets.add(socket, socket.remoteAddress);
    socket.once('close', () => this.sockets.delete(socket));
    const timer = setTimeout(() => {
      this.refused.silent++;
      this.warnings.warn({ peer: who }, `closing connection: nothing received within ${this.init.peerTimeouts.handshakeMs} ms`);
      socket.destroy();
    }, this.init.peerTimeouts.handshakeMs);
    timer.unref();
    socket.once('data', (first: Buffer) => {
      clearTimeout(timer);
      if (first[0] === 0x13) this.bittorrent(socket, first, who);
      else if (first[0] === 0x7b) serveControl(socket, first, this.init.controlHandler, { ...this.init.control, warnings: this.warnings }, this.init.logger);
      else {
        this.refused.protocol++;
        this.warnings.warn({ peer: who, firstByte: first[0] }, 'refusing connection: neither a BitTorrent handshake nor a control message');
        socket.destroy();
      }
    });
  }

  private bittorrent(socket: net.Socket, first: Buffer, who: string): void {
    const log = this.init.logger;
    const peer = new Peer(socket, socket.remoteAddress ?? '?', socket.remotePort ?? 0, false, this.init.peerTimeouts);
    const early: WireMessage[] = [];
    let handshake = false;
    peer.events = {
      message: (p, msg) => {
        if (handshake) {
          // Arrived while we look the torrent up: kept for it, up to a bound.
          if (early.length >= MAX_EARLY_MESSAGES) {
            this.warnings.warn({ peer: who }, `closing peer: more than ${MAX_EARLY_MESSAGES} messages before its torrent was found`);
            return p.close(`more than ${MAX_EARLY_MESSAGES} messages before its torrent was found`);
          }
          return void early.push(copyMessage(msg));
        }
        if (msg.type !== 'handshake') return p.close('message before handshake');
        handshake = true;
        this.init
          .findTorrent(msg.infoHash)
          .then((torrent) => {
            if (p.closed) return;
            if (!torrent) {
              log.info({ peer: who, infohash: msg.infoHash.toString('hex') }, 'closing peer: asked for a torrent we do not share');
              return p.close('unknown infohash');
            }
            torrent.accept(p, { peerId: msg.peerId, reserved: msg.reserved }, early);
          })
          .catch((err: Error) => {
            log.error({ peer: who, err: err.message }, 'could not open a shared file for a peer');
            p.close('local error');
          });
      },
      close: (_p, reason) => log.debug({ peer: who, reason }, 'connection closed before its handshake completed'),
    };
    peer.feed(first);
  }
}

/** Decoded byte fields are views valid only during the decoder's callback: copy to keep. */
function copyMessage(msg: WireMessage): WireMessage {
  if (msg.type === 'piece') return { ...msg, block: Buffer.from(msg.block) };
  if (msg.type === 'bitfield') return { ...msg, bits: Buffer.from(msg.bits) };
  if (msg.type === 'extended' || msg.type === 'unknown') return { ...msg, payload: Buffer.from(msg.payload) };
  return msg;
}
