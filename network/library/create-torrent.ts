/**
 * A .torrent of one file or one folder on disk, as `create` makes it: the bytes are hashed
 * piece by piece in a worker thread reading into one reused buffer (memory stays flat
 * whatever the size), and the info dictionary has exactly what a shared file's (or a shared
 * folder's, library/folder-torrent.ts) has, so the infohash is the one mktorrent gives for
 * the same file or folder and piece length.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { HashPool } from './hash-pool.js';
import { folderTorrent } from './folder-torrent.js';
import { buildMetainfo, DEFAULT_PIECE_LENGTH, MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, MetainfoError, type Metainfo } from '../metainfo/metainfo.js';

export interface CreateTorrentOptions {
  /** A power of two from 16 KiB to 16 MiB; 512 KiB by default, as for shared files. */
  pieceLength?: number;
  /** Tracker URLs, in order: the first is `announce`, all are in `announce-list`. */
  trackers?: string[];
  /** For a folder: told what was left out of the torrent (dot-files, symlinks, .part), and why. */
  skipped?: (list: Array<{ path: string; why: string }>) => void;
}

/** Make the metainfo of `file` (a folder: a multi-file torrent). Rejects with MetainfoError for what cannot be a Shoal torrent, or the file system's error. */
export async function createTorrent(file: string, opts: CreateTorrentOptions = {}): Promise<Metainfo> {
  const pieceLength = opts.pieceLength ?? DEFAULT_PIECE_LENGTH;
  if (!Number.isInteger(pieceLength) || pieceLength < MIN_PIECE_LENGTH || pieceLength > MAX_PIECE_LENGTH || (pieceLength & (pieceLength - 1)) !== 0)
    throw new MetainfoError(`the piece length must be a power of two from ${MIN_PIECE_LENGTH} to ${MAX_PIECE_LENGTH}, got ${pieceLength}`);
  const before = await fsp.stat(file);
  if (before.isDirectory()) return createFolderTorrent(file, pieceLength, opts);
  if (!before.isFile()) throw new MetainfoError(`${file} is not a regular file`);
  const pool = new HashPool({ workers: 1 });
  let pieces: Buffer;
  try {
    // The worker never follows a symlink: hash what it points to, under the name given.
    pieces = await pool.hashFile(await fsp.realpath(file), pieceLength);
  } finally {
    await pool.close();
  }
  const after = await fsp.stat(file);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) throw new MetainfoError(`${file} changed while it was hashed: try again once it is complete`);
  return buildMetainfo({ name: path.basename(file), length: before.size, pieceLength, pieces, announce: opts.trackers ?? [] });
}

async function createFolderTorrent(dir: string, pieceLength: number, opts: CreateTorrentOptions): Promise<Metainfo> {
  const pool = new HashPool({ workers: 1 });
  try {
    const { metainfo, scan } = await folderTorrent(dir, pool, { pieceLength, announce: opts.trackers ?? [] });
    opts.skipped?.(scan.skipped);
    return metainfo;
  } finally {
    await pool.close();
  }
}
