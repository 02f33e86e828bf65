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

/** What Shoal keeps in a multi-file download's partial folder besides the torrent's files. */
export const UNWANTED_SIDE_FILE = '.shoal-unwanted';
/** Marks the folder of a private multi-file torrent: the library shares nothing in it. */
export const PRIVATE_FOLDER_MARKER = '.shoal-private';

/** Windows device names (with any extension): opening one there opens the device. */
const WINDOWS_DEVICE = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])(\..*)?$/i;

/**
 * Why a path from a torrent (its components, inside the torrent's folder) must never reach the
 * disk, or null when it is safe: every component a plain name (badFileName: not empty, no
 * NUL, no separator, not `.` or `..`, no control characters, at most 255 bytes), the whole at
 * most MAX_PATH_BYTES, and not Shoal's own side file at the top of a partial folder.
 *
 * Windows device names (`CON`, `NUL`, `aux.c`, `COM1`...), trailing dots and spaces and the
 * characters `<>:"|?*` are refused only where they mean something, on Windows: on Linux and
 * macOS `aux.c` is an ordinary file (the Linux sources have several), and refusing it would
 * refuse real torrents for nothing.
 */
export function badTorrentPath(components: readonly string[], platform: NodeJS.Platform = process.platform): string | null {
  if (components.length === 0) return 'empty path';
  for (const c of components) {
    const why = badFileName(c);
    if (why) return `bad path component: ${why}`;
    if (platform === 'win32') {
      if (WINDOWS_DEVICE.test(c)) return `${JSON.stringify(c)} is a reserved device name on Windows`;
      if (/[<>:"|?*]/.test(c)) return 'path component contains a character Windows refuses';
      if (/[. ]$/.test(c)) return 'path component ends with a dot or a space (Windows drops them)';
    }
  }
  if (Buffer.byteLength(components.join('/')) > MAX_PATH_BYTES) return 'path too long';
  if (components[0] === UNWANTED_SIDE_FILE || components[0] === PRIVATE_FOLDER_MARKER) return `${components[0]} is reserved for Shoal's own use`;
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
 * an unsafe path (badRelativePath), a dot-file or dot-directory, or a `.part` download (a
 * file, or a folder and everything in it).
 */
export function unservablePath(rel: string): string | null {
  const why = badRelativePath(rel);
  if (why) return why;
  if (rel.split('/').some((c) => c.startsWith('.'))) return 'dot-files and dot-directories are never shared';
  // A multi-file download in progress is a `<name>.part/` folder: nothing in it is shared either.
  if (rel.split('/').some((c) => c.endsWith('.part'))) return '.part files and folders are downloads in progress, never shared';
  return null;
}

/** Characters that reorder or hide text: a name `exe.txt` spelt backwards behind U+202E looks like a text file. */
// eslint-disable-next-line no-misleading-character-class
const INVISIBLE = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * The name a file named `name` by a remote torrent gets on this disk: `name` itself when it is
 * plain, else a visible, harmless variant and the reason. A leading dot becomes `_` (a hidden
 * file would neither show nor be shared, and `.bashrc` in a home folder is a trap), a `.part`
 * ending `_part` (that is how downloads in progress are named), Windows device names get a
 * leading `_`, and characters that reorder or hide text are dropped. `name` must already pass
 * badFileName (metainfo parsing sees to that).
 */
export function localName(name: string): { name: string; why: string | null } {
  let out = name.normalize('NFC');
  const why: string[] = [];
  const visible = out.replace(INVISIBLE, '');
  if (visible !== out) {
    why.push('characters that reorder or hide text removed');
    out = visible;
  }
  if (process.platform === 'win32') {
    const portable = out.replace(/[<>:"|?*]/g, '_').replace(/[. ]+$/, '');
    if (portable !== out) {
      why.push('characters Windows does not allow replaced');
      out = portable;
    }
  }
  if (out.startsWith('.')) {
    why.push('a leading dot would hide it');
    out = `_${out.slice(1)}`;
  }
  if (/\.part$/i.test(out)) {
    why.push('.part is the ending of downloads in progress');
    out = `${out.slice(0, -5)}_${out.slice(-4)}`;
  }
  if (WINDOWS_DEVICE.test(out)) {
    why.push('a Windows device name');
    out = `_${out}`;
  }
  while (Buffer.byteLength(out) > MAX_NAME_BYTES) out = out.slice(0, -1);
  if (out === '' || badFileName(out)) return { name: '_', why: 'nothing usable left of the name' };
  return { name: out, why: why.length > 0 ? why.join('; ') : null };
}
