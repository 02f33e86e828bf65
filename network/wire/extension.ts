/**
 * The extension protocol (BEP 10) and metadata exchange (BEP 9), pure codecs.
 *
 * Handshake reserved bits: byte 5 bit 0x10 says "extension protocol", byte 7 bit 0x04 says
 * "fast extension" (BEP 6), byte 7 bit 0x01 "DHT" (BEP 5).
 *
 * Extended message (peer wire id 20): <u8 extended id><payload>. Id 0 is the extended
 * handshake, a bencoded dictionary:
 *   m: { ut_metadata: <id>, ut_pex: <id>, ... }   the ids the sender wants to receive
 *   v: client name and version   reqq: requests it queues   metadata_size: bytes of the info dict
 *   p: its listening port
 * ut_metadata (BEP 9): a bencoded dictionary {msg_type: 0 request | 1 data | 2 reject,
 * piece: i, total_size: n (data only)}, followed for `data` by the piece's bytes (16 KiB
 * pieces, the last one shorter).
 *
 * Everything from the network is bounded before use: the number of extensions, the lengths
 * of names and strings, metadata sizes, piece indices.
 */
import bencode from 'bencode';
import { WireError } from './peer-wire.js';

/** Extended message id of the extended handshake. */
export const EXTENDED_HANDSHAKE = 0;
/** Our ids for the extensions we take (the peer sends with these). */
export const LOCAL_EXTENSIONS = { ut_metadata: 1, ut_pex: 2 } as const;
/** Metadata pieces are 16 KiB (BEP 9). */
export const METADATA_PIECE = 16 * 1024;
/** Largest info dictionary we fetch or serve: far above any real torrent's (16 MiB holds ~800k pieces). */
export const MAX_METADATA_SIZE = 16 * 1024 * 1024;
/** Bytes of a ut_metadata dictionary before its data: far more than the three keys need. */
export const MAX_METADATA_HEADER = 256;
/** Extensions named in one handshake; real clients name about ten. */
const MAX_EXTENSIONS = 64;
const MAX_NAME_BYTES = 64;
const MAX_CLIENT_BYTES = 128;
/** A peer's `reqq` is honoured up to this (libtorrent's default is 500; some say 2000+). */
export const MAX_REQQ = 5000;

/** The largest extended message we accept: a metadata piece with its header. */
export const MAX_EXTENDED_FRAME = 2 + MAX_METADATA_HEADER + METADATA_PIECE;

export interface PeerFeatures {
  extensions: boolean;
  fast: boolean;
  dht: boolean;
}

/** The reserved bytes we send: extension protocol and fast extension. */
export function reservedBytes(f: Partial<PeerFeatures> = { extensions: true, fast: true }): Buffer {
  const r = Buffer.alloc(8);
  if (f.extensions) r[5]! |= 0x10;
  if (f.fast) r[7]! |= 0x04;
  if (f.dht) r[7]! |= 0x01;
  return r;
}

/** What a peer's reserved bytes say it speaks. */
export function featuresOf(reserved: Buffer): PeerFeatures {
  return { extensions: (reserved[5]! & 0x10) !== 0, fast: (reserved[7]! & 0x04) !== 0, dht: (reserved[7]! & 0x01) !== 0 };
}

export interface ExtendedHandshake {
  /** Extension name → the id the sender wants to receive it with (0: it dropped that extension). */
  m: Map<string, number>;
  /** Its client, as it names itself. */
  v?: string;
  /** How many requests it queues. */
  reqq?: number;
  /** Size of the info dictionary, when it has the metadata. */
  metadataSize?: number;
  /** Its listening port. */
  port?: number;
}

export function encodeExtendedHandshake(h: { v?: string; reqq?: number; metadataSize?: number; port?: number; m?: Record<string, number> }): Buffer {
  const dict: Record<string, unknown> = { m: h.m ?? LOCAL_EXTENSIONS };
  if (h.v !== undefined) dict.v = Buffer.from(h.v);
  if (h.reqq !== undefined) dict.reqq = h.reqq;
  if (h.metadataSize !== undefined) dict.metadata_size = h.metadataSize;
  if (h.port !== undefined) dict.p = h.port;
  return encodeExtendedMessage(EXTENDED_HANDSHAKE, Buffer.from(bencode.encode(dict)));
}

/** An extended message: peer wire id 20, the extended id, the payload. */
export function encodeExtendedMessage(id: number, payload: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(6 + payload.length);
  b.writeUInt32BE(2 + payload.length, 0);
  b[4] = 20;
  b[5] = id;
  b.set(payload, 6);
  return b;
}

/** Decode an extended handshake's payload; WireError when it is not one. */
export function decodeExtendedHandshake(payload: Uint8Array): ExtendedHandshake {
  const d = decodeDict(payload, 'extended handshake');
  const m = new Map<string, number>();
  const rawM = d.value.m;
  if (rawM !== undefined) {
    if (!isDict(rawM)) throw new WireError('extended handshake: m is not a dictionary');
    const names = Object.keys(rawM);
    if (names.length > MAX_EXTENSIONS) throw new WireError(`extended handshake names more than ${MAX_EXTENSIONS} extensions`);
    for (const name of names) {
      const id = rawM[name];
      if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new WireError('extended handshake: extension name too long');
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 255) throw new WireError(`extended handshake: bad id for ${name.slice(0, 32)}`);
      m.set(name, id);
    }
  }
  const h: ExtendedHandshake = { m };
  const v = d.value.v;
  if (v instanceof Uint8Array) h.v = Buffer.from(v.subarray(0, MAX_CLIENT_BYTES)).toString('utf8').replace(/[\u0000-\u001f\u007f]/g, '?');
  const reqq = integer(d.value.reqq);
  if (reqq !== undefined && reqq >= 1) h.reqq = Math.min(reqq, MAX_REQQ);
  const size = integer(d.value.metadata_size);
  if (size !== undefined) {
    if (size < 1 || size > MAX_METADATA_SIZE) throw new WireError(`extended handshake: metadata_size ${size} out of bounds`);
    h.metadataSize = size;
  }
  const port = integer(d.value.p);
  if (port !== undefined && port >= 1 && port <= 65535) h.port = port;
  return h;
}

export type MetadataMessage =
  | { type: 'request'; piece: number }
  | { type: 'data'; piece: number; totalSize: number; data: Buffer }
  | { type: 'reject'; piece: number };

export function encodeMetadataRequest(peerId: number, piece: number): Buffer {
  return encodeExtendedMessage(peerId, Buffer.from(bencode.encode({ msg_type: 0, piece })));
}

export function encodeMetadataReject(peerId: number, piece: number): Buffer {
  return encodeExtendedMessage(peerId, Buffer.from(bencode.encode({ msg_type: 2, piece })));
}

export function encodeMetadataData(peerId: number, piece: number, totalSize: number, data: Uint8Array): Buffer {
  const header = Buffer.from(bencode.encode({ msg_type: 1, piece, total_size: totalSize }));
  return encodeExtendedMessage(peerId, Buffer.concat([header, data]));
}

/** Number of 16 KiB pieces of an info dictionary of `size` bytes. */
export function metadataPieces(size: number): number {
  return Math.ceil(size / METADATA_PIECE);
}

/** Decode a ut_metadata payload; WireError when it is malformed. The data is a copy. */
export function decodeMetadataMessage(payload: Uint8Array): MetadataMessage {
  const d = decodeDict(payload.subarray(0, Math.min(payload.length, MAX_METADATA_HEADER)), 'ut_metadata message');
  const type = integer(d.value.msg_type);
  const piece = integer(d.value.piece);
  if (piece === undefined || piece < 0 || piece >= metadataPieces(MAX_METADATA_SIZE)) throw new WireError('ut_metadata message: bad piece');
  switch (type) {
    case 0:
      return { type: 'request', piece };
    case 2:
      return { type: 'reject', piece };
    case 1: {
      const totalSize = integer(d.value.total_size);
      if (totalSize === undefined || totalSize < 1 || totalSize > MAX_METADATA_SIZE) throw new WireError('ut_metadata data: bad total_size');
      const data = Buffer.from(payload.subarray(d.end));
      if (data.length > METADATA_PIECE) throw new WireError('ut_metadata data: piece larger than 16 KiB');
      return { type: 'data', piece, totalSize, data };
    }
    default:
      throw new WireError(`ut_metadata message: unknown msg_type ${String(type)}`);
  }
}

// ---- helpers ----------------------------------------------------------------------------------

type Dict = Record<string, unknown>;

/** Decode one bencoded dictionary at the start of `bytes`; `end` is where it stopped. */
function decodeDict(bytes: Uint8Array, what: string): { value: Dict; end: number } {
  if (bytes.length === 0 || bytes[0] !== 0x64 /* d */) throw new WireError(`${what} is not a bencoded dictionary`);
  let value: unknown;
  try {
    value = bencode.decode(bytes);
  } catch (err) {
    throw new WireError(`${what} is not valid bencode: ${(err as Error).message}`);
  }
  if (!isDict(value)) throw new WireError(`${what} is not a bencoded dictionary`);
  const end = bencode.decode.position;
  if (!Number.isInteger(end) || end < 2 || end > bytes.length) throw new WireError(`${what} is truncated`);
  return { value, end };
}

function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function integer(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined;
}
