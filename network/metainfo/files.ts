/**
 * The files of a torrent (BEP 3): a single-file torrent is one file called `name`; a
 * multi-file torrent is a folder called `name` holding `info.files`, each a list of path
 * components and a length, laid end to end in that order to make the byte stream that the
 * pieces cut. Every path is checked by the name rules (util/names.ts) here, when the torrent
 * is read, so nothing from a torrent reaches the disk unchecked.
 */
import { badTorrentPath } from '../util/names.js';

/** A torrent's files are bounded: a 16 MiB .torrent could otherwise list a million of them. */
export const MAX_TORRENT_FILES = 100_000;

export interface TorrentFile {
  /** Path components inside the torrent's folder; `[name]` for a single-file torrent. */
  readonly path: readonly string[];
  /** The components joined by '/'. */
  readonly name: string;
  readonly length: number;
  /** Where its bytes start in the torrent's byte stream. */
  readonly offset: number;
  /**
   * A BEP 47 padding file (attr "p"): zeros that align the next file to a piece. Never
   * written, never shown, never selected; reads give zeros.
   */
  readonly pad: boolean;
}

/** What a file entry of `info.files` holds, before checking. */
type Raw = Record<string, unknown>;

export class FilesError extends Error {}

/** The one file of a single-file torrent. */
export function singleFile(name: string, length: number): TorrentFile[] {
  return [{ path: [name], name, length, offset: 0, pad: false }];
}

/**
 * Check and lay out `info.files`. Throws FilesError (the caller wraps it as a MetainfoError)
 * for anything that is not a list of files with safe, distinct paths.
 */
export function parseFiles(list: unknown, platform: NodeJS.Platform = process.platform): { files: TorrentFile[]; length: number } {
  if (!Array.isArray(list) || list.length === 0) throw new FilesError('info.files must be a non-empty list');
  if (list.length > MAX_TORRENT_FILES) throw new FilesError(`info.files lists ${list.length} files, more than ${MAX_TORRENT_FILES}`);
  const files: TorrentFile[] = [];
  let offset = 0;
  for (const [i, entry] of list.entries()) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry) || entry instanceof Uint8Array) throw new FilesError(`info.files[${i}] is not a dictionary`);
    const e = entry as Raw;
    const length = e.length;
    if (!Number.isSafeInteger(length) || (length as number) < 0) throw new FilesError(`info.files[${i}].length must be a non-negative integer`);
    const components = pathOf(e['path.utf-8']) ?? pathOf(e.path);
    if (!components) throw new FilesError(`info.files[${i}].path must be a non-empty list of byte strings`);
    const why = badTorrentPath(components, platform);
    if (why) throw new FilesError(`unsafe path in torrent ${JSON.stringify(components.join('/').slice(0, 200))}: ${why}`);
    const pad = e.attr instanceof Uint8Array && Buffer.from(e.attr).includes(0x70); // 'p'
    files.push({ path: components, name: components.join('/'), length: length as number, offset, pad });
    offset += length as number;
    if (!Number.isSafeInteger(offset)) throw new FilesError('the files add up to more bytes than we can count');
  }
  const clash = firstClash(files);
  if (clash) throw new FilesError(clash);
  return { files, length: offset };
}

/** A list of byte strings as UTF-8 components, or null when it is not one. */
function pathOf(v: unknown): string[] | null {
  if (!Array.isArray(v) || v.length === 0 || !v.every((c) => c instanceof Uint8Array)) return null;
  return v.map((c: Uint8Array) => Buffer.from(c).toString('utf8'));
}

/**
 * Two entries that cannot both be on disk: the same path twice, or a path that is a file in
 * one entry and a folder in another (`a` and `a/b`). Padding files count too: they share
 * the folder namespace even though they are never written.
 */
function firstClash(files: readonly TorrentFile[]): string | null {
  const taken = new Set<string>();
  const folders = new Set<string>();
  for (const f of files) {
    if (taken.has(f.name)) return `the torrent lists ${JSON.stringify(f.name.slice(0, 200))} twice`;
    if (folders.has(f.name)) return `${JSON.stringify(f.name.slice(0, 200))} is both a file and a folder in the torrent`;
    taken.add(f.name);
    for (let k = 1; k < f.path.length; k++) {
      const dir = f.path.slice(0, k).join('/');
      if (taken.has(dir)) return `${JSON.stringify(dir.slice(0, 200))} is both a file and a folder in the torrent`;
      folders.add(dir);
    }
  }
  return null;
}

/**
 * The order mktorrent lists a folder's files in: by their '/'-joined path, compared byte by
 * byte as UTF-8 (strcmp), so that a folder shared here has the infohash mktorrent gives it.
 */
export function mktorrentOrder(a: readonly string[], b: readonly string[]): number {
  return Buffer.compare(Buffer.from(a.join('/')), Buffer.from(b.join('/')));
}
