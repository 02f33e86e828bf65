/**
 * The extension protocol on one torrent's connections (BEP 10): our extended handshake (the
 * extensions we take, our client, how many requests we queue, the size of our metadata), the
 * peer's, and metadata exchange (BEP 9) from the serving side: any peer may fetch the info
 * dictionary of a torrent we run, 16 KiB at a time, within a budget of asks per connection.
 */
import type { Metainfo } from '../metainfo/metainfo.js';
import {
  EXTENDED_HANDSHAKE, LOCAL_EXTENSIONS, METADATA_PIECE, decodeExtendedHandshake, decodeMetadataMessage, encodeExtendedHandshake,
  encodeMetadataData, encodeMetadataReject, metadataPieces,
} from '../wire/extension.js';
import { WireError } from '../wire/peer-wire.js';
import type { PeerSession } from './peer-session.js';
import type { PeerExchange } from './pex.js';

/** How Shoal names itself in extended handshakes. */
export const CLIENT_NAME = 'Shoal 0.1.0';
/** Asks for metadata pieces one connection may make: every piece a few times over. */
const METADATA_ASKS_PER_PIECE = 4;
const METADATA_ASKS_SLACK = 16;

export interface ExtensionContext {
  metainfo: Metainfo;
  /** Peer exchange, unless the torrent is private. */
  pex: PeerExchange | null;
  /** Peers a peer told us of (PEX). */
  learned(peers: Array<{ host: string; port: number }>): void;
  /** Our listening port, said in the extended handshake so that peers can tell others. */
  port(): number | undefined;
  /** Requests a peer may queue with us: said as `reqq`. */
  reqq: number;
  /** A remote peer broke the protocol: log it, close that connection. */
  violation(session: PeerSession, why: string): void;
}

/** Our extended handshake, to a peer that speaks the extension protocol. */
export function greet(session: PeerSession, ctx: ExtensionContext): void {
  if (!session.features.extensions) return;
  const m: Record<string, number> = ctx.pex ? { ...LOCAL_EXTENSIONS } : { ut_metadata: LOCAL_EXTENSIONS.ut_metadata };
  session.send(encodeExtendedHandshake({ m, v: CLIENT_NAME, reqq: ctx.reqq, metadataSize: ctx.metainfo.info.length, port: ctx.port() }));
}

/** An extended message (peer wire id 20) from `session`. */
export function onExtended(session: PeerSession, id: number, payload: Buffer, ctx: ExtensionContext): void {
  try {
    if (id === EXTENDED_HANDSHAKE) return session.setExtended(decodeExtendedHandshake(payload));
    if (id === LOCAL_EXTENSIONS.ut_metadata) return serveMetadata(session, payload, ctx);
    if (id === LOCAL_EXTENSIONS.ut_pex && ctx.pex) return ctx.learned(ctx.pex.heard(session, payload, Date.now()));
    // An id we never offered: BEP 10 says ignore it.
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    ctx.violation(session, err.message);
  }
}

function serveMetadata(session: PeerSession, payload: Buffer, ctx: ExtensionContext): void {
  const msg = decodeMetadataMessage(payload);
  if (msg.type !== 'request') return; // we never ask on a running torrent: data or reject is stray
  const theirs = session.extensionId('ut_metadata');
  if (theirs === undefined) return ctx.violation(session, 'asked for metadata without saying how to answer (no ut_metadata in its handshake)');
  const info = ctx.metainfo.info;
  const pieces = metadataPieces(info.length);
  if (!session.askedMetadata(pieces * METADATA_ASKS_PER_PIECE + METADATA_ASKS_SLACK)) return ctx.violation(session, 'too many metadata requests');
  if (msg.piece >= pieces) return void session.send(encodeMetadataReject(theirs, msg.piece));
  const data = info.subarray(msg.piece * METADATA_PIECE, Math.min(info.length, (msg.piece + 1) * METADATA_PIECE));
  session.send(encodeMetadataData(theirs, msg.piece, info.length, data));
}
