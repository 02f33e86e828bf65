/**
 * TCP between the nodes of a private swarm: TLS 1.3 with a pre-shared key (RFC 8446 §2.2,
 * psk_dhe_ke), the key derived from the swarm's secret by HKDF (security/secret.ts). Both
 * sides prove they hold the key in the handshake's binder and Finished messages, and an
 * ephemeral X25519 exchange gives every connection fresh keys (forward secrecy: the secret
 * taken later does not open recorded traffic). No certificates: the swarm's secret is the only
 * credential, as the issue asks, and nothing about the node (name, files) is sent before the
 * peer proved it. docs/security.md says why this and not certificates vouched for by the secret.
 *
 * A connection without the key learns nothing: the server's first bytes come only after the
 * client's binder checked out, and a client that is not TLS at all gets an alert and a close.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/** AES-128-GCM first (AES-NI makes it several GB/s), ChaCha20 for CPUs without it. */
export const PRIVATE_CIPHERS = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256';
/** What the client names its key by. One key per swarm, so a fixed identity. */
export const PSK_IDENTITY = 'shoal-swarm-v1';

/** Why a private connection failed, in words a log line can carry. */
export class PrivateLinkError extends Error {
  override name = 'PrivateLinkError';
}

const COMMON = {
  ciphers: PRIVATE_CIPHERS,
  minVersion: 'TLSv1.3',
  maxVersion: 'TLSv1.3',
} as const;

/**
 * Dial `host:port` as a node of the swarm whose key is `psk`. The socket can be written to at
 * once (TLS holds the bytes until the handshake is done); `secureConnect` says the peer proved
 * the key; a peer without it ends in an 'error' (see describeTlsError).
 */
export function connectPrivate(host: string, port: number, psk: Buffer, opts: { localAddress?: string } = {}): tls.TLSSocket {
  const socket = net.connect({ host, port, localAddress: opts.localAddress });
  socket.setNoDelay(true);
  return tls.connect({
    ...COMMON,
    socket,
    pskCallback: () => ({ psk, identity: PSK_IDENTITY }),
    checkServerIdentity: () => undefined,
  });
}

/**
 * The server side of a private connection on an accepted socket. `secure` fires once the
 * client proved the key; `refused(why)` once when it did not (the socket is destroyed).
 */
export function acceptPrivate(socket: net.Socket | Duplex, psk: Buffer, refused: (why: string) => void): tls.TLSSocket {
  const secure = new tls.TLSSocket(socket as net.Socket, {
    ...COMMON,
    isServer: true,
    // An unknown identity gets no key: the handshake fails with a decrypt_error alert.
    pskCallback: (_sock: tls.TLSSocket, identity: string) => (identity === PSK_IDENTITY ? psk : null),
  } as tls.TLSSocketOptions);
  let told = false;
  const fail = (err: Error) => {
    if (told) return;
    told = true;
    refused(describeTlsError(err));
    secure.destroy();
    socket.destroy();
  };
  secure.on('error', fail);
  // A TLS error on a server socket also comes as tlsClientError on servers; here on the socket.
  return secure;
}

/** A TLS failure as a reason a user can act on. */
export function describeTlsError(err: Error & { code?: string }): string {
  const code = err.code ?? '';
  const msg = err.message;
  if (/wrong version number|unknown protocol|http request|packet length too long|record layer failure/i.test(msg + code))
    return 'not a TLS handshake: this node is in a private swarm and speaks only TLS with the swarm\'s key';
  if (/decrypt|bad record mac|binder|psk|handshake failure|illegal parameter|ALERT_DECRYPT|ALERT_ILLEGAL/i.test(msg + code))
    return 'the TLS handshake failed: the peer does not hold this swarm\'s secret';
  if (/no shared cipher|no suitable|unsupported protocol|version too low/i.test(msg + code)) return `the TLS handshake failed: ${msg}`;
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'the connection was closed during the TLS handshake';
  return `the TLS handshake failed: ${msg}`;
}

/** An error of the TLS layer (a handshake refused, an alert), not of the network under it. */
export function isTlsFailure(err: Error & { code?: string }): boolean {
  return err.code === 'EPROTO' || (err.code ?? '').startsWith('ERR_SSL') || /SSL routines|alert/i.test(err.message);
}
