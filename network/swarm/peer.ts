import net, { type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WireDecoder, WireError, type WireMessage, KEEP_ALIVE, encodePieceHeader, DEFAULT_MAX_FRAME } from '../wire/peer-wire.js';
import { MseError, type MseHandshake, type MseResult } from '../wire/mse.js';
import type { Rc4 } from '../wire/rc4.js';
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

/** What carries a connection's bytes. */
export type TransportKind = 'tcp' | 'utp';

/** How a connection's bytes are protected: plain BitTorrent, an MSE handshake under way, then MSE with plaintext or RC4 payload. */
export type Encryption = 'none' | 'pending' | 'plaintext' | 'rc4';

export interface PeerOptions {
  transport?: TransportKind;
  /** The owner feeds received bytes itself (a dialled TCP socket reading into one reused buffer, `dialSocket`). */
  fed?: boolean;
}

export interface PeerEvents {
  message(peer: Peer, msg: WireMessage): void;
  close(peer: Peer, reason: string): void;
}

/**
 * One BitTorrent connection as a transport over any duplex byte stream (a TCP socket, a uTP
 * connection): the frame decoder, the handshake and idle timers, keep-alives, writes with
 * back-pressure, and message stream encryption when the connection uses it (the MSE
 * handshake runs here before the BitTorrent one, then RC4 applies to every byte both ways, or
 * to none). It knows nothing of what the messages mean: before the handshake its owner is
 * the peer server or the dialer, after it the torrent's PeerSession, each setting `events`.
 * Every way it can end (a protocol violation in the frames or the MSE handshake, a timer,
 * the stream) calls `events.close` once, with the reason.
 */
export class Peer {
  closed = false;
  events: PeerEvents | null = null;
  readonly transport: TransportKind;
  encryption: Encryption = 'none';
  /** Why the MSE handshake failed, when it did (the peer's fault; the close reason says it too). */
  mseFailure: MseError | null = null;
  private readonly decoder: WireDecoder;
  private lastRecv = Date.now();
  private lastSent = Date.now();
  private handshakeTimer: NodeJS.Timeout | null;
  private mse: { handshake: MseHandshake; done: (r: MseResult) => void } | null = null;
  private encrypt: Rc4 | null = null;
  private decrypt: Rc4 | null = null;

  constructor(
    readonly socket: Duplex,
    readonly address: string,
    readonly port: number,
    readonly outgoing: boolean,
    private readonly timeouts: PeerTimeouts,
    opts: PeerOptions = {},
  ) {
    this.transport = opts.transport ?? 'tcp';
    this.decoder = new WireDecoder((m) => this.deliver(m), DEFAULT_MAX_FRAME, true);
    if (socket instanceof net.Socket) socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(() => this.close(`no handshake within ${timeouts.handshakeMs} ms`), timeouts.handshakeMs);
    this.handshakeTimer.unref();
    if (!opts.fed) socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    socket.on('close', () => this.close('connection closed by peer'));
  }

  /**
   * Run an MSE handshake before anything else: its first bytes go out now (the initiator's
   * key), received bytes go to it until it is done, then `done` learns the outcome and the
   * payload that came with it is decoded (the initiator's IA holds its BitTorrent handshake).
   * Nothing may be sent meanwhile: the initiator's handshake travels inside the MSE one.
   */
  startMse(handshake: MseHandshake, done: (r: MseResult) => void = () => {}): void {
    this.encryption = 'pending';
    this.mse = { handshake, done };
    const first = handshake.start();
    if (first.length > 0) this.writeRaw(first);
  }

  /** host:port ([v6]:port) of the connection (an incoming peer's port is its ephemeral one). */
  get label(): string {
    return hostPort(this.address, this.port);
  }

  /** Feed raw bytes (the server passes the first chunk it peeked at through here); an RC4 stream is decrypted in place (the chunk is ours). */
  feed(chunk: Buffer): void {
    if (this.closed) return;
    this.lastRecv = Date.now();
    if (this.mse) return this.feedMse(chunk);
    if (this.decrypt) this.decrypt.process(chunk);
    this.decode(chunk);
  }

  private feedMse(chunk: Buffer): void {
    const mse = this.mse!;
    let step;
    try {
      step = mse.handshake.push(chunk);
    } catch (err) {
      if (!(err instanceof MseError)) return this.close(`error in the encryption handshake: ${(err as Error).message}`);
      this.mseFailure = err;
      return this.close(`encryption handshake failed: ${err.message}`);
    }
    for (const b of step.out) this.writeRaw(b);
    const r = step.done;
    if (!r) return;
    this.mse = null;
    this.encryption = r.method;
    this.encrypt = r.encrypt;
    this.decrypt = r.decrypt;
    mse.done(r);
    if (!this.closed && r.rest.length > 0) this.decode(r.rest);
  }

  private decode(chunk: Buffer): void {
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
    // Encrypted into a copy: callers reuse their buffers (our handshake, KEEP_ALIVE) for every peer.
    return this.writeRaw(this.encrypt ? (this.encrypt.process(Buffer.from(buf)) as Buffer) : buf);
  }

  private writeRaw(buf: Buffer): boolean {
    this.lastSent = Date.now();
    return this.socket.write(buf);
  }

  /** Queue a piece message; `written` runs once the socket no longer needs `block`. Callers cork around batches. */
  sendBlock(index: number, begin: number, block: Buffer, written: () => void): void {
    if (this.closed) return written();
    this.lastSent = Date.now();
    const header = encodePieceHeader(index, begin, block.length);
    if (this.encrypt) {
      // The block is a view of a piece other peers are sent too: encrypt a copy, and the piece is free at once.
      const out = Buffer.concat([header, block]);
      this.encrypt.process(out);
      this.socket.write(out);
      return written();
    }
    this.socket.write(header);
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
