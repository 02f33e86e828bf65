/**
 * Every download of this node and its lifecycle: open (or resume) its .part, run its torrent,
 * announce it, pause and resume it (a pause outlasts a restart), cancel it, finish it (the
 * .part becomes the file, the torrent seeds from it, the library shares it), and report it.
 * Each download's state lives in its Download, changed only along its state machine.
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { Cooldown } from '../util/cooldown.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { PartFile, checkSelection, type Hasher } from '../storage/part-file.js';
import { exists } from '../storage/stores.js';
import type { Torrents } from '../swarm/torrents.js';
import type { Announcer } from '../tracker/announcer.js';
import type { SharedFile } from '../library/library.js';
import { UnknownDownloadError } from '../errors.js';
import { ClosedError, diskFullCode } from '../util/errors.js';
import { Download, type DownloadInfo } from './download.js';

/** Progress events per download at most this often. */
const PROGRESS_EVERY_MS = 200;
/** While a download waits for room on a full disk, free space is looked at this often. */
export const SPACE_CHECK_MS = 2000;
/** Room a download waits for: this many of its pieces (or what is left), and this much for its resume record and the like. */
const ROOM_PIECES = 4;
const ROOM_MARGIN = 1024 * 1024;

type Endpoint = { host: string; port: number };

export interface DownloadsInit {
  downloadDir: string;
  /** Resume records and pause markers live here. */
  resumeDir: string;
  hasher: Hasher;
  torrents: Torrents;
  announcer: Announcer;
  /** Trackers every download is announced to, besides its own. */
  trackers: string[];
  /** Every peer known now: a new or resumed download dials them all. */
  knownPeers(): Endpoint[];
  /** Share a finished file or folder (its digests are known: no rehash); `whole` unless some files were left out. */
  adopt(path: string, m: Metainfo, whole: boolean): Promise<unknown>;
  /** Every piece is verified and the .part is about to be renamed (a private torrent's file is claimed now). */
  finishing?(m: Metainfo, partPath: string): Promise<void>;
  /** A finished file was deleted: stop sharing it. */
  unshare(path: string): Promise<unknown>;
  /** The node is stopping: failures from here on are expected. */
  stopping(): boolean;
  log: Logger;
}

export interface DownloadsEvents {
  progress: [info: DownloadInfo];
  done: [info: DownloadInfo];
  /** A download started, paused, resumed, finished or failed. */
  'download-state': [info: DownloadInfo];
  /** Cancelled, or removed once finished: it is gone from the list. */
  'download-removed': [infohash: string];
  error: [err: Error, infohash: string];
}

export class Downloads extends EventEmitter<DownloadsEvents> {
  private readonly all = new Map<string, Download>();
  /** Downloads whose .part is being opened (and maybe rechecked) right now. */
  private readonly opening = new Map<string, Promise<void>>();
  /** A progress event per download at most every PROGRESS_EVERY_MS. */
  private readonly progressEvents = new Cooldown(PROGRESS_EVERY_MS, 10_000);
  /** Aborted by stop(): an open under way (a resume's recheck) gives up at its next piece. */
  private readonly halt = new AbortController();
  /** Looks at free space while a download waits for room. */
  private spaceTimer: NodeJS.Timeout | null = null;

  constructor(private readonly init: DownloadsInit) {
    super();
  }

  get(infohash: string): Download | undefined {
    return this.all.get(infohash.toLowerCase());
  }

  list(): Download[] {
    return [...this.all.values()];
  }

  /** Known here in any state, or being opened. */
  knows(infohash: string): boolean {
    return this.all.has(infohash) || this.opening.has(infohash);
  }

  /** The open under way of `infohash`'s download, if any. */
  opened(infohash: string): Promise<void> | undefined {
    return this.opening.get(infohash);
  }

  /** Resolves with the final path when the download of `infohash` is complete and verified. */
  whenDone(infohash: string): Promise<string> {
    const d = this.get(infohash);
    return d ? d.done : Promise.reject(new UnknownDownloadError(`no download with infohash ${infohash}`));
  }

  /** Dial these peers (the node's known peers) for every running download but the private ones. */
  addPeers(peers: Endpoint[]): void {
    for (const d of this.all.values()) if (d.state === 'downloading' && !d.metainfo.private) d.torrent.addPeers(peers);
  }

  /**
   * Open no more downloads: a recheck under way stops at its next piece, and this resolves
   * once every open has settled. The node calls it before it closes the hash pool, which an
   * open may still be using (a recheck that met a closed pool was logged as an error).
   */
  async stop(): Promise<void> {
    this.halt.abort(new ClosedError('the node is stopping'));
    if (this.spaceTimer) clearInterval(this.spaceTimer);
    this.spaceTimer = null;
    await Promise.allSettled([...this.opening.values()]);
  }

  /** Every download a resume record names (a paused one stays paused), after a restart. */
  async resumeAll(): Promise<void> {
    const { resumeDir, log } = this.init;
    for (const m of await PartFile.pending(resumeDir, log)) {
      const paused = await exists(this.marker(m.infoHashHex));
      log.info({ file: m.name, infohash: m.infoHashHex, paused }, paused ? 'found a paused download' : 'resuming download');
      this.start(m, [], [], paused).catch((err: Error) => {
        if (this.halt.signal.aborted) log.info({ file: m.name }, 'stopped while resuming: the download resumes at the next start');
        else log.error({ file: m.name, err: err.message }, 'could not resume download');
      });
    }
  }

  /**
   * Start (or join the start already under way of) the download of `m`; `select` names the
   * files to fetch (torrent order; every file when absent), for a download already known too.
   */
  async start(m: Metainfo, peers: Endpoint[], extraTrackers: string[] = [], paused = false, select: boolean[] | null = null): Promise<void> {
    const h = m.infoHashHex;
    if (this.halt.signal.aborted) throw new ClosedError('the node is stopping');
    const running = this.opening.get(h);
    if (running) await running;
    const known = this.all.get(h);
    if (known) {
      known.torrent.addPeers(peers);
      if (select) await this.select(h, select);
      return;
    }
    const p = this.open(m, peers, extraTrackers, paused, select).finally(() => this.opening.delete(h));
    this.opening.set(h, p);
    return p;
  }

  /**
   * Fetch these files of a running or paused download from now on (torrent order; null: every
   * file). What is verified stays; the download is done when the selected files are. False
   * when there is no such download still to finish; SelectionError when it selects nothing.
   */
  async select(infohash: string, selected: readonly boolean[] | null): Promise<boolean> {
    const d = this.get(infohash);
    if (!d?.active || !d.part || d.part.done()) return false;
    await d.part.select(selected);
    if (!d.active) return false;
    d.torrent.wantedChanged();
    const n = d.info();
    this.init.log.info({ file: d.metainfo.name, files: n.selectedFiles, of: n.files }, 'download selection changed');
    this.stateChanged(d);
    return true;
  }

  /** A download of something shared here already: done at once (`done` is not told again of a torrent kept from an earlier run). */
  async alreadyShared(f: Pick<SharedFile, 'name' | 'path' | 'metainfo'>, tell = true): Promise<void> {
    const torrent = await this.init.torrents.find(f.metainfo.infoHashHex);
    if (!torrent) throw new UnknownDownloadError(`${f.name} is no longer shared here`);
    const d = new Download({ torrent, part: null, state: 'done', trackerUrls: [], path: f.path });
    this.all.set(d.infohash, d);
    this.stateChanged(d);
    if (tell) this.emit('done', d.info());
  }

  /**
   * Pause a running download: no more requests or dialing, its connections close, the
   * resume record is flushed and the .part kept. It stays paused across a restart.
   * False when there is no running download of `infohash`.
   */
  async pause(infohash: string): Promise<boolean> {
    const d = this.get(infohash);
    if (d?.waitingForSpace) {
      // Paused already for want of space: now it waits for the user, and outlasts a restart.
      d.keepPaused();
      await this.mark(d.infohash, true).catch((err: Error) => this.init.log.warn({ err: err.message }, 'could not record the pause: it will not outlast a restart'));
      this.init.log.info({ file: d.metainfo.name }, 'download paused');
      this.stateChanged(d);
      return true;
    }
    if (!d || !d.to('paused')) return false;
    // Trackers hear `stopped` in the background: a slow one must not hold the pause up.
    void this.init.announcer.stop(d.infohash);
    const remember = this.mark(d.infohash, true).catch((err: Error) =>
      this.init.log.warn({ err: err.message }, 'could not record the pause: it will not outlast a restart'),
    );
    d.torrent.pause();
    await Promise.all([d.part?.saveNow(), remember]);
    // Finished (or failed, or cancelled) while the pause settled: that state stands.
    if (d.state !== 'paused') {
      await this.mark(d.infohash, false);
      return false;
    }
    this.init.log.info({ file: d.metainfo.name }, 'download paused');
    this.stateChanged(d);
    return true;
  }

  /** Go on with a paused download, from every known source (its hints, known peers, trackers). */
  async resume(infohash: string): Promise<boolean> {
    const d = this.get(infohash);
    if (!d || !d.to('downloading')) return false;
    await this.mark(d.infohash, false);
    if (d.state !== 'downloading') return false;
    d.torrent.resume();
    d.torrent.addPeers(this.known(d.metainfo));
    this.announce(d);
    this.init.log.info({ file: d.metainfo.name }, 'download resumed');
    this.stateChanged(d);
    return true;
  }

  /** Cancel a download (running or paused) by infohash or name: its connections close, its .part and resume record are deleted. */
  async cancel(infohashOrName: string): Promise<boolean> {
    const d = [...this.all.values()].find((x) => x.active && (x.infohash === infohashOrName.toLowerCase() || x.metainfo.name === infohashOrName));
    if (!d || !d.cancelled()) return false;
    this.all.delete(d.infohash);
    await this.init.announcer.stop(d.infohash);
    await this.init.torrents.drop(d.infohash);
    await d.part?.discard();
    await this.mark(d.infohash, false);
    this.init.log.info({ file: d.metainfo.name }, 'download cancelled');
    this.emit('download-removed', d.infohash);
    return true;
  }

  /**
   * Take a finished (or failed) download off the list. With `deleteData` its file goes too,
   * and the sharing of it: its torrent stops, trackers hear `stopped`, the library forgets
   * it (a failed one's .part and resume record are deleted). Without, the file stays where
   * it is and stays shared. False when there is no such download, or it is still running or
   * paused (cancel those).
   */
  async remove(infohash: string, deleteData: boolean): Promise<boolean> {
    const d = this.get(infohash);
    if (!d || d.active) return false;
    this.all.delete(d.infohash);
    const { log } = this.init;
    if (d.state === 'failed' || deleteData) {
      // A failed download has nothing to share; a deleted file nothing to share from.
      await this.init.announcer.stop(d.infohash);
      await this.init.torrents.drop(d.infohash);
    }
    if (deleteData) {
      if (d.state === 'failed') await d.part?.discard();
      const file = d.path;
      if (file) {
        // A multi-file download is a folder of our own making: it goes whole.
        await fsp.rm(file, { force: true, recursive: d.metainfo.multiFile });
        await this.init.unshare(file);
      }
      log.info({ file: d.metainfo.name, path: file }, 'download removed and its file deleted');
    } else log.info({ file: d.metainfo.name }, 'download removed from the list');
    this.emit('download-removed', d.infohash);
    return true;
  }

  /** What the bootstrap server shows of our downloads. */
  progress(): Array<{ infohash: string; name: string; progress: number }> {
    return this.list()
      // A private torrent is never in the bootstrap index (BEP 27).
      .filter((d) => d.state === 'downloading' && !d.metainfo.private)
      .map((d) => {
        const i = d.torrent.info();
        return { infohash: i.infohash, name: i.name, progress: i.pieces > 0 ? i.verified / i.pieces : 0 };
      });
  }

  // ---- internals ------------------------------------------------------------------------

  private async open(m: Metainfo, peers: Endpoint[], extraTrackers: string[], paused: boolean, select: boolean[] | null): Promise<void> {
    const { log } = this.init;
    const { downloadDir, resumeDir, hasher } = this.init;
    const { part, resumed } = await PartFile.open({ metainfo: m, downloadDir, resumeDir, hasher, logger: log, signal: this.halt.signal, select, memory: this.init.torrents.memory });
    // A resumed download keeps the selection it had, unless another is asked for now.
    if (select && JSON.stringify(part.selection()) !== JSON.stringify(checkSelection(m, select))) await part.select(select);
    if (resumed > 0) log.info({ file: m.name, verified: resumed, of: m.pieceCount }, 'resuming from verified pieces on disk');
    const torrent = this.init.torrents.open(m, part, paused);
    // A private torrent is announced to its own trackers only (BEP 27).
    const trackerUrls = m.private ? m.announce : [...new Set([...m.announce, ...extraTrackers, ...this.init.trackers])];
    const d = new Download({ torrent, part, state: paused ? 'paused' : 'downloading', trackerUrls });
    this.all.set(d.infohash, d);
    torrent.on('piece', () => {
      this.progressed(d);
      d.poke();
    });
    torrent.on('complete', () => void this.finish(d));
    torrent.on('error', (err) => this.fail(d, err));
    torrent.on('disk-full', (err) => this.outOfSpace(d, err));
    this.stateChanged(d);
    // A crash right before the rename leaves every wanted piece verified: finish it now.
    if (part.done()) void this.finish(d);
    // A paused torrent keeps these as candidates and dials none until resumed.
    torrent.addPeers([...peers, ...this.known(m)]);
    if (!paused) this.announce(d);
    const { files, selectedFiles } = d.info();
    log.info({ file: m.name, infohash: m.infoHashHex, size: m.length, paused, ...(m.multiFile && { files, selected: selectedFiles }) }, 'download started');
  }

  /** Every piece is verified: the .part becomes the file, the torrent seeds from it, the library shares it. */
  private async finish(d: Download): Promise<void> {
    const { log } = this.init;
    let finalPath: string;
    try {
      const selection = d.part!.selection();
      await this.init.finishing?.(d.metainfo, d.part!.partPath);
      finalPath = await d.part!.finish();
      d.torrent.seedFrom(await this.init.torrents.seedStore(finalPath, d.metainfo, selection));
    } catch (err) {
      log.error({ torrent: d.metainfo.name, err: (err as Error).message }, 'could not finish a complete download');
      return this.fail(d, err as Error);
    }
    if (!d.finished(finalPath)) return;
    log.info({ file: d.metainfo.name, path: finalPath }, 'download complete and verified');
    this.init.announcer.complete(d.infohash);
    void this.mark(d.infohash, false).catch(() => {});
    this.init.adopt(finalPath, d.metainfo, d.selection() === null).catch((err: Error) => {
      if (!this.init.stopping()) log.warn({ path: finalPath, err: err.message }, 'could not add the finished file to the library');
    });
    this.stateChanged(d);
    this.emit('done', d.info());
  }

  /**
   * A verified piece could not be written: the disk is full. The download pauses (its torrent
   * did already), keeping every verified piece, says why, and goes on by itself once there is
   * room again (or when resumed by hand). Not remembered as a pause: a restart tries again.
   */
  private outOfSpace(d: Download, err: Error): void {
    const code = diskFullCode(err) ?? 'ENOSPC';
    const why = `the disk is full (${code}) in ${this.init.downloadDir}: paused, every verified piece kept; it goes on by itself once there is room`;
    if (!d.pausedForSpace(why)) return;
    this.init.log.error({ file: d.metainfo.name, err: err.message, verified: d.torrent.info().verified, of: d.metainfo.pieceCount }, 'the disk is full: download paused until there is room');
    void this.init.announcer.stop(d.infohash);
    void d.part?.saveNow();
    this.stateChanged(d);
    this.spaceTimer ??= setInterval(() => void this.checkSpace(), SPACE_CHECK_MS);
    this.spaceTimer.unref();
  }

  /** Downloads waiting for room go on, in turn, while the free space holds a few of their pieces. */
  private async checkSpace(): Promise<void> {
    const waiting = this.list().filter((d) => d.waitingForSpace);
    if (waiting.length === 0 || this.halt.signal.aborted) {
      if (this.spaceTimer) clearInterval(this.spaceTimer);
      this.spaceTimer = null;
      return;
    }
    const st = await fsp.statfs(this.init.downloadDir).catch(() => null);
    if (!st) return;
    let free = st.bavail * st.bsize;
    for (const d of waiting) {
      const need = Math.min(d.bytesLeft(), ROOM_PIECES * d.metainfo.pieceLength) + ROOM_MARGIN;
      if (free < need || !d.waitingForSpace) continue;
      free -= need;
      this.init.log.info({ file: d.metainfo.name, free: st.bavail * st.bsize }, 'there is room on the disk again: the download goes on');
      await this.resume(d.infohash);
    }
  }

  private fail(d: Download, err: Error): void {
    if (!d.failed(err)) return;
    this.stateChanged(d);
    if (this.listenerCount('error') > 0) this.emit('error', err, d.infohash);
  }

  private announce(d: Download): void {
    this.init.announcer.start(d.metainfo, d.trackerUrls, () => {
      const s = d.torrent.info();
      return { uploaded: s.uploaded, downloaded: s.downloaded, left: d.bytesLeft() };
    }, (p) => d.torrent.addPeers([p]));
  }

  /**
   * The node's known peers a download dials: none for a private torrent, whose peers come
   * from its own trackers only (BEP 27), so no other node hears its infohash from us.
   */
  private known(m: Metainfo): Endpoint[] {
    return m.private ? [] : this.init.knownPeers();
  }

  private progressed(d: Download): void {
    if (this.progressEvents.take(d.infohash)) this.emit('progress', d.info());
  }

  private stateChanged(d: Download): void {
    d.poke();
    this.emit('download-state', d.info());
  }

  private marker(infohash: string): string {
    return path.join(this.init.resumeDir, `${infohash}.paused`);
  }

  /** Remember across restarts that a download is paused, or forget it. */
  private async mark(infohash: string, paused: boolean): Promise<void> {
    const file = this.marker(infohash);
    if (!paused) return fsp.rm(file, { force: true });
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, `${Date.now()}\n`);
  }
}
