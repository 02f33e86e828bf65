import { promises as fsp } from 'node:fs';
import type { Bitfield } from '../wire/bitfield.js';
import type { PieceReader } from './piece-reader.js';
import type { BufferPool } from './buffer-pool.js';

/**
 * What a torrent's peers read from. The wire never touches the disk: incoming requests
 * reach a store through the torrent (STYLE lesson 6).
 */
export interface PieceStore {
  readonly have: Bitfield;
  /** The pieces it is meant to hold (a download of some files only); every piece when absent. */
  readonly wanted?: Bitfield;
  /** Reads verified pieces for uploading; callers check `have` first. */
  readonly reader: PieceReader;
  close(): Promise<void>;
}

/**
 * Where a download's verified pieces go (a PartFile): the torrent hashes a piece in a buffer
 * from `pool`, writes it, and only then marks it verified. Seeding stores have no write side.
 */
export interface PieceWriter extends PieceStore {
  /** The pieces to fetch: those of the selected files (every piece unless files were left out). */
  readonly wanted: Bitfield;
  /** Every wanted piece is verified. */
  done(): boolean;
  /** Piece buffers for pieces being fetched and verified; bounded, so RSS is too. */
  readonly pool: BufferPool;
  /** Write a verified piece at its offset; `markVerified` comes after the write. */
  writePiece(index: number, data: Uint8Array): Promise<void>;
  markVerified(index: number): void;
}

export function isPieceWriter(store: PieceStore | PieceWriter): store is PieceWriter {
  return 'writePiece' in store;
}

/**
 * Move `from` to `to` without ever replacing an existing file: link() fails with EEXIST
 * where rename() would silently overwrite. Returns false if `to` exists.
 */
export async function renameNoClobber(from: string, to: string): Promise<boolean> {
  try {
    await fsp.link(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
    // A filesystem without hard links: check, then rename (a narrow race we accept there).
    if (await exists(to)) return false;
    await fsp.rename(from, to);
    return true;
  }
  await fsp.unlink(from);
  return true;
}

export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** `name`, then `name (1).ext`, `name (2).ext`, ... */
export function candidateName(name: string, n: number): string {
  if (n === 0) return name;
  const dot = name.lastIndexOf('.');
  return dot > 0 ? `${name.slice(0, dot)} (${n})${name.slice(dot)}` : `${name} (${n})`;
}
