import path from 'node:path';

/** Longest name component we accept, in bytes (the common filesystem limit). */
export const MAX_NAME_BYTES = 255;
/** Longest relative path we accept, in bytes. */
export const MAX_PATH_BYTES = 1024;

/**
 * Why a single file name (one path component, e.g. a torrent's `info.name`) is unsafe,
 * or null when it is a plain name. Checked before anything touches the disk.
 */
export function badFileName(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'empty name';
  if (name.includes('\0')) return 'name contains NUL';
  if (name.includes('/') || name.includes('\\')) return 'name contains a path separator';
  if (name === '.' || name === '..') return 'name is a dot entry';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return 'name too long';
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return 'name contains control characters';
  return null;
}

/**
 * Why a relative path inside a shared folder (components joined by '/') is unsafe,
 * or null when it is a plain relative path: no absolute path, no `..`, no NUL, no empty
 * or dot components, no backslashes.
 */
export function badRelativePath(rel: string): string | null {
  if (typeof rel !== 'string' || rel.length === 0) return 'empty path';
  if (rel.includes('\0')) return 'path contains NUL';
  if (rel.startsWith('/') || path.isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) return 'absolute path';
  if (Buffer.byteLength(rel) > MAX_PATH_BYTES) return 'path too long';
  for (const part of rel.split('/')) {
    const why = badFileName(part);
    if (why) return `bad path component: ${why}`;
  }
  return null;
}

/**
 * Resolve a relative path inside `root`, or throw. The result is guaranteed to be
 * strictly inside `root` (a second check after the string check, so a future change
 * to the rules above cannot open a hole).
 */
export function resolveInside(root: string, rel: string): string {
  const why = badRelativePath(rel);
  if (why) throw new Error(`unsafe path ${JSON.stringify(rel)}: ${why}`);
  const base = path.resolve(root);
  const full = path.resolve(base, rel);
  if (!full.startsWith(base + path.sep)) throw new Error(`unsafe path ${JSON.stringify(rel)}: escapes ${base}`);
  return full;
}

/**
 * Why the library would never serve a file at relative path `rel`, or null when it would:
 * an unsafe path (badRelativePath), a dot-file or dot-directory, or a `.part` download.
 */
export function unservablePath(rel: string): string | null {
  const why = badRelativePath(rel);
  if (why) return why;
  if (rel.split('/').some((c) => c.startsWith('.'))) return 'dot-files and dot-directories are never shared';
  if (rel.endsWith('.part')) return '.part files are downloads in progress, never shared';
  return null;
}
