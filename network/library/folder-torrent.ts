/**
 * A folder as one multi-file torrent, as `create DIR` and `--share-folder-as-torrent DIR` make
 * it: every regular file under the folder that the library would share (no dot-files or
 * dot-folders, no `.part`, no symlinks, names that pass the name rules), in mktorrent's
 * order, hashed end to end in the hash workers. For a folder holding nothing it leaves out,
 * the infohash is the one `mktorrent -l <log2 piece> DIR` gives; what it leaves out is
 * reported, so a user can tell why a hash differs.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, mktorrentOrder, MetainfoError, type Metainfo } from '../metainfo/metainfo.js';
import { badTorrentPath, unservablePath } from '../util/names.js';
import type { HashPool } from './hash-pool.js';

/** A file of the folder, as found. */
export interface FolderFile {
  path: string[];
  abs: string;
  length: number;
  mtimeMs: number;
}

export interface FolderScan {
  files: FolderFile[];
  /** What was left out, and why. */
  skipped: Array<{ path: string; why: string }>;
}

/** Entries a folder may hold at most, as for a torrent read from elsewhere. */
const MAX_ENTRIES = 100_000;

/** The files of `dir` a folder torrent holds, in mktorrent's order. */
export async function scanFolder(dir: string): Promise<FolderScan> {
  const files: FolderFile[] = [];
  const skipped: FolderScan['skipped'] = [];
  const walk = async (abs: string, rel: string[]): Promise<void> => {
    const entries = await fsp.readdir(abs, { withFileTypes: true });
    for (const d of entries) {
      const parts = [...rel, d.name];
      const name = parts.join('/');
      const full = path.join(abs, d.name);
      if (files.length + skipped.length >= MAX_ENTRIES) throw new MetainfoError(`${dir} holds more than ${MAX_ENTRIES} entries`);
      if (d.isSymbolicLink()) skipped.push({ path: name, why: 'symlink (never followed)' });
      else if (d.isDirectory()) {
        if (d.name.startsWith('.')) skipped.push({ path: `${name}/`, why: 'dot-folder (never shared)' });
        else await walk(full, parts);
      } else if (!d.isFile()) skipped.push({ path: name, why: 'not a regular file' });
      else {
        const why = unservablePath(name) ?? badTorrentPath(parts);
        if (why) skipped.push({ path: name, why });
        else {
          const st = await fsp.lstat(full);
          files.push({ path: parts, abs: full, length: st.size, mtimeMs: st.mtimeMs });
        }
      }
    }
  };
  await walk(dir, []);
  files.sort((a, b) => mktorrentOrder(a.path, b.path));
  return { files, skipped };
}

/**
 * The multi-file torrent of folder `dir` (its name is the folder's), hashed in `pool`.
 * MetainfoError when the folder holds no file to share, or a file changed while it was hashed.
 */
export async function folderTorrent(dir: string, pool: HashPool, opts: { pieceLength: number; announce?: string[]; signal?: AbortSignal }): Promise<{ metainfo: Metainfo; scan: FolderScan }> {
  const scan = await scanFolder(dir);
  if (scan.files.length === 0) throw new MetainfoError(`${dir} holds no file to share${scan.skipped.length > 0 ? ` (${scan.skipped.length} left out: dot-files, symlinks, .part)` : ''}`);
  const pieces = await pool.hashFiles(scan.files.map((f) => f.abs), opts.pieceLength, opts.signal);
  for (const f of scan.files) {
    const st = await fsp.lstat(f.abs).catch(() => null);
    if (!st || st.size !== f.length || st.mtimeMs !== f.mtimeMs) throw new MetainfoError(`${f.abs} changed while it was hashed: try again once the folder is complete`);
  }
  const metainfo = buildMetainfo({
    name: path.basename(path.resolve(dir)),
    length: 0,
    files: scan.files.map((f) => ({ path: f.path, length: f.length })),
    pieceLength: opts.pieceLength,
    pieces,
    announce: opts.announce ?? [],
  });
  return { metainfo, scan };
}

/** Whether the files of `dir` are still those of `scan` (same paths, sizes and times). */
export async function unchanged(dir: string, scan: FolderScan): Promise<boolean> {
  const now = await scanFolder(dir).catch(() => null);
  if (!now || now.files.length !== scan.files.length) return false;
  return now.files.every((f, i) => {
    const was = scan.files[i]!;
    return f.abs === was.abs && f.length === was.length && f.mtimeMs === was.mtimeMs;
  });
}
