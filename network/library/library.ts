/**
 * The library: every regular file under the shared folders, each with its single-file
 * torrent. It scans at start, then follows changes (chokidar, plus a periodic stat
 * rescan as a safety net), hashing new or changed files in the HashPool once they have
 * settled, and remembering digests in a HashCache across restarts.
 *
 * What is never served: dot-files and dot-directories, `*.part`, names that fail
 * badRelativePath, symlinks (a file is only reached through real directories of its
 * folder), anything that is not a regular file, what `withholds` says (private data), and
 * the files of a private multi-file torrent's folder. A folder may also be shared whole, as
 * one multi-file torrent (shareWhole, from library/folder-torrents.ts): one more entry.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { watch, type FSWatcher } from 'chokidar';
import { buildMetainfo, pieceCountFor, DEFAULT_PIECE_LENGTH, MIN_PIECE_LENGTH, MAX_PIECE_LENGTH, type Metainfo } from '../metainfo/metainfo.js';
import { PRIVATE_FOLDER_MARKER, unservablePath } from '../util/names.js';
import { FileIndex, type SharedFile } from './file-index.js';
import { ignoredByWatcher, locate, reachedDirectly, sameStat, walkFolder, type Place } from './folders.js';
import { HashCache } from './hash-cache.js';
import type { HashPool } from './hash-pool.js';
import { ClosedError, TimeoutError } from '../util/errors.js';
import { sameStamp, stampOf, type FileStamp } from '../util/file-stamp.js';
import { silentLogger, type Logger } from '../util/log.js';

export type { SharedFile } from './file-index.js';

export interface LibraryInit {
  folders: string[];
  cacheFile: string;
  hashPool: HashPool;
  pieceLength?: number;
  logger?: Logger;
  /** Follow changes after the first scan; default true. */
  watch?: boolean;
  /** Files never shared whatever their name (a private torrent's data, BEP 27). */
  withholds?: (abs: string, st: Stats) => boolean;
  /** A changed file must be stable this long before (re)hashing; default DEFAULT_SETTLE_MS. */
  settleMs?: number;
  /**
   * Period of the stat rescan, watching or not (with a watcher it catches what the watcher
   * missed; without one it is how changes are found); default DEFAULT_RESCAN_INTERVAL_MS, 0 = none.
   */
  rescanIntervalMs?: number;
}

export interface LibraryEvents {
  added: [file: SharedFile];
  removed: [file: SharedFile];
}

export const DEFAULT_SETTLE_MS = 300;
export const DEFAULT_RESCAN_INTERVAL_MS = 60_000;
export const DEFAULT_WAIT_FOR_MS = 30_000;
export { MAX_SEARCH_RESULTS } from './file-index.js';
/** A file that keeps failing to hash (vanishing, swapped) is given up until its next change. */
const MAX_ATTEMPTS = 5;
/** How often waitFor() looks at its path again when no event has told it anything. */
const WAIT_POLL_MS = 250;

interface Job {
  /** Asked to look again while running: loop once more when done. */
  again: boolean;
  done: Promise<void>;
}

export class Library extends EventEmitter<LibraryEvents> {
  private readonly folders: string[];
  private readonly pool: HashPool;
  private readonly cache: HashCache;
  private readonly log: Logger;
  private readonly withholds: (abs: string, st: Stats) => boolean;
  readonly pieceLength: number;
  private readonly watching: boolean;
  private readonly settleMs: number;
  private readonly rescanMs: number;
  private readonly index = new FileIndex();
  private readonly jobs = new Map<string, Job>();
  /** Paths to hash again at their next look even if their stamp did not change (`reverify`). */
  private readonly forced = new Set<string>();
  private readonly warned = new Set<string>();
  private readonly waiters = new Set<(err: Error) => void>();
  private readonly abort = new AbortController();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private nextScan: Promise<void> | null = null;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;

  constructor(init: LibraryInit) {
    super();
    this.folders = [...new Set(init.folders.map((f) => path.resolve(f)))];
    this.pool = init.hashPool;
    this.cache = new HashCache({ file: init.cacheFile, logger: init.logger });
    this.log = init.logger ?? silentLogger();
    this.withholds = init.withholds ?? (() => false);
    this.pieceLength = init.pieceLength ?? DEFAULT_PIECE_LENGTH;
    if (!Number.isSafeInteger(this.pieceLength) || this.pieceLength < MIN_PIECE_LENGTH || this.pieceLength > MAX_PIECE_LENGTH)
      throw new RangeError(`pieceLength must be an integer from ${MIN_PIECE_LENGTH} to ${MAX_PIECE_LENGTH}`);
    this.watching = init.watch ?? true;
    this.settleMs = init.settleMs ?? DEFAULT_SETTLE_MS;
    this.rescanMs = init.rescanIntervalMs ?? DEFAULT_RESCAN_INTERVAL_MS;
    // One signal is shared by every pending job and sleep: no leak warning for it.
    setMaxListeners(0, this.abort.signal);
  }

  /** Scan every folder and resolve once every file present is indexed; then watch. Idempotent. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      await this.cache.load();
      // The watcher is ready before the scan ends, so nothing created meanwhile is missed.
      await Promise.all([this.watching ? this.startWatcher() : null, this.scan(this.folders)]);
      if (this.rescanMs > 0 && !this.stopped) {
        // A light stat of every file: whatever the watcher missed, or every change when there is no watcher.
        this.timer = setInterval(() => {
          if (!this.scanning) this.rescan().catch((err: Error) => this.log.warn({ err: err.message }, 'library rescan failed'));
        }, this.rescanMs);
        this.timer.unref();
      }
    })();
    return this.starting;
  }

  /** Stop watching and hashing, and save the cache. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort.abort();
      if (this.timer) clearInterval(this.timer);
      await this.watcher?.close();
      await Promise.allSettled([...this.jobs.values()].map((j) => j.done));
      for (const fail of this.waiters) fail(new ClosedError('library stopped'));
      await this.cache.flush();
    })();
    return this.stopping;
  }

  files(): SharedFile[] {
    return this.index.files();
  }

  byInfoHash(hex: string): SharedFile | undefined {
    return this.index.byInfoHash(hex);
  }

  /** Case-insensitive substring match on the relative name; the text is never a pattern. */
  search(text: string): SharedFile[] {
    return this.index.search(text);
  }

  /** Look at one file again now (it may be withheld now, or no more); resolves when the index says what it is. */
  look(absPath: string): Promise<void> {
    return this.check(path.resolve(absPath));
  }

  /** Scan every folder now; resolves when what it found is indexed. */
  rescan(): Promise<void> {
    if (!this.scanning) return this.runScan();
    // A scan is under way and may have passed what changed: every caller meanwhile shares one more.
    this.nextScan ??= this.scanning.then(() => {
      this.nextScan = null;
      return this.runScan();
    });
    return this.nextScan;
  }

  /** Share one more folder (for instance the downloads folder); no-op if already shared. */
  async addFolder(dir: string): Promise<void> {
    const abs = path.resolve(dir);
    if (this.folders.includes(abs)) return;
    this.folders.push(abs);
    if (!this.starting || this.stopped) return; // start() will scan it
    this.watcher?.add(abs);
    await this.scan([abs]);
  }

  /**
   * Stop sharing a folder: what was shared from it leaves the index, except what another
   * shared folder holds (one it sits in: shared from there now, no rehash; one inside it).
   */
  async removeFolder(dir: string): Promise<void> {
    const abs = path.resolve(dir);
    if (!this.folders.includes(abs)) return;
    this.folders.splice(this.folders.indexOf(abs), 1);
    if (!this.starting || this.stopped) return;
    // chokidar's unwatch also silences every folder nested in it, or around it: keep those watched.
    if (!this.folders.some((f) => f.startsWith(abs + path.sep) || abs.startsWith(f + path.sep))) this.watcher?.unwatch(abs);
    const under = [...this.index.paths()].filter((p) => this.index.at(p)?.file.folder === abs);
    for (const p of under) this.drop(p);
    // A hash under way would put its file back: make it look again, as every dropped file does.
    const hashing = [...this.jobs.keys()].filter((p) => p.startsWith(abs + path.sep));
    await Promise.all([...under, ...hashing].map((p) => this.check(p)));
  }

  /**
   * Index a file whose piece digests are already known (a download that was just verified
   * piece by piece) without hashing it again: the digests go into the cache under the
   * file's current stat, so the ordinary check finds them there.
   */
  async adopt(absPath: string, pieces: Buffer, pieceLength: number): Promise<SharedFile | undefined> {
    const abs = path.resolve(absPath);
    if (pieceLength === this.pieceLength) {
      const st = await fsp.lstat(abs);
      if (st.isFile() && pieces.length === pieceCountFor(st.size, pieceLength) * 20)
        this.cache.set({ path: abs, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, pieceLength }, pieces);
    }
    await this.check(abs);
    return this.index.at(abs)?.file;
  }

  /** Share folder `abs` whole, as the multi-file torrent of `file` (folder-torrents.ts made it), or no more (null). */
  shareWhole(abs: string, file: SharedFile | null): void {
    const old = file ? this.index.putFolder(file) : this.index.removeFolder(abs);
    if (old && old.metainfo.infoHashHex === file?.metainfo.infoHashHex) return;
    if (old) this.emit('removed', old);
    if (file) this.emit('added', file);
  }

  /** The stamp `absPath` was hashed at, if it is indexed as the torrent `infohash`. */
  hashedStamp(absPath: string, infohash: string): FileStamp | undefined {
    const e = this.index.at(path.resolve(absPath));
    return e && e.file.metainfo.infoHashHex === infohash ? e.stamp : undefined;
  }

  /**
   * Hash `absPath` again now, even if its stamp did not change (a piece read from it failed
   * its hash): what it holds now is indexed, and a new torrent replaces the old one.
   */
  reverify(absPath: string): Promise<void> {
    const abs = path.resolve(absPath);
    const running = this.jobs.get(abs);
    if (running && this.forced.has(abs)) return running.done;
    this.forced.add(abs);
    return this.check(abs);
  }

  /** Resolve once `absPath` is indexed with its current content; reject with a TimeoutError. */
  waitFor(absPath: string, timeoutMs = DEFAULT_WAIT_FOR_MS): Promise<SharedFile> {
    const abs = path.resolve(absPath);
    return new Promise<SharedFile>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, file?: SharedFile) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.off('added', onAdded);
        this.waiters.delete(finish);
        if (err) reject(err);
        else resolve(file!);
      };
      const onAdded = (f: SharedFile) => {
        if (f.path === abs) finish(null, f);
      };
      const timer = setTimeout(() => finish(new TimeoutError(`${abs} was not indexed within ${timeoutMs} ms`)), timeoutMs);
      this.on('added', onAdded);
      this.waiters.add(finish);
      if (this.stopped) return finish(new ClosedError('library stopped'));
      // Look ourselves rather than trust the watcher: it may be off, or slow.
      void (async () => {
        while (!done && !this.stopped) {
          await this.check(abs);
          const e = this.index.at(abs);
          if (e && !this.jobs.has(abs)) return finish(null, e.file);
          await sleep(WAIT_POLL_MS);
        }
      })();
    });
  }

  private runScan(): Promise<void> {
    const p = this.scan(this.folders).finally(() => {
      if (this.scanning === p) this.scanning = null;
    });
    this.scanning = p;
    return p;
  }

  private get stopped(): boolean {
    return this.abort.signal.aborted;
  }

  private async startWatcher(): Promise<void> {
    if (this.stopped) return;
    const w = watch(this.folders, {
      ignoreInitial: true,
      followSymlinks: false,
      // Our own stop() closes it; a forgotten library must not hold the process open.
      persistent: false,
      ignored: (p: string, st?: Stats) => ignoredByWatcher(this.folders, p, st),
    });
    this.watcher = w;
    const look = (p: string) => void this.check(path.resolve(p));
    w.on('add', look).on('change', look).on('unlink', look);
    // A directory moved in at once may come without an event per file: scan it.
    w.on('addDir', (p) => void this.scan([path.resolve(p)]));
    w.on('unlinkDir', (p) => {
      const dir = path.resolve(p) + path.sep;
      for (const abs of [...this.index.paths()]) if (abs.startsWith(dir)) void this.check(abs);
    });
    w.on('error', (err) => this.log.warn({ err: (err as Error).message }, 'library watcher error'));
    // A stop() during the watcher's first walk closes it before 'ready': do not wait forever.
    await new Promise<void>((resolve) => {
      w.once('ready', resolve);
      this.abort.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Where `abs` would be served from, or null if it must never be. */
  private servable(abs: string): Place | null {
    const where = locate(this.folders, abs);
    if (!where || where.rel === '') return null;
    const why = unservablePath(where.rel);
    if (why) {
      // Dot-files and .part are skipped quietly: they are ours or meant to be hidden.
      const quiet = where.rel.split('/').some((c) => c.startsWith('.') || c.endsWith('.part'));
      if (quiet) return null;
      if (!this.warned.has(abs)) this.log.warn({ path: abs, why }, 'not sharing a file with an unsafe name');
      this.warned.add(abs);
      return null;
    }
    return where;
  }

  /**
   * Walk `roots`, look at every candidate file, and at every indexed file under them
   * that the walk did not see (it may be gone). Resolves when all of that is indexed.
   */
  private async scan(roots: string[]): Promise<void> {
    const seen = new Set<string>();
    for (const r of roots) await walkFolder(r, { seen, keep: (abs) => this.servable(abs) !== null, stopped: () => this.stopped, log: this.log });
    const jobs = [...seen].map((p) => this.check(p));
    const under = roots.map((r) => r + path.sep);
    for (const abs of [...this.index.paths()]) {
      if (!seen.has(abs) && under.some((u) => abs.startsWith(u))) jobs.push(this.check(abs));
    }
    await Promise.all(jobs);
  }

  /** Bring the index up to date for one path. One job per path; a call during a job makes it look again. */
  private check(abs: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const running = this.jobs.get(abs);
    if (running) {
      running.again = true;
      return running.done;
    }
    const job: Job = { again: false, done: Promise.resolve() };
    job.done = (async () => {
      try {
        do {
          job.again = false;
          await this.refresh(abs);
        } while (job.again && !this.stopped);
      } catch (err) {
        if (!this.stopped) this.log.warn({ path: abs, err: (err as Error).message }, 'could not index file');
      } finally {
        this.jobs.delete(abs);
      }
    })();
    this.jobs.set(abs, job);
    return job.done;
  }

  private async refresh(abs: string): Promise<void> {
    const where = this.servable(abs);
    if (!where) return this.drop(abs);
    const signal = this.abort.signal;
    let previous: Stats | null = null;
    for (let attempt = 0; ; ) {
      if (this.stopped) return;
      const st = await fsp.lstat(abs).catch(() => null);
      if (!st || !st.isFile() || this.withholds(abs, st) || (await inPrivateFolder(where)) || !(await reachedDirectly(abs, where))) return this.drop(abs);
      const cur = this.index.at(abs);
      const forced = this.forced.has(abs);
      if (cur && !forced && sameStamp(cur.stamp, stampOf(st))) return;
      // Let a file being written settle, so we hash it once, at the end. A future mtime
      // (clock skew) settles when two looks settleMs apart agree.
      const age = Date.now() - st.mtimeMs;
      if (age < this.settleMs && !(previous && sameStat(previous, st))) {
        previous = st;
        await sleep(age >= 0 ? this.settleMs - age : this.settleMs, undefined, { signal });
        continue;
      }
      const key = { path: abs, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, pieceLength: this.pieceLength };
      this.forced.delete(abs);
      let pieces = forced ? undefined : this.cache.get(key);
      if (!pieces) {
        try {
          pieces = await this.pool.hashFile(abs, this.pieceLength, signal);
        } catch (err) {
          if (this.stopped || ++attempt >= MAX_ATTEMPTS) throw err;
          previous = null; // vanished or swapped while we opened it: look again
          continue;
        }
        const after = await fsp.lstat(abs).catch(() => null);
        if (!after || !sameStat(st, after) || pieces.length !== pieceCountFor(st.size, this.pieceLength) * 20) {
          previous = null; // changed while hashing: wait for it to settle, then hash again
          continue;
        }
        this.cache.set(key, pieces);
      }
      if (this.stopped) return;
      // Withheld while it was hashed (a private download renamed into place): never indexed.
      return this.withholds(abs, st) || (await inPrivateFolder(where)) ? this.drop(abs) : this.put(abs, where, st, pieces);
    }
  }

  private put(abs: string, where: Place, st: Stats, pieces: Buffer): void {
    const metainfo = buildMetainfo({ name: path.basename(abs), length: st.size, pieceLength: this.pieceLength, pieces });
    const file: SharedFile = { name: where.rel, path: abs, folder: where.folder, size: st.size, mtimeMs: st.mtimeMs, metainfo };
    // Touched but identical: the torrent is the same, so nobody needs to hear about it.
    const { removed, added } = this.index.put(file, stampOf(st));
    if (removed) this.emit('removed', removed);
    if (added) this.emit('added', added);
  }

  private drop(abs: string): void {
    const old = this.index.remove(abs);
    if (old) this.emit('removed', old);
  }
}

/**
 * Whether the file is inside the folder of a private multi-file torrent (BEP 27): such a folder
 * carries a PRIVATE_FOLDER_MARKER from its first moment as a `.part` folder, through the rename,
 * and across restarts, so none of its files is ever in a public catalog.
 */
async function inPrivateFolder(where: Place): Promise<boolean> {
  const slash = where.rel.indexOf('/');
  if (slash < 0) return false;
  const marker = path.join(where.folder, where.rel.slice(0, slash), PRIVATE_FOLDER_MARKER);
  return (await fsp.lstat(marker).catch(() => null)) !== null;
}
