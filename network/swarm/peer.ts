import net, { type Socket } from 'node:net';
import {
  WireDecoder, WireError, type WireMessage, KEEP_ALIVE, encodePieceHeader, DEFAULT_MAX_FRAME,
} from '../wire/peer-wire.js';
import { Bitfield } from '../wire/bitfield.js';
import type { PickerPeer } from './picker.js';
import { RateMeter } from './rate.js';

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

export interface PeerEvents {
  message(peer: Peer, msg: WireMessage): void;
  close(peer: Peer, reason: string): void;
}

/**
 * One BitTorrent connection: the socket, the decoder, the four choke/interest flags and
 * the timers. It moves bytes and tracks state; what the messages mean is the torrent's job.
 */
export class Peer implements PickerPeer {
  bitfield: Bitfield = new Bitfield(0);
  readonly requested = new Set<number>();
  /** Requests this peer made of us, waiting to be served. */
  readonly uploads: Array<{ index: number; begin: number; length: number }> = [];
  peerId: Buffer | null = null;
  amChoking = true;
  amInterested = false;
  peerChoking = true;
  peerInterested = false;
  /** Hash failures of pieces this peer alone sent. */
  strikes = 0;
  /** Times its requests timed out. */
  stalls = 0;
  /** When a requested block last arrived (or requests were last (re)started). */
  lastBlockAt = Date.now();
  readonly down = new RateMeter();
  readonly up = new RateMeter();
  /** How many requests we keep in flight to this peer; grows with its rate. */
  queueDepth = 128;
  pumping = false;
  closed = false;
  events: PeerEvents | null = null;
  readonly decoder: WireDecoder;
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

  get label(): string {
    return `${this.address}:${this.port}`;
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

  handshakeDone(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  setTorrent(pieceCount: number, maxFrame: number): void {
    this.bitfield = new Bitfield(pieceCount);
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
    this.up.add(block.length);
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
