/**
 * uTP (BEP 29) through `utp-native`, the libutp binding WebTorrent uses: the only part of
 * Shoal that knows the package. It is loaded when first needed; a machine without it (or
 * whose build of it fails) runs TCP only, and says why once. libutp speaks IPv4 only here.
 *
 * One UDP socket per node, on the peer port's number, both accepts and dials: peers see our
 * uTP connections come from the port they can reach us on, as libtorrent's do.
 */
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';

/** A uTP connection: a duplex byte stream, like a TCP socket without its options. */
export interface UtpConnection extends Duplex {
  remoteAddress: string;
  remotePort: number;
}

/** The part of utp-native's socket we use. */
interface NativeSocket extends EventEmitter {
  listen(port: number, host: string): void;
  connect(port: number, host: string): UtpConnection;
  close(cb?: () => void): void;
  address(): { address: string; port: number };
  connections: UtpConnection[];
  setRecvBufferSize(n: number): void;
  setSendBufferSize(n: number): void;
}

interface NativeModule {
  createServer(opts: { allowHalfOpen: boolean }): NativeSocket;
}

let loaded: NativeModule | Error | undefined;

function native(): NativeModule | Error {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('utp-native') as NativeModule;
    } catch (err) {
      loaded = new Error(`utp-native could not be loaded (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return loaded;
}

/** Why this machine cannot speak uTP, or null when it can. */
export function utpMissing(): string | null {
  const m = native();
  return m instanceof Error ? m.message : null;
}

/** Can a uTP socket bound to `host` (undefined: every interface) be had at all? */
export function utpCanBind(host: string | undefined): boolean {
  return host === undefined || host === '' || isIPv4(host) || host === '0.0.0.0';
}

/** uTP connections a node accepts and dials at once, together (the peer server also counts them against its own cap). */
const MAX_UTP_CONNECTIONS = 512;
/**
 * UDP socket buffers asked for (the kernel caps them at net.core.rmem_max / wmem_max). With
 * Linux's default 208 KiB, loopback drops datagrams under load and uTP crawls at 13 MB/s;
 * with 4 MiB it moves about 120 MB/s.
 */
const UDP_BUFFER = 4 * 1024 * 1024;

/** The node's uTP socket: listening on one UDP port, dialling from it. */
export class UtpEndpoint {
  private closed = false;

  private constructor(private readonly socket: NativeSocket) {}

  /** Listen for uTP on `port` (UDP); rejects when utp-native is missing or the port is taken. */
  static open(host: string | undefined, port: number, onConnection: (c: UtpConnection) => void): Promise<UtpEndpoint> {
    const m = native();
    if (m instanceof Error) return Promise.reject(m);
    if (!utpCanBind(host)) return Promise.reject(new Error(`uTP listens on IPv4 only, not on ${host}`));
    // Not half-open: a peer that ends its side is gone, as with our TCP sockets.
    const socket = m.createServer({ allowHalfOpen: false });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('listening', () => {
        socket.off('error', reject);
        socket.on('error', () => {}); // a datagram that could not be sent: libutp retries or the connection times out
        try {
          socket.setRecvBufferSize(UDP_BUFFER);
          socket.setSendBufferSize(UDP_BUFFER);
        } catch {
          // the default buffers: slower, still correct
        }
        socket.on('connection', (c: UtpConnection) => {
          if (socket.connections.length > MAX_UTP_CONNECTIONS) return void c.destroy();
          onConnection(c);
        });
        resolve(new UtpEndpoint(socket));
      });
      socket.listen(port, host || '0.0.0.0');
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** A uTP connection to an IPv4 peer ('connect' once its answer arrives). */
  connect(host: string, port: number): UtpConnection {
    return this.socket.connect(port, host);
  }

  /** Close every connection, then the socket (bounded: libutp may wait for its last acks). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.socket.connections]) c.destroy();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2_000);
      timer.unref();
      this.socket.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
