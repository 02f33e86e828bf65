import { promises as fsp } from 'node:fs';
import path from 'node:path';

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
