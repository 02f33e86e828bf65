/**
 * Which file here holds a torrent's data, and how much of it: the candidates are the files
 * of its size (a file of its name first), and each is hashed in the worker pool at the
 * torrent's own piece length, read through one reused buffer (never whole), its digests
 * compared with the torrent's. A candidate whose first piece does not match is not hashed
 * further, unless it bears the torrent's name (a damaged copy is worth a partial match).
 *
 * Single-file torrents: a candidate is one file. A multi-file torrent's data is a folder of
 * files whose pieces cross file boundaries; it plugs in here as another `hashPieces` (the
 * pieces read through the torrent's multi-file store and hashed one by one with `lend`)
 * over the candidate folder `<folder>/<name>`, the rest (ranking, stat before and after,
 * the bitfield of matching pieces) unchanged.
 */
import { constants, promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { pieceHash, pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import { Bitfield } from '../wire/bitfield.js';
import type { DataStat } from './kept-torrents.js';

/** Candidates hashed in full at most per look (the probe of the first piece is cheap; a full hash is not). */
export const MAX_FULL_HASHES = 4;

export interface MatchHasher {
  /** Concatenated SHA-1 of every `pieceLength` piece of a file, read in a worker. */
  hashFile(path: string, pieceLength: number, signal?: AbortSignal): Promise<Buffer>;
  sha1(data: Uint8Array): Promise<Buffer>;
}

export interface Candidate {
  path: string;
  /** Digests known for it already (the library's), at `pieceLength`: compared without reading a byte when it is the torrent's. */
  known?: { pieceLength: number; pieces: Buffer };
}

/** A file holding some (`have`) or every piece of a torrent. */
export interface DataFound extends DataStat {
  have: Bitfield;
}

const statOf = (abs: string, st: Stats): DataStat => ({ path: abs, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino });

/** The pieces of `m` that `pieces` (digests at m's piece length) holds. */
export function matchingPieces(m: Metainfo, pieces: Buffer): Bitfield {
  const have = new Bitfield(m.pieceCount);
  if (pieces.length !== m.pieces.length) return have;
  for (let i = 0; i < m.pieceCount; i++) if (pieces.subarray(i * 20, i * 20 + 20).equals(pieceHash(m, i))) have.set(i);
  return have;
}

/**
 * The candidate holding the most pieces of `m` (every piece: it is taken at once), or null
 * when none holds any. Only regular files of `m.length` bytes count; a file that changes
 * while it is hashed does not count.
 */
export async function findData(m: Metainfo, candidates: Candidate[], hasher: MatchHasher, signal?: AbortSignal): Promise<DataFound | null> {
  const seen = new Set<string>();
  const sized: Array<Candidate & { st: Stats }> = [];
  for (const c of candidates) {
    if (seen.has(c.path)) continue;
    seen.add(c.path);
    const st = await fsp.lstat(c.path).catch(() => null);
    if (st?.isFile() && st.size === m.length) sized.push({ ...c, st });
  }
  // The torrent's own name first: that is where its data most likely is.
  const named = (c: Candidate) => path.basename(c.path) === m.name;
  sized.sort((a, b) => Number(named(b)) - Number(named(a)));
  let best: DataFound | null = null;
  let hashed = 0;
  for (const c of sized) {
    signal?.throwIfAborted();
    let have: Bitfield;
    if (c.known?.pieceLength === m.pieceLength) have = matchingPieces(m, c.known.pieces);
    else {
      if (hashed >= MAX_FULL_HASHES) continue;
      if (m.pieceCount > 0 && !named(c) && !(await firstPieceMatches(m, c.path, hasher))) continue;
      hashed++;
      const digests = await hasher.hashFile(c.path, m.pieceLength, signal).catch(() => null);
      const after = await fsp.lstat(c.path).catch(() => null);
      if (!digests || !after || after.size !== c.st.size || after.mtimeMs !== c.st.mtimeMs || after.ino !== c.st.ino) continue;
      have = matchingPieces(m, digests);
    }
    if (have.complete()) return { ...statOf(c.path, c.st), have };
    if (have.count() > 0 && (!best || have.count() > best.have.count())) best = { ...statOf(c.path, c.st), have };
  }
  return best;
}

/** Whether the first piece of the file at `file` is the first piece of `m` (one piece read, hashed in a worker). */
async function firstPieceMatches(m: Metainfo, file: string, hasher: MatchHasher): Promise<boolean> {
  const size = pieceSize(m, 0);
  const fh = await fsp.open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0)).catch(() => null);
  if (!fh) return false;
  try {
    const buf = Buffer.allocUnsafe(size);
    const { bytesRead } = await fh.read(buf, 0, size, 0);
    return bytesRead === size && (await hasher.sha1(buf)).equals(pieceHash(m, 0));
  } finally {
    await fh.close();
  }
}
