/**
 * The asking side of the control protocol: one connection per request, one line out, one
 * line back. Every way the answer can fail to come is a named error, so callers that ask
 * many peers at once can tell a slow peer from a broken one.
 */
import net from 'node:net';
import { parseTorrent, type Metainfo } from '../metainfo/metainfo.js';
import {
  LineDecoder, MAX_RESPONSE_LINE, parseResponse, encodeMessage, ControlProtocolError,
  type ControlRequest, type ControlResponse,
} from '../wire/control-codec.js';
import { TimeoutError, ClosedError } from '../util/errors.js';
import { connectPrivate, describeTlsError, isTlsFailure, PrivateLinkError } from '../security/tls.js';

export const DEFAULT_CONTROL_TIMEOUT_MS = 5_000;

export interface ControlRequestOptions {
  /** Whole exchange, connect included; 5 s by default. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** A private swarm's TLS key: the request goes inside TLS 1.3 with it (security/tls.ts). */
  psk?: Buffer;
}

/**
 * Send one request and resolve with its validated answer. Rejects with TimeoutError,
 * ClosedError, ControlProtocolError (malformed or oversized answer), the socket's own
 * error (ECONNREFUSED, ...), or the signal's reason when aborted.
 */
export function controlRequest(host: string, port: number, request: ControlRequest, opts: ControlRequestOptions = {}): Promise<ControlResponse> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS;
  const { signal } = opts;
  return new Promise<ControlResponse>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const decoder = new LineDecoder(MAX_RESPONSE_LINE);
    const { psk } = opts;
    const socket = psk ? connectPrivate(host, port, psk) : net.connect({ host, port });
    let settled = false;
    const finish = (err: unknown, res?: ControlResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (res) resolve(res);
      else reject(err);
    };
    const onAbort = () => finish(signal?.reason);
    const timer = setTimeout(() => finish(new TimeoutError(`${host}:${port} did not answer ${request.type} within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.setNoDelay(true);
    // TLS keeps what is written until its handshake is done: the request goes at once either way.
    socket.write(encodeMessage(request));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const line of decoder.push(chunk)) {
          if (line.trim() === '') continue;
          return finish(null, parseResponse(line));
        }
      } catch (err) {
        // Keep the class (LineTooLongError stays one), but say which peer it was.
        if (err instanceof ControlProtocolError) err.message = `${host}:${port}: ${err.message}`;
        finish(err);
      }
    });
    socket.on('error', (err) => finish(psk && isTlsFailure(err) ? new PrivateLinkError(`${host}:${port}: ${describeTlsError(err)}`) : err));
    socket.on('close', () => finish(new ClosedError(`${host}:${port} closed the connection before answering ${request.type}`)));
  });
}

/**
 * Fetch the .torrent of `infohashHex` from a peer. The infohash is recomputed from the
 * bytes received, so a peer cannot hand us some other file under the name we asked for.
 * (Tracker URLs in the answer are outside the infohash and so are only the peer's word.)
 */
export async function fetchMetainfo(host: string, port: number, infohashHex: string, opts: ControlRequestOptions = {}): Promise<Metainfo> {
  const wanted = infohashHex.toLowerCase();
  if (!/^[0-9a-f]{40}$/.test(wanted)) throw new TypeError(`not an infohash: ${JSON.stringify(infohashHex)}`);
  const res = await controlRequest(host, port, { type: 'metainfo', infohash: wanted }, opts);
  if (res.type === 'ERROR') throw new Error(`${host}:${port} has no metainfo for ${wanted}: ${res.error}`);
  if (res.type !== 'METAINFO') throw new ControlProtocolError(`${host}:${port} answered ${res.type} to a metainfo request`);
  let m: Metainfo;
  try {
    m = parseTorrent(Buffer.from(res.torrent, 'base64'));
  } catch (err) {
    throw new ControlProtocolError(`${host}:${port} sent a bad torrent for ${wanted}: ${(err as Error).message}`);
  }
  if (m.infoHashHex !== wanted || res.infohash !== wanted) {
    throw new ControlProtocolError(`${host}:${port} sent metainfo for ${m.infoHashHex} when asked for ${wanted}`);
  }
  return m;
}
