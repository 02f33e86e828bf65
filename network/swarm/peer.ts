import net, { type Socket } from 'node:net';
import { WireDecoder, WireError, type WireMessage, KEEP_ALIVE, encodePieceHeader, DEFAULT_MAX_FRAME } from '../wire/peer-wire.js';
import { hostPort } from '../util/addresses.js';

export interface PeerTimeouts {
  /** The remote handshake must arrive within this. */
  handshakeMs: number;
  /** A connection that sends nothing at all (not even keep-alives) for this long is closed. */
  idleMs: number;
  /** We send a keep-alive after this much silence of ours. */
  keepAliveMs: number;
}

export const DEFAULT_PEER_TIMEOUTS: PeerTimeouts = { handshakeMs: 10_000, idleMs: 150_000, keepAliveMs: 60_000 };

/** Bytes we let queue in the socket before serving more requests (back-pressure). */
export const SEND_HIGH_WATER = 4 * 1024 * 1024;

/** What a remote handshake told us: who it is, and what it speaks (the reserved bytes). */
export interface Hello {
  peerId: Buffer;
  reserved: Buffer;
}

export interface PeerEvents {
  message(peer: Peer, msg: WireMessage): void;
  close(peer: Peer, reason: string): void;
}

/**
 * One BitTorrent connection as a transport: the socket, the frame decoder, the handshake and
 * idle timers, keep-alives, and writes with back-pressure. It knows nothing of what the
 * messages mean: before the handshake its owner is the peer server or the dialer, after it
 * the torrent's PeerSession, each setting `events`. Every way it can end (a protocol
 * violation in the frames, a timer, the socket) calls `events.close` once, with the reason.
 */
export class Peer {
  closed = false;
  events: PeerEvents | null = null;
  private readonly decoder: WireDecoder;
  private lastRecv = Date.now();
  private lastSent = Date.now();
  private handshakeTimer: NodeJS.Timeout | null;

  constructor(
    readonly socket: Socket,
    readonly address: string,
    readonly port: number,
    readonly outgoing: boolean,
    private readonly timeouts: PeerTimeouts,
  ) {
    this.decoder = new WireDecoder((m) => this.deliver(m), DEFAULT_MAX_FRAME, true);
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.close(`no handshake within ${timeouts.handshakeMs} ms`), timeouts.handshakeMs);
    this.handshakeTimer.unref();
    // Dialled sockets read into one reused buffer (see `dialSocket`); accepted ones emit 'data'.
    if (!outgoing) socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed by peer'));
  }

  /** host:port ([v6]:port) of the connection (an incoming peer's port is its ephemeral one). */
  get label(): string {
    return hostPort(this.address, this.port);
  }

  /** Feed raw bytes (the server passes the first chunk it peeked at through here). */
  feed(chunk: Buffer): void {
    if (this.closed) return;
    this.lastRecv = Date.now();
    try {
      this.decoder.push(chunk);
    } catch (err) {
      this.close(err instanceof WireError ? `protocol violation: ${err.message}` : `error handling message: ${(err as Error).message}`);
    }
  }

  /** The handshake is done and the torrent is known: no handshake timer, frames sized to the torrent. */
  established(maxFrame: number): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
    this.decoder.setMaxFrame(maxFrame);
  }

  send(buf: Buffer): boolean {
    if (this.closed) return false;
    this.lastSent = Date.now();
    return this.socket.write(buf);
  }

  /** Queue a piece message; `written` runs once the socket no longer needs `block`. Callers cork around batches. */
  sendBlock(index: number, begin: number, block: Buffer, written: () => void): void {
    if (this.closed) return written();
    this.lastSent = Date.now();
    this.socket.write(encodePieceHeader(index, begin, block.length));
    this.socket.write(block, written);
  }

  get congested(): boolean {
    return this.socket.writableLength >= SEND_HIGH_WATER;
  }

  /** Periodic check from the owner: idle timeout and keep-alives. */
  tick(now: number): void {
    if (this.closed) return;
    if (now - this.lastRecv > this.timeouts.idleMs) return this.close(`idle for ${this.timeouts.idleMs} ms`);
    if (now - this.lastSent > this.timeouts.keepAliveMs) this.send(KEEP_ALIVE);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.socket.destroy();
    this.events?.close(this, reason);
  }

  private deliver(msg: WireMessage): void {
    if (this.closed) return;
    this.events?.message(this, msg);
  }
}

/** Bytes per read on dialled sockets: one buffer per connection, reused for every read. */
const READ_BUFFER = 256 * 1024;

/**
 * Dial a peer with a reused receive buffer (no allocation per read, which at loopback
 * speeds is most of the garbage a download makes). `feed` gets views valid for the call.
 */
export function dialSocket(host: string, port: number, feed: (chunk: Buffer) => void): Socket {
  return net.connect({
    host,
    port,
    onread: { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n: number, buf: Uint8Array) => {
      feed((buf as Buffer).subarray(0, n));
      return true; // keep reading
    } },
  });
}
