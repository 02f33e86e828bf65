/**
 * Folders shared whole, each as one multi-file torrent listed in the library beside the
 * single files: those named by `--share-folder-as-torrent` (hashed here, in the hash
 * workers, at every start), and finished multi-file downloads (their digests are known: no
 * rehash). Every minute each is looked at again (a stat of its files): a named folder that
 * changed is hashed again and shared under its new infohash, as a changed file is; a
 * download's folder that changed stops being shared whole (its torrent no longer matches).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Metainfo } from '../metainfo/metainfo.js';
import { resolveInside } from '../util/names.js';
import type { Logger } from '../util/log.js';
import { folderTorrent, unchanged, type FolderScan } from './folder-torrent.js';
import type { HashPool } from './hash-pool.js';
import type { Library, SharedFile } from './library.js';

export const DEFAULT_FOLDER_CHECK_MS = 60_000;

export interface FolderTorrentsInit {
  library: Library;
  pool: HashPool;
  pieceLength: number;
  log: Logger;
  /** How often each folder is looked at again; default DEFAULT_FOLDER_CHECK_MS. */
  intervalMs?: number;
}

interface Shared {
  /** A folder named to share (hashed here), or a finished download's (adopted). */
  named: boolean;
  metainfo: Metainfo;
  /** What its files were when it was hashed or adopted. */
  scan: FolderScan;
}

export class FolderTorrents {
  private readonly folders = new Map<string, Shared>();
  /** Folders being hashed again because a seed saw one of their files change. */
  private readonly rechecks = new Map<string, Promise<boolean>>();
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(private readonly init: FolderTorrentsInit) {}

  start(): void {
    if (this.timer || this.abort.signal.aborted) return;
    this.timer = setInterval(() => void this.check(), this.init.intervalMs ?? DEFAULT_FOLDER_CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    this.abort.abort();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Hash folder `dir` and share it as one torrent; resolves with its library entry. MetainfoError or the file system's error. */
  async share(dir: string): Promise<SharedFile> {
    const abs = path.resolve(dir);
    const { metainfo, scan } = await folderTorrent(abs, this.init.pool, { pieceLength: this.init.pieceLength, signal: this.abort.signal });
    for (const s of scan.skipped.slice(0, 10)) this.init.log.info({ folder: abs, path: s.path, why: s.why }, 'left out of the folder torrent');
    this.init.log.info({ folder: abs, files: metainfo.files.length, infohash: metainfo.infoHashHex }, 'sharing a folder as one torrent');
    return this.put(abs, { named: true, metainfo, scan });
  }

  /** Share a finished multi-file download's folder as its torrent, without hashing it again. */
  async adopt(dir: string, metainfo: Metainfo): Promise<SharedFile> {
    const abs = path.resolve(dir);
    return this.put(abs, { named: false, metainfo, scan: await stamp(abs, metainfo) });
  }

  /** Is `dir` shared whole here? */
  has(dir: string): boolean {
    return this.folders.has(path.resolve(dir));
  }

  /**
   * A seed saw a file of `dir` change (a new stamp, a piece that failed its hash): a named
   * folder is hashed again now, whatever its stamps say, and shared under what it holds now; a
   * downloaded one stops being shared whole. True when it was hashed again and still makes
   * the same torrent.
   */
  recheck(dir: string): Promise<boolean> {
    const abs = path.resolve(dir);
    let p = this.rechecks.get(abs);
    if (!p) {
      p = this.rehash(abs).finally(() => this.rechecks.delete(abs));
      this.rechecks.set(abs, p);
    }
    return p;
  }

  private async rehash(abs: string): Promise<boolean> {
    const s = this.folders.get(abs);
    if (!s || this.abort.signal.aborted) return false;
    if (!s.named) {
      this.init.log.warn({ folder: abs }, 'a downloaded folder changed: no longer sharing it as its torrent');
      this.remove(abs);
      return false;
    }
    this.init.log.info({ folder: abs }, 'a folder shared as a torrent changed: hashing it again');
    const now = await this.share(abs).catch((err: Error) => {
      if (!this.abort.signal.aborted) {
        this.init.log.warn({ folder: abs, err: err.message }, 'could not hash a changed folder again: no longer sharing it');
        this.remove(abs);
      }
      return null;
    });
    return now?.metainfo.infoHashHex === s.metainfo.infoHashHex;
  }

  /** Stop sharing `dir` whole (its files stay shared one by one where a shared folder holds them). */
  remove(dir: string): void {
    const abs = path.resolve(dir);
    if (!this.folders.delete(abs)) return;
    this.init.library.shareWhole(abs, null);
  }

  private put(abs: string, s: Shared): SharedFile {
    this.folders.set(abs, s);
    const newest = Math.max(0, ...s.scan.files.map((f) => f.mtimeMs));
    const file: SharedFile = { name: s.metainfo.name, path: abs, folder: path.dirname(abs), size: s.metainfo.length, mtimeMs: newest, metainfo: s.metainfo };
    this.init.library.shareWhole(abs, file);
    return file;
  }

  /** Look at every folder again; hash again (or stop sharing) what changed. */
  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [abs, s] of [...this.folders]) {
        if (this.abort.signal.aborted) return;
        const same = s.named ? await unchanged(abs, s.scan) : sameStamp(await stamp(abs, s.metainfo).catch(() => null), s.scan);
        if (same || this.folders.get(abs) !== s) continue;
        if (!s.named) {
          this.init.log.warn({ folder: abs }, 'a downloaded folder changed: no longer sharing it as its torrent');
          this.remove(abs);
          continue;
        }
        this.init.log.info({ folder: abs }, 'a folder shared as a torrent changed: hashing it again');
        await this.share(abs).catch((err: Error) => {
          if (this.abort.signal.aborted) return;
          this.init.log.warn({ folder: abs, err: err.message }, 'could not hash a changed folder again: no longer sharing it');
          this.remove(abs);
        });
      }
    } finally {
      this.checking = false;
    }
  }
}

/** The state of a torrent's files in `dir` now (padding left out). Rejects when one is missing. */
async function stamp(dir: string, m: Metainfo): Promise<FolderScan> {
  const files = [];
  for (const f of m.files) {
    if (f.pad) continue;
    const abs = resolveInside(dir, f.name);
    const st = await fsp.lstat(abs);
    if (!st.isFile()) throw new Error(`${abs} is not a file`);
    files.push({ path: [...f.path], abs, length: st.size, mtimeMs: st.mtimeMs });
  }
  return { files, skipped: [] };
}

function sameStamp(now: FolderScan | null, was: FolderScan): boolean {
  return now !== null && now.files.length === was.files.length && now.files.every((f, i) => f.length === was.files[i]!.length && f.mtimeMs === was.files[i]!.mtimeMs);
}
