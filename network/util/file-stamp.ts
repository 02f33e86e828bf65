/**
 * What a file looked like when it was hashed: size, modification and change times, inode.
 * The change time (ctime) is the one a user cannot set back: a file rewritten in place and
 * given its old mtime again (`touch -d`, `cp -p`, a tool that keeps times) still shows a new
 * ctime, so a file whose stamp is unchanged has not been written since.
 */
import type { Stats } from 'node:fs';

export interface FileStamp {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
}

export function stampOf(st: Stats): FileStamp {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino };
}

/** Same file, not written since: size, mtime, ctime and inode agree. */
export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino;
}
