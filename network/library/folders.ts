import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { sameStamp, stampOf } from '../util/file-stamp.js';

/** Where a file lives among the shared folders: the folder, and the '/'-separated path inside it. */
export interface Place {
  folder: string;
  rel: string;
}

/** The folder holding `abs` (the deepest, if folders nest) and the path inside it; null outside every folder. */
export function locate(folders: readonly string[], abs: string): Place | null {
  let best: string | null = null;
  for (const f of folders) {
    if ((abs === f || abs.startsWith(f + path.sep)) && (!best || f.length > best.length)) best = f;
  }
  return best === null ? null : { folder: best, rel: path.relative(best, abs).split(path.sep).join('/') };
}

/** What the watcher need not follow: dot-entries and `.part` files under a folder. */
export function ignoredByWatcher(folders: readonly string[], p: string, st?: Stats): boolean {
  const where = locate(folders, path.resolve(p));
  if (!where || where.rel === '') return false;
  const parts = where.rel.split('/');
  // A `.part` folder is a multi-file download in progress: nothing in it is shared either.
  return parts.some((c) => c.startsWith('.')) || parts.slice(0, -1).some((c) => c.endsWith('.part')) || (st?.isFile() === true && where.rel.endsWith('.part'));
}

/**
 * True when `abs` is reached through real directories of its folder: a directory swapped
 * for a symlink must not make us serve what it points to.
 */
export async function reachedDirectly(abs: string, where: Place): Promise<boolean> {
  try {
    const [realFolder, realDir] = await Promise.all([fsp.realpath(where.folder), fsp.realpath(path.dirname(abs))]);
    return realDir === path.join(realFolder, path.dirname(where.rel));
  } catch {
    return false;
  }
}

/** Same file, unchanged: size, mtime, ctime and inode agree (see util/file-stamp.ts). */
export function sameStat(a: Stats, b: Stats): boolean {
  return sameStamp(stampOf(a), stampOf(b));
}

export interface WalkInit {
  /** Files found (absolute paths), added to as the walk goes. */
  seen: Set<string>;
  /** Whether a file may be shared (its name checked). */
  keep(abs: string): boolean;
  /** The library stopped: walk no further. */
  stopped(): boolean;
  log: Logger;
}

/** Every regular file under `dir` that `keep` accepts. Dot-entries and `.part` folders are skipped, symlinks never followed. */
export async function walkFolder(dir: string, w: WalkInit): Promise<void> {
  if (w.stopped()) return;
  let dirents;
  try {
    dirents = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') w.log.warn({ dir, err: (err as Error).message }, 'cannot read shared directory');
    return;
  }
  for (const d of dirents) {
    // Dirent types come from readdir itself (lstat semantics): a symlink is never followed.
    if (d.name.startsWith('.') || d.isSymbolicLink()) continue;
    // A `<name>.part/` folder is a multi-file download in progress: nothing in it is shared.
    if (d.isDirectory() && d.name.endsWith('.part')) continue;
    const abs = path.join(dir, d.name);
    if (d.isDirectory()) await walkFolder(abs, w);
    else if (d.isFile() && w.keep(abs)) w.seen.add(abs);
  }
}
