/**
 * The listening side of `subscribe`: one long-lived connection to a peer that answers
 * with a snapshot of what it shares, then an EVENT line whenever that changes. Silence
 * longer than three heartbeats counts as a dead link. Reconnecting is the caller's call.
 */
import net from 'node:net';
import {
  LineDecoder, MAX_RESPONSE_LINE, parseResponse, encodeMessage,
  type FileEntry, type LibraryEventName, type NodeSelf,
} from '../wire/control-codec.js';
import { SUBSCRIPTION_HEARTBEAT_MS } from './control-server.js';
import { TimeoutError, ClosedError } from '../util/errors.js';
import { connectPrivate, describeTlsError, isTlsFailure, PrivateLinkError } from '../security/tls.js';

export interface SubscriptionHandlers {
  snapshot(files: FileEntry[], self: NodeSelf | undefined): void;
  event(event: LibraryEventName, file: FileEntry): void;
  /** The subscription ended: by `close()` (no error) or because the link failed. */
  closed(err: Error | null): void;
}

export interface SubscriptionOptions {
  /** Connect and snapshot must arrive within this. */
  timeoutMs?: number;
  /** Silence longer than this ends the subscription; three heartbeats by default. */
  idleMs?: number;
  /** The local address to connect from (a host with several). */
  localAddress?: string;
  /** A private swarm's TLS key: the stream runs inside TLS 1.3 with it (security/tls.ts). */
  psk?: Buffer;
}

export interface Subscription {
  close(): void;
}

export function subscribe(host: string, port: number, h: SubscriptionHandlers, opts: SubscriptionOptions = {}): Subscription {
  const decoder = new LineDecoder(MAX_RESPONSE_LINE);
  const { psk } = opts;
  const socket = psk ? connectPrivate(host, port, psk, { localAddress: opts.localAddress }) : net.connect({ host, port, localAddress: opts.localAddress });
  let snapshotSeen = false;
  let ended = false;
  const end = (err: Error | null) => {
    if (ended) return;
    ended = true;
    clearTimeout(first);
    socket.destroy();
    h.closed(err);
  };
  const first = setTimeout(() => end(new TimeoutError(`${host}:${port} did not answer subscribe within ${opts.timeoutMs ?? 5000} ms`)), opts.timeoutMs ?? 5000);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);
  socket.setTimeout(opts.idleMs ?? 3 * SUBSCRIPTION_HEARTBEAT_MS, () => end(new TimeoutError(`${host}:${port}: subscription went silent`)));
  // TLS keeps what is written until its handshake is done: the request goes at once either way.
  socket.write(encodeMessage({ type: 'subscribe' }));
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const line of decoder.push(chunk)) {
        if (ended) return;
        if (line.trim() === '') continue;
        const msg = parseResponse(line);
        if (msg.type === 'SUBSCRIBED' && !snapshotSeen) {
          snapshotSeen = true;
          clearTimeout(first);
          h.snapshot(msg.files, msg.self);
        } else if (msg.type === 'EVENT' && snapshotSeen) h.event(msg.event, msg.file);
        else if (msg.type === 'HEARTBEAT' && snapshotSeen) continue;
        else if (msg.type === 'ERROR') return end(new Error(`${host}:${port} ${snapshotSeen ? 'ended' : 'refused'} the subscription: ${msg.error}`));
        else return end(new Error(`${host}:${port} sent ${msg.type} on a subscription`));
      }
    } catch (err) {
      end(err as Error);
    }
  });
  socket.on('error', (err) => end(psk && isTlsFailure(err) ? new PrivateLinkError(`${host}:${port}: ${describeTlsError(err)}`) : err));
  socket.on('close', () => end(new ClosedError(`${host}:${port} closed the subscription`)));
  return { close: () => end(null) };
}
