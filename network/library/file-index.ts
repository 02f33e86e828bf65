import type { SharedFile } from './library.js';
import type { FileStamp } from '../util/file-stamp.js';

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
  private readonly byHash = new Map<string, Set<string>>();

  files(): SharedFile[] {
    return [...this.entries.values()].map((e) => e.file);
  }

  /** The file at `abs` and the stamp it was hashed at. */
  at(abs: string): { file: SharedFile; stamp: FileStamp } | undefined {
    return this.entries.get(abs);
  }

  paths(): IterableIterator<string> {
    return this.entries.keys();
  }

  byInfoHash(hex: string): SharedFile | undefined {
    const paths = this.byHash.get(hex.toLowerCase());
    if (!paths) return undefined;
    for (const p of paths) return this.entries.get(p)?.file;
    return undefined;
  }

  /** Case-insensitive substring match on the relative name; the text is never a pattern. */
  search(text: string): SharedFile[] {
    if (typeof text !== 'string' || text.length === 0) return [];
    const needle = text.toLowerCase();
    const found: SharedFile[] = [];
    for (const e of this.entries.values()) if (e.lower.includes(needle)) found.push(e.file);
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
    let paths = this.byHash.get(file.metainfo.infoHashHex);
    if (!paths) this.byHash.set(file.metainfo.infoHashHex, (paths = new Set()));
    paths.add(abs);
    return { removed: old?.file ?? null, added: file };
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
    const hex = e.file.metainfo.infoHashHex;
    const paths = this.byHash.get(hex);
    paths?.delete(abs);
    if (paths?.size === 0) this.byHash.delete(hex);
  }
}
