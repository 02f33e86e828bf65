import net from 'node:net';
import type { Duplex } from 'node:stream';
import { WarnLimiter, type Logger } from './util/log.js';
import { FairShare } from './util/fair-share.js';
import { hostPort, specificAddress } from './util/addresses.js';
import { Peer, type PeerTimeouts, type TransportKind } from './swarm/peer.js';
import type { WireMessage } from './wire/peer-wire.js';
import type { Hello } from './swarm/peer.js';
import { classifyFirstBytes } from './wire/first-bytes.js';
import { MseHandshake, cryptoFor, type EncryptionMode } from './wire/mse.js';
import { UtpEndpoint, type UtpConnection } from './swarm/utp.js';
import type { UtpMode } from './swarm/dial.js';
import { acceptPrivate } from './security/tls.js';
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
  /** The infohash of a torrent we run or share whose HASH('req2', infohash) this is (MSE names its torrent so). */
  findByReq2?(req2: Buffer): Buffer | undefined;
  /** Accept MSE (`prefer`), require it (`require`, plain handshakes refused) or not (`off`, the default). */
  encryption?: EncryptionMode;
  /** Accept uTP on the same port number (UDP) unless `off` (the default here). */
  utp?: UtpMode;
  controlHandler: ControlHandler;
  /**
   * A private swarm's TLS key (security/tls.ts): every TCP connection must be TLS 1.3 with it,
   * both protocols inside; uTP and MSE are not accepted. Undefined: an open node.
   */
  psk?: Buffer;
}

/** Messages a peer may send after its handshake while we look its torrent up; more is a flood. */
export const MAX_EARLY_MESSAGES = 256;
/** Warnings about what remote peers do, at most this many a minute (the rest are counted). */
export const PEER_WARNINGS_PER_MINUTE = 30;

/** A connection as the server sees it: a TCP socket or a uTP connection. */
type Conn = Duplex & { remoteAddress?: string; remotePort?: number };

/**
 * The node's one port, TCP and (with uTP) UDP of the same number. The first bytes decide:
 * "\x13BitTorrent protocol" starts a plain BitTorrent handshake, '{' the JSON-lines control
 * protocol (TCP only), bytes that look random an MSE handshake (when encryption is not off);
 * anything else is refused. Every connection, TCP and uTP together, shares the slots fairly
 * between addresses (a per-address cap; when all are taken a newcomer takes one from the
 * address holding the most), must complete its handshake within the handshake timeout, and
 * is logged (at a bounded rate) and closed, never crashing the server, when it misbehaves.
 */
export class PeerServer {
  private server: net.Server | null = null;
  private utp: UtpEndpoint | null = null;
  private readonly sockets: FairShare<Conn>;
  private readonly warnings: WarnLimiter;
  /** Connections refused or cut for another address's sake, since start. */
  readonly refused = { full: 0, perAddress: 0, evicted: 0, protocol: 0, silent: 0, tls: 0 };
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

  /** The uTP socket on our port, when uTP is on and could be had (dials leave from it too). */
  get utpEndpoint(): UtpEndpoint | null {
    return this.utp;
  }

  private get encryption(): EncryptionMode {
    return this.init.encryption ?? 'off';
  }

  async start(): Promise<number> {
    if (this.server) return this.port;
    const server = net.createServer((s) => this.onConnection(s, 'tcp'));
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
    if ((this.init.utp ?? 'off') !== 'off') {
      try {
        this.utp = await UtpEndpoint.open(this.init.host, this.port, (c) => this.onConnection(c, 'utp'));
      } catch (err) {
        // TCP serves everyone; uTP-first clients fall back to it.
        this.init.logger.warn({ port: this.port, err: (err as Error).message }, 'uTP is off: could not listen for it');
      }
    }
    return this.port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const s of [...this.sockets.values()]) s.destroy();
    await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), this.utp?.close()]);
    this.utp = null;
  }

  private onConnection(socket: Conn, transport: TransportKind): void {
    const log = this.init.logger;
    const who = hostPort(socket.remoteAddress ?? '?', socket.remotePort ?? 0);
    socket.on('error', () => {}); // reported by whoever owns the socket next; never crash
    const admission = this.sockets.admit(socket.remoteAddress);
    if (!admission.ok) {
      this.refused[admission.full === 'all' ? 'full' : 'perAddress']++;
      this.warnings.warn({ peer: who, transport }, `refusing connection: ${admission.reason}`);
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
    const { handshakeMs } = this.init.peerTimeouts;
    let seen: Buffer | null = null;
    const timer = setTimeout(() => {
      this.refused.silent++;
      this.warnings.warn({ peer: who, transport }, `closing connection: ${seen ? 'no complete handshake' : 'nothing received'} within ${handshakeMs} ms`);
      socket.destroy();
    }, handshakeMs);
    timer.unref();
    const { psk } = this.init;
    if (psk && transport !== 'tcp') {
      this.refused.tls++;
      this.warnings.warn({ peer: who, transport }, 'refusing connection: this node is in a private swarm and takes TLS over TCP only');
      return void socket.destroy();
    }
    // In a private swarm what follows is read inside TLS; the handshake timer covers the TLS handshake too.
    const conn: Conn = psk
      ? acceptPrivate(socket as net.Socket, psk, (why) => {
          this.refused.tls++;
          clearTimeout(timer);
          this.warnings.warn({ peer: who }, `refusing connection: ${why}`);
        })
      : socket;
    const mse = !psk && this.encryption !== 'off' && this.init.findByReq2 !== undefined;
    const onData = (chunk: Buffer): void => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const kind = classifyFirstBytes(seen, transport === 'tcp', mse);
      if (kind === null) return; // a few more bytes decide
      conn.off('data', onData);
      clearTimeout(timer);
      if (kind === 'control') return serveControl(conn as net.Socket, seen, this.init.controlHandler, { ...this.init.control, warnings: this.warnings }, log);
      if (kind === 'other') {
        this.refused.protocol++;
        this.warnings.warn({ peer: who, transport, firstByte: seen[0] }, 'refusing connection: neither a BitTorrent handshake nor a control message');
        return void socket.destroy();
      }
      if (kind === 'bittorrent' && this.encryption === 'require' && !psk) {
        this.warnings.warn({ peer: who, transport }, 'refusing peer: plain BitTorrent handshake, but encryption is required');
        return void socket.destroy();
      }
      this.bittorrent(conn, seen, who, transport, kind === 'mse');
    };
    conn.on('data', onData);
  }

  private bittorrent(socket: Conn, first: Buffer, who: string, transport: TransportKind, encrypted: boolean): void {
    const log = this.init.logger;
    const peer = new Peer(socket, socket.remoteAddress ?? '?', socket.remotePort ?? 0, false, this.init.peerTimeouts, { transport });
    const early: WireMessage[] = [];
    let handshake = false;
    /** The torrent the MSE handshake named: the BitTorrent handshake inside must name it too. */
    let skey: Buffer | null = null;
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
        if (skey && !msg.infoHash.equals(skey)) {
          this.warnings.warn({ peer: who }, 'closing peer: its handshake names another torrent than its encryption handshake');
          return p.close('handshake for another torrent than its encryption handshake');
        }
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
      close: (p, reason) => {
        // What an encrypted handshake did wrong is the peer's doing: said, as a garbage first byte is.
        if (p.mseFailure?.unknownTorrent) log.info({ peer: who, transport }, 'closing peer: asked for a torrent we do not share (encrypted)');
        else if (p.mseFailure) this.warnings.warn({ peer: who, transport }, `closing peer: ${reason}`);
        else log.debug({ peer: who, reason }, 'connection closed before its handshake completed');
      },
    };
    if (encrypted) {
      const { select } = cryptoFor(this.encryption === 'require' ? 'require' : 'prefer');
      peer.startMse(MseHandshake.responder({ lookup: (req2) => this.init.findByReq2!(req2), select }), (r) => (skey = r.infoHash));
    }
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
