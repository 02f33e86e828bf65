/**
 * How we reach a peer: over TCP or uTP, with an MSE handshake or a plain one, in the order
 * the node's transport policy says, falling back the way libtorrent and Transmission do. A
 * transport that does not connect gives way to the next transport; a connection that gives
 * no handshake back (an MSE handshake the peer refuses: it closes, or sends garbage) gives
 * way to the next way on a new connection: a plain handshake when encryption is only
 * preferred, then the other transport. At most four connections per dial, one at a time;
 * once the peer's handshake names our torrent the dial is over.
 */
import { isIPv4 } from 'node:net';
import { cryptoFor, MseHandshake, type EncryptionMode } from '../wire/mse.js';
import type { WireMessage } from '../wire/peer-wire.js';
import { Peer, dialSocket, type PeerTimeouts, type TransportKind } from './peer.js';
import type { UtpEndpoint } from './utp.js';
import { connectPrivate, describeTlsError, isTlsFailure } from '../security/tls.js';

/** `on`: accept uTP and dial it when TCP does not connect; `prefer`: dial uTP first; `off`: no uTP at all. */
export type UtpMode = 'on' | 'off' | 'prefer';

/** How this node dials and what it accepts: the `--encryption` and `--utp` options. */
export interface TransportPolicy {
  encryption: EncryptionMode;
  utp: UtpMode;
  /** The node's uTP socket once it listens (dials leave from the peer port's number); null without one. */
  utpEndpoint(): UtpEndpoint | null;
  /** A private swarm's TLS key: every dial is TLS 1.3 over TCP with it, no uTP, no MSE (security/tls.ts). */
  psk?: Buffer;
}

export const DEFAULT_ENCRYPTION: EncryptionMode = 'prefer';
export const DEFAULT_UTP: UtpMode = 'on';

/** Plain BitTorrent over TCP: what parts built without a node (and tests of them) use. */
export const PLAIN_TCP: TransportPolicy = { encryption: 'off', utp: 'off', utpEndpoint: () => null };

export interface DialInit {
  host: string;
  port: number;
  infoHash: Buffer;
  /** Our BitTorrent handshake for this torrent (inside the MSE handshake when encrypted). */
  handshake: Buffer;
  policy: TransportPolicy;
  timeouts: PeerTimeouts;
  connectTimeoutMs: number;
}

export interface DialEvents {
  /** The peer's handshake named our torrent: the transport is the owner's (set `peer.events` now: more messages may follow at once). */
  established(peer: Peer, hello: Extract<WireMessage, { type: 'handshake' }>): void;
  /** Every way failed; the reason of the last. */
  failed(reason: string): void;
}

type Way = { transport: TransportKind; mse: boolean };

/** The ways to try, in order, for one peer. */
export function dialWays(policy: TransportPolicy, host: string): Way[] {
  if (policy.psk) return [{ transport: 'tcp', mse: false }];
  const utp = policy.utp !== 'off' && policy.utpEndpoint() !== null && isIPv4(host);
  const transports: TransportKind[] = !utp ? ['tcp'] : policy.utp === 'prefer' ? ['utp', 'tcp'] : ['tcp', 'utp'];
  const mse = policy.encryption === 'off' ? [false] : policy.encryption === 'require' ? [true] : [true, false];
  return transports.flatMap((transport) => mse.map((m) => ({ transport, mse: m })));
}

/**
 * One dial of one peer through its ways. `peer` is the connection being tried now (so an
 * owner can close it); `cancel()` stops for good.
 */
export class Dial {
  peer: Peer | null = null;
  private readonly ways: Way[];
  private next = 0;
  private over = false;

  constructor(private readonly init: DialInit, private readonly events: DialEvents) {
    this.ways = dialWays(init.policy, init.host);
    this.attempt();
  }

  cancel(reason: string): void {
    if (this.over) return;
    this.over = true;
    this.peer?.close(reason);
  }

  private attempt(): void {
    let way = this.ways[this.next++]!;
    const { host, port, timeouts, connectTimeoutMs } = this.init;
    let peer: Peer | null = null;
    let stream;
    const { psk } = this.init.policy;
    // The uTP socket can close while a dial falls back (the node is stopping): its ways are out.
    const utp = this.init.policy.utpEndpoint();
    while (way.transport === 'utp' && !utp) {
      const next = this.ways[this.next++];
      if (!next) {
        this.over = true;
        return this.events.failed('utp: the node\'s uTP socket is closed');
      }
      way = next;
    }
    if (psk) {
      stream = connectPrivate(host, port, psk);
      // Before the Peer's own listener: the reason names the secret, not an OpenSSL alert.
      stream.once('error', (err: Error) => void (isTlsFailure(err) && peer?.close(describeTlsError(err))));
    } else if (way.transport === 'utp') stream = utp!.connect(host, port);
    else stream = dialSocket(host, port, (chunk) => peer?.feed(chunk));
    peer = new Peer(stream, host, port, true, timeouts, { transport: way.transport, fed: way.transport === 'tcp' && !psk });
    this.peer = peer;
    const p = peer;
    let connected = false;
    const timer = setTimeout(() => p.close(`connect timed out after ${connectTimeoutMs} ms`), connectTimeoutMs);
    timer.unref();
    stream.once(psk ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      if (!way.mse) return void p.send(this.init.handshake);
      const { provide } = cryptoFor(this.init.policy.encryption === 'require' ? 'require' : 'prefer');
      p.startMse(MseHandshake.initiator({ infoHash: this.init.infoHash, provide, payload: this.init.handshake }));
    });
    p.events = {
      message: (_p, msg) => {
        const wrong = msg.type !== 'handshake' ? 'message before handshake' : !msg.infoHash.equals(this.init.infoHash) ? 'handshake for another torrent' : null;
        if (wrong || msg.type !== 'handshake') {
          this.next = this.ways.length; // it answered, wrongly: no other way will do better
          return p.close(wrong ?? 'message before handshake');
        }
        this.over = true;
        this.events.established(p, msg);
      },
      close: (_p, reason) => {
        clearTimeout(timer);
        if (this.over) return;
        const why = `${way.transport}${way.mse ? '+mse' : ''}: ${reason}`;
        // Not connected: this transport is out, whatever the handshake. Connected but no
        // handshake came back (an MSE handshake refused, or a peer that takes only the other
        // transport and closes): the next way.
        if (!connected) while (this.ways[this.next] && this.ways[this.next]!.transport === way.transport) this.next++;
        if (this.next >= this.ways.length) {
          this.over = true;
          return this.events.failed(why);
        }
        this.attempt();
      },
    };
  }
}
