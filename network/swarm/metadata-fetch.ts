/**
 * Metadata exchange from the asking side (BEP 9): with only an infohash (a magnet link) and
 * some peers, fetch the info dictionary from any BitTorrent client that has it. Each peer is
 * dialled with our handshake (extension protocol and fast extension), sent our extended
 * handshake, and asked for every 16 KiB piece of the size it says; the pieces are joined and
 * accepted only if their SHA-1 is the infohash, so a lying peer costs only its connection.
 * A few peers are asked at once; the first complete, matching answer wins and every
 * connection closes. Bounded: metadata size, frame size, pieces of the right sizes, one
 * overall deadline.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../util/log.js';
import { hostPort } from '../util/addresses.js';
import { WireError, encodeHandshake, maxFrameFor, type WireMessage } from '../wire/peer-wire.js';
import {
  LOCAL_EXTENSIONS, MAX_METADATA_SIZE, METADATA_PIECE, EXTENDED_HANDSHAKE, decodeExtendedHandshake, decodeMetadataMessage,
  encodeExtendedHandshake, encodeMetadataRequest, featuresOf, metadataPieces, reservedBytes,
} from '../wire/extension.js';
import { NotFoundError } from '../errors.js';
import type { Peer, PeerTimeouts } from './peer.js';
import { Dial, PLAIN_TCP, type TransportPolicy } from './dial.js';
import { CLIENT_NAME } from './extensions.js';

/** Peers asked at once. */
export const METADATA_PEERS_AT_ONCE = 8;
/** A bitfield of the largest torrent whose metadata we accept (20 bytes of digest a piece). */
const MAX_FRAME = maxFrameFor(Math.ceil(MAX_METADATA_SIZE / 20));

export interface MetadataFetchInit {
  infoHash: Buffer;
  peerId: Buffer;
  peers: Array<{ host: string; port: number }>;
  /** The whole fetch, every peer together. */
  timeoutMs: number;
  timeouts: PeerTimeouts;
  /** TCP or uTP, MSE or plain (plain TCP when not given). */
  transport?: TransportPolicy;
  log: Logger;
  signal?: AbortSignal;
}

/** The info dictionary (bencoded, exactly as hashed) of `infoHash`; NotFoundError when no peer gives it in time. */
export function fetchMetadata(init: MetadataFetchInit): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const hex = init.infoHash.toString('hex');
    const queue = [...dedupe(init.peers)];
    const open = new Set<Asking>();
    const why: string[] = [];
    let settled = false;
    const finish = (err: Error | null, info?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      init.signal?.removeEventListener('abort', onAbort);
      for (const a of [...open]) a.close('metadata fetch over');
      if (info) resolve(info);
      else reject(err);
    };
    const onAbort = (): void => finish(init.signal?.reason instanceof Error ? init.signal.reason : new Error('aborted'));
    const timer = setTimeout(() => finish(new NotFoundError(`no peer sent the metadata of ${hex} within ${init.timeoutMs} ms${summary(why)}`)), init.timeoutMs);
    timer.unref();
    if (init.signal?.aborted) return onAbort();
    init.signal?.addEventListener('abort', onAbort, { once: true });
    const next = (): void => {
      while (!settled && open.size < METADATA_PEERS_AT_ONCE && queue.length > 0) ask(queue.shift()!);
      if (!settled && open.size === 0 && queue.length === 0) finish(new NotFoundError(`no peer sent the metadata of ${hex}${summary(why)}`));
    };
    const ask = (target: { host: string; port: number }): void => {
      const asking: Asking = askOne(target, init, (info) => finish(null, info), (reason) => {
        open.delete(asking);
        if (!settled) {
          why.push(`${hostPort(target.host, target.port)}: ${reason}`);
          init.log.debug({ peer: hostPort(target.host, target.port), reason }, 'metadata: peer gave up');
        }
        next();
      });
      open.add(asking);
    };
    next();
  });
}

/** One peer being asked: closing it ends the dial or the connection. */
interface Asking {
  close(reason: string): void;
}

/** Dial one peer and ask it for the metadata; `done` gets the checked info dictionary, `gone` why the peer gave nothing. */
function askOne(target: { host: string; port: number }, init: MetadataFetchInit, done: (info: Buffer) => void, gone: (reason: string) => void): Asking {
  let peer: Peer | null = null;
  const handshake = encodeHandshake(init.infoHash, init.peerId, reservedBytes());
  const policy = init.transport ?? PLAIN_TCP;
  const dial = new Dial({ ...target, infoHash: init.infoHash, handshake, policy, timeouts: init.timeouts, connectTimeoutMs: init.timeouts.handshakeMs }, {
    failed: gone,
    established: (p, hello) => {
      peer = p;
      p.events = { close: (_p, reason) => gone(reason), message: onMessage };
      if (!featuresOf(hello.reserved).extensions) return p.close('it does not speak the extension protocol');
      p.established(MAX_FRAME);
      p.send(encodeExtendedHandshake({ v: CLIENT_NAME, m: LOCAL_EXTENSIONS }));
    },
  });
  let theirId: number | undefined;
  let size = 0;
  let pieces: Array<Buffer | undefined> = [];
  const onMessage = (p: Peer, msg: WireMessage): void => {
    if (msg.type !== 'extended') return; // bitfield, have, choke...: nothing we need here
    try {
      if (msg.id === EXTENDED_HANDSHAKE) {
        if (theirId !== undefined) return;
        const h = decodeExtendedHandshake(msg.payload);
        theirId = h.m.get('ut_metadata');
        if (!theirId) return p.close('it does not offer metadata (no ut_metadata)');
        if (!h.metadataSize) return p.close('it does not say the metadata size');
        size = h.metadataSize;
        pieces = Array.from({ length: metadataPieces(size) }, () => undefined);
        p.send(Buffer.concat(pieces.map((_, i) => encodeMetadataRequest(theirId!, i))));
        return;
      }
      if (msg.id !== LOCAL_EXTENSIONS.ut_metadata || theirId === undefined) return;
      const m = decodeMetadataMessage(msg.payload);
      if (m.type === 'reject') return p.close(`it refused metadata piece ${m.piece}`);
      if (m.type !== 'data') return;
      const expected = Math.min(METADATA_PIECE, size - m.piece * METADATA_PIECE);
      if (m.totalSize !== size || m.piece >= pieces.length || m.data.length !== expected) return p.close('it sent a metadata piece that does not fit');
      pieces[m.piece] = m.data;
      if (pieces.some((x) => x === undefined)) return;
      const info = Buffer.concat(pieces as Buffer[]);
      if (!createHash('sha1').update(info).digest().equals(init.infoHash)) return p.close('its metadata does not match the infohash');
      done(info);
    } catch (err) {
      if (!(err instanceof WireError)) throw err; // ours: the transport closes with it, named
      p.close(`protocol violation: ${err.message}`);
    }
  };
  return { close: (reason) => (peer ? peer.close(reason) : dial.cancel(reason)) };
}

function dedupe(peers: Array<{ host: string; port: number }>): Array<{ host: string; port: number }> {
  const seen = new Set<string>();
  return peers.filter((p) => !seen.has(`${p.host}:${p.port}`) && seen.add(`${p.host}:${p.port}`));
}

function summary(why: string[]): string {
  return why.length === 0 ? ' (no peer to ask)' : ` (${why.slice(0, 3).join('; ')}${why.length > 3 ? `; ${why.length - 3} more` : ''})`;
}
