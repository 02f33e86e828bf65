/**
 * BitTorrent metainfo (BEP 3), single-file and multi-file. A shared file is one torrent whose
 * info dictionary has exactly `length`, `name`, `piece length` and `pieces` (plus `private`
 * when a .torrent says so); a shared folder one with `files` instead of `length`, in
 * mktorrent's order: either way the infohash equals mktorrent's for the same piece length.
 */
import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { badTorrentPath } from '../util/names.js';
import { FilesError, parseFiles, singleFile, type TorrentFile } from './files.js';

export { MAX_TORRENT_FILES, mktorrentOrder, type TorrentFile } from './files.js';

export const DEFAULT_PIECE_LENGTH = 512 * 1024;
export const MIN_PIECE_LENGTH = 16 * 1024;
export const MAX_PIECE_LENGTH = 16 * 1024 * 1024;
/** Largest .torrent we parse: 16 MiB holds ~800k pieces. */
export const MAX_TORRENT_BYTES = 16 * 1024 * 1024;

export interface Metainfo {
  /** SHA-1 of the bencoded info dictionary. */
  readonly infoHash: Buffer;
  /** `infoHash` as 40 lower-case hex digits. */
  readonly infoHashHex: string;
  /** The suggested file name (the folder's, for a multi-file torrent): one plain path component, already checked. */
  readonly name: string;
  /** Bytes in all: the one file's, or every file's together. */
  readonly length: number;
  /** The info dictionary lists `files`: the torrent is a folder called `name` (even with one file in it). */
  readonly multiFile: boolean;
  /** Its files in the torrent's order, each with its offset in the byte stream; one, called `name`, for a single-file torrent. */
  readonly files: readonly TorrentFile[];
  readonly pieceLength: number;
  readonly pieceCount: number;
  /** Concatenated 20-byte SHA-1 digests, one per piece. */
  readonly pieces: Buffer;
  /** The bencoded info dictionary, exactly as hashed. */
  readonly info: Buffer;
  /** Tracker URLs (announce, then announce-list tiers flattened). */
  readonly announce: string[];
  readonly private: boolean;
}

export class MetainfoError extends Error {
  override name = 'MetainfoError';
}

export function pieceCountFor(length: number, pieceLength: number): number {
  return length === 0 ? 0 : Math.ceil(length / pieceLength);
}

/** Size in bytes of piece `index`: the last one may be short. */
export function pieceSize(m: Pick<Metainfo, 'length' | 'pieceLength' | 'pieceCount'>, index: number): number {
  if (index < 0 || index >= m.pieceCount) throw new RangeError(`piece ${index} out of range`);
  return index === m.pieceCount - 1 ? m.length - index * m.pieceLength : m.pieceLength;
}

/** The expected digest of piece `index` (a view, not a copy). */
export function pieceHash(m: Metainfo, index: number): Buffer {
  return m.pieces.subarray(index * 20, index * 20 + 20);
}

export interface BuildInit {
  name: string;
  /** The file's length (single-file); ignored when `files` is given. */
  length: number;
  /** A multi-file torrent's files, in the order given (mktorrent's for a folder: see mktorrentOrder). */
  files?: ReadonlyArray<{ path: readonly string[]; length: number }>;
  pieceLength: number;
  pieces: Buffer;
  announce?: string[];
  private?: boolean;
}

/** Build the metainfo of a file, or of a folder's files, from its piece digests. */
export function buildMetainfo(init: BuildInit): Metainfo {
  const info: Record<string, unknown> = {
    name: Buffer.from(init.name),
    'piece length': init.pieceLength,
    pieces: init.pieces,
  };
  if (init.files) info.files = init.files.map((f) => ({ length: f.length, path: f.path.map((c) => Buffer.from(c)) }));
  else info.length = init.length;
  if (init.private) info.private = 1;
  return fromInfo(Buffer.from(bencode.encode(info)), init.announce ?? []);
}

/** Validate a bencoded info dictionary (for instance one fetched from a peer) and wrap it. */
export function fromInfo(infoBytes: Buffer, announce: string[] = []): Metainfo {
  let decoded: unknown;
  try {
    decoded = bencode.decode(infoBytes);
  } catch (err) {
    throw new MetainfoError(`info dictionary is not valid bencode: ${(err as Error).message}`);
  }
  if (!isDict(decoded)) throw new MetainfoError('info is not a dictionary');
  const info = decoded;
  // A hybrid torrent (BEP 52) has v1 pieces too and is taken as v1; one with v2 merkle trees only is not (docs/bittorrent.md).
  if (info['meta version'] === 2 && !('pieces' in info)) throw new MetainfoError('a BitTorrent v2-only torrent (BEP 52): Shoal takes v1 and hybrid torrents, not v2-only ones');
  const multiFile = 'files' in info;
  const pieceLength = info['piece length'];
  const pieces = info.pieces;
  const nameBytes = info['name.utf-8'] instanceof Uint8Array ? info['name.utf-8'] : info.name;
  if (!multiFile && (!Number.isSafeInteger(info.length) || (info.length as number) < 0)) throw new MetainfoError('info.length must be a non-negative integer');
  if (!Number.isSafeInteger(pieceLength) || (pieceLength as number) < MIN_PIECE_LENGTH || (pieceLength as number) > MAX_PIECE_LENGTH)
    throw new MetainfoError(`info["piece length"] must be an integer from ${MIN_PIECE_LENGTH} to ${MAX_PIECE_LENGTH}`);
  if (!(pieces instanceof Uint8Array)) throw new MetainfoError('info.pieces must be a byte string');
  if (!(nameBytes instanceof Uint8Array)) throw new MetainfoError('info.name must be a byte string');
  const name = Buffer.from(nameBytes).toString('utf8');
  const why = badTorrentPath([name]);
  if (why) throw new MetainfoError(`unsafe ${multiFile ? 'folder' : 'file'} name in torrent: ${why}`);
  let files: TorrentFile[];
  let length: number;
  try {
    ({ files, length } = multiFile ? parseFiles(info.files) : { files: singleFile(name, info.length as number), length: info.length as number });
  } catch (err) {
    if (err instanceof FilesError) throw new MetainfoError(err.message);
    throw err;
  }
  const count = pieceCountFor(length, pieceLength as number);
  if (pieces.length !== count * 20) throw new MetainfoError(`info.pieces holds ${pieces.length / 20} digests, expected ${count}`);
  const infoHash = createHash('sha1').update(infoBytes).digest();
  return {
    infoHash,
    infoHashHex: infoHash.toString('hex'),
    name,
    length,
    multiFile,
    files,
    pieceLength: pieceLength as number,
    pieceCount: count,
    pieces: Buffer.from(pieces),
    info: infoBytes,
    announce,
    private: info.private === 1,
  };
}

/**
 * Parse a .torrent file. The info dictionary is re-sliced from the original bytes rather
 * than re-encoded, so a torrent with keys we do not model keeps its infohash.
 */
export function parseTorrent(bytes: Buffer): Metainfo {
  if (bytes.length > MAX_TORRENT_BYTES) throw new MetainfoError('torrent file too large');
  let decoded: unknown;
  try {
    decoded = bencode.decode(bytes);
  } catch (err) {
    throw new MetainfoError(`not a torrent file (bad bencode: ${(err as Error).message})`);
  }
  if (!isDict(decoded) || !isDict(decoded.info)) throw new MetainfoError('not a torrent file (no info dictionary)');
  const infoBytes = sliceInfo(bytes);
  const announce: string[] = [];
  const push = (v: unknown) => {
    if (v instanceof Uint8Array) {
      const url = Buffer.from(v).toString('utf8');
      if (/^https?:\/\//i.test(url) && !announce.includes(url)) announce.push(url);
    }
  };
  push(decoded.announce);
  if (Array.isArray(decoded['announce-list'])) {
    for (const tier of decoded['announce-list']) if (Array.isArray(tier)) tier.forEach(push);
  }
  return fromInfo(infoBytes, announce);
}

/**
 * The same torrent with `urls` added to its trackers (after its own, without duplicates).
 * The infohash covers the info dictionary only, so it does not change. A private torrent
 * keeps its own trackers only (BEP 27): it is returned as it is.
 */
export function withTrackers(m: Metainfo, urls: readonly string[]): Metainfo {
  if (m.private) return m;
  const all = [...new Set([...m.announce, ...urls])];
  return all.length === m.announce.length ? m : { ...m, announce: all };
}

/** Bencode a metainfo as a .torrent file: `announce` is the first tracker, `announce-list` (BEP 12) has each in a tier of its own. */
export function encodeTorrent(m: Metainfo): Buffer {
  // Splice the original info bytes in, so the infohash can never drift.
  const head: Record<string, unknown> = {};
  if (m.announce.length > 0) {
    head.announce = Buffer.from(m.announce[0]!);
    if (m.announce.length > 1) head['announce-list'] = m.announce.map((u) => [Buffer.from(u)]);
  }
  head['created by'] = Buffer.from('shoal');
  const prefix = Buffer.from(bencode.encode(head));
  // prefix is "d...e": drop its final 'e', add "4:info" + info + "e". Keys stay sorted
  // because 'info' sorts after 'announce', 'announce-list' and 'created by'.
  return Buffer.concat([prefix.subarray(0, prefix.length - 1), Buffer.from('4:info'), m.info, Buffer.from('e')]);
}

/** Find the exact bytes of the top-level `info` value in a bencoded dictionary. */
function sliceInfo(bytes: Buffer): Buffer {
  let pos = 1; // skip 'd'
  while (pos < bytes.length && bytes[pos] !== 0x65) {
    const keyEnd = skip(bytes, pos);
    const key = bytes.toString('latin1', bytes.indexOf(0x3a, pos) + 1, keyEnd);
    const valueEnd = skip(bytes, keyEnd);
    if (key === 'info') return bytes.subarray(keyEnd, valueEnd);
    pos = valueEnd;
  }
  throw new MetainfoError('not a torrent file (no info dictionary)');
}

/** Offset just past the bencoded value starting at `pos`. */
function skip(b: Buffer, pos: number): number {
  let depth = 0;
  do {
    const c = b[pos];
    if (c === undefined) throw new MetainfoError('truncated bencode');
    if (c === 0x64 || c === 0x6c) {
      depth++;
      pos++;
    } else if (c === 0x65) {
      depth--;
      pos++;
    } else if (c === 0x69) {
      const end = b.indexOf(0x65, pos);
      if (end < 0) throw new MetainfoError('truncated bencode');
      pos = end + 1;
    } else if (c >= 0x30 && c <= 0x39) {
      const colon = b.indexOf(0x3a, pos);
      if (colon < 0) throw new MetainfoError('truncated bencode');
      const len = Number(b.toString('latin1', pos, colon));
      pos = colon + 1 + len;
    } else throw new MetainfoError('bad bencode');
  } while (depth > 0);
  if (pos > b.length) throw new MetainfoError('truncated bencode');
  return pos;
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
