import type { Metainfo } from '../metainfo/metainfo.js';
import type { FileStamp } from '../util/file-stamp.js';

/** A shared file, or a folder shared whole (`path` the folder, `metainfo` its multi-file torrent). */
export interface SharedFile {
  /** Path relative to its folder, '/'-separated, checked by badRelativePath (a folder shared whole: its name). */
  name: string;
  /** Absolute path. */
  path: string;
  /** The shared folder it lives in (absolute); for a folder shared whole, the folder that holds it. */
  folder: string;
  /** Bytes (every file's together, for a folder). */
  size: number;
  mtimeMs: number;
  /** Single-file torrent, its name the file's basename; a folder's multi-file torrent, its name the folder's. */
  metainfo: Metainfo;
}

/** Most files one local search answers with. */
export const MAX_SEARCH_RESULTS = 200;

interface Entry {
  file: SharedFile;
  /** What the file looked like when it was hashed. */
  stamp: FileStamp;
  /** Lower-cased name, computed once for search(). */
  lower: string;
}

/**
 * What the library shares now, by absolute path and by infohash (two paths may hold the
 * same content), with a case-insensitive substring search over the relative names. Pure
 * state: the library keeps it in step with the disk and tells the world of each change.
 */
export class FileIndex {
  private readonly entries = new Map<string, Entry>();
  /** Folders shared whole, as one multi-file torrent each (library/folder-torrents.ts): listed, never scanned as files. */
  private readonly folders = new Map<string, Entry>();
  private readonly byHash = new Map<string, Set<string>>();

  files(): SharedFile[] {
    return [...this.entries.values(), ...this.folders.values()].map((e) => e.file);
  }

  /** The file at `abs` and the stamp it was hashed at. */
  at(abs: string): { file: SharedFile; stamp: FileStamp } | undefined {
    return this.entries.get(abs);
  }

  /** Paths of the files (not the folders shared whole). */
  paths(): IterableIterator<string> {
    return this.entries.keys();
  }

  byInfoHash(hex: string): SharedFile | undefined {
    const paths = this.byHash.get(hex.toLowerCase());
    if (!paths) return undefined;
    for (const p of paths) return (this.entries.get(p) ?? this.folders.get(p))?.file;
    return undefined;
  }

  /** Case-insensitive substring match on the relative name; the text is never a pattern. */
  search(text: string): SharedFile[] {
    if (typeof text !== 'string' || text.length === 0) return [];
    const needle = text.toLowerCase();
    const found: SharedFile[] = [];
    for (const e of [...this.entries.values(), ...this.folders.values()]) if (e.lower.includes(needle)) found.push(e.file);
    found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.path < b.path ? -1 : 1));
    return found.slice(0, MAX_SEARCH_RESULTS);
  }

  /**
   * Index `file` (hashed at `stamp`) at its path. Returns what changed for the world:
   * the file it replaced (removed) and the one now there (added); neither when the content
   * is the same torrent as before (a touched file).
   */
  put(file: SharedFile, stamp: FileStamp): { removed: SharedFile | null; added: SharedFile | null } {
    const abs = file.path;
    const old = this.entries.get(abs);
    const entry: Entry = { file, stamp, lower: file.name.toLowerCase() };
    if (old && old.file.metainfo.infoHashHex === file.metainfo.infoHashHex) {
      this.entries.set(abs, entry);
      return { removed: null, added: null };
    }
    if (old) this.unindex(abs, old);
    this.entries.set(abs, entry);
    this.hashed(file);
    return { removed: old?.file ?? null, added: file };
  }

  /** Index a folder shared whole as one torrent (its `path` the folder); returns what it replaced. */
  putFolder(file: SharedFile): SharedFile | null {
    const old = this.removeFolder(file.path);
    // A folder's files are stamped one by one by the library (folder-torrents.ts watches them); the folder itself has no stamp.
    this.folders.set(file.path, { file, stamp: { size: file.size, mtimeMs: file.mtimeMs, ctimeMs: 0, ino: 0 }, lower: file.name.toLowerCase() });
    this.hashed(file);
    return old;
  }

  /** Forget the folder shared whole at `abs`; returns it, or null. */
  removeFolder(abs: string): SharedFile | null {
    const old = this.folders.get(abs);
    if (!old) return null;
    this.folders.delete(abs);
    this.unhash(abs, old.file);
    return old.file;
  }

  /** Forget the file at `abs`; returns it, or null if none was there. */
  remove(abs: string): SharedFile | null {
    const old = this.entries.get(abs);
    if (!old) return null;
    this.unindex(abs, old);
    return old.file;
  }

  private unindex(abs: string, e: Entry): void {
    this.entries.delete(abs);
    this.unhash(abs, e.file);
  }

  private hashed(file: SharedFile): void {
    let paths = this.byHash.get(file.metainfo.infoHashHex);
    if (!paths) this.byHash.set(file.metainfo.infoHashHex, (paths = new Set()));
    paths.add(file.path);
  }

  private unhash(abs: string, file: SharedFile): void {
    const hex = file.metainfo.infoHashHex;
    const paths = this.byHash.get(hex);
    paths?.delete(abs);
    if (paths?.size === 0) this.byHash.delete(hex);
  }
}
