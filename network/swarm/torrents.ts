/**
 * Every torrent this node runs, by infohash: downloads (opened by the download manager) and
 * shared files (opened on demand, when a peer's handshake names one). They share the node's
 * peer id, hash workers, limits, upload limiter and totals.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../util/log.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { Hasher } from '../storage/part-file.js';
import { FileChangedError, SeedStore } from '../storage/seed-store.js';
import type { PieceStore, PieceWriter } from '../storage/stores.js';
import { OpenFiles, DEFAULT_OPEN_FILES, type OpenFilesStats } from '../storage/open-files.js';
import { UploadMemory, DEFAULT_UPLOAD_MEMORY, type UploadMemoryStats } from '../storage/upload-memory.js';
import { newReadCounters, type ReadCounters } from '../storage/piece-reader.js';
import type { FileStamp } from '../util/file-stamp.js';
import { Torrent, type SwarmLimits } from './torrent.js';
import type { PeerSession } from './peer-session.js';
import type { PeerTimeouts } from './peer.js';
import { RateLimiter, RateMeter } from './rate.js';
import { PLAIN_TCP, type TransportPolicy } from './dial.js';
import { req2Of } from '../wire/mse.js';

export interface TorrentsInit {
  peerId: Buffer;
  hasher: Hasher;
  limits: SwarmLimits;
  timeouts: PeerTimeouts;
  /** Upload limit in bytes per second for the whole node; 0 = none. */
  maxUploadRate: number;
  log: Logger;
  /** Our listening port. */
  port(): number;
  /** A complete shared file with this infohash, if there is one. */
  shared(infohash: string): { path: string; metainfo: Metainfo } | undefined;
  /** The infohashes of every shared file (`shared` opens any of them on demand). */
  sharedInfoHashes?(): Iterable<string>;
  /** How torrents dial (plain TCP when not given). */
  transport?: TransportPolicy;
  /** The stamp `path` had when it was hashed into the torrent `infohash` (the library's), if it is known. */
  hashedStamp?(path: string, infohash: string): FileStamp | undefined;
  /**
   * A shared file (or a folder's file) changed under the torrent `infohash` that serves it: it
   * must be hashed again. Resolves true once it was, and still makes that torrent.
   */
  changed?(path: string, why: string, infohash: string): Promise<boolean>;
  /** Shared files held open at once (default DEFAULT_OPEN_FILES). */
  openFiles?: number;
  /** Bytes of memory for uploads, node-wide (default DEFAULT_UPLOAD_MEMORY). */
  uploadMemory?: number;
}

/** What serving costs the node now: memory, open files, pieces checked. */
export interface ServingStats {
  memory: UploadMemoryStats;
  files: OpenFilesStats;
  reads: ReadCounters;
}

export interface TorrentsEvents {
  /** A peer of `infohash` has every piece. */
  'peer-complete': [infohash: string, peer: PeerSession];
}

export class Torrents extends EventEmitter<TorrentsEvents> {
  /** Payload bytes and rates of every torrent since the node started, seeding included. */
  readonly totals = { down: new RateMeter(), up: new RateMeter() };
  /** The node's memory for uploads, shared by every torrent (downloads' part files read into it too). */
  readonly memory: UploadMemory;
  private readonly files: OpenFiles;
  private readonly reads = newReadCounters();
  private readonly running = new Map<string, Torrent>();
  /** Shared files being opened for a handshake: concurrent handshakes share one open. */
  private readonly opening = new Map<string, Promise<Torrent | null>>();
  private readonly uploadLimiter: RateLimiter;
  /** HASH('req2', infohash) by infohash: an encrypted handshake names its torrent so. */
  private readonly req2 = new Map<string, Buffer>();

  constructor(private readonly init: TorrentsInit) {
    super();
    this.uploadLimiter = new RateLimiter(init.maxUploadRate);
    this.memory = new UploadMemory(init.uploadMemory ?? DEFAULT_UPLOAD_MEMORY);
    this.files = new OpenFiles(init.openFiles ?? DEFAULT_OPEN_FILES);
  }

  serving(): ServingStats {
    return { memory: this.memory.stats, files: this.files.stats, reads: { ...this.reads } };
  }

  /** The node's upload limit in bytes per second; 0 = none. */
  get maxUploadRate(): number {
    return this.uploadLimiter.rate;
  }

  /** Change the upload limit of every torrent at once, uploads under way included. */
  setMaxUploadRate(bytesPerSecond: number): void {
    this.uploadLimiter.setRate(bytesPerSecond);
  }

  get(infohash: string): Torrent | undefined {
    return this.running.get(infohash);
  }

  list(): Torrent[] {
    return [...this.running.values()];
  }

  /** Start a torrent for `m` on `store` (a PieceWriter for a download). */
  open(m: Metainfo, store: PieceStore | PieceWriter, paused = false): Torrent {
    const t = new Torrent({
      paused,
      totals: this.totals,
      metainfo: m,
      store,
      peerId: this.init.peerId,
      hasher: this.init.hasher,
      logger: this.init.log,
      limits: this.init.limits,
      timeouts: this.init.timeouts,
      uploadLimiter: this.uploadLimiter,
      uploadMemory: this.memory,
      port: () => this.init.port(),
      transport: this.init.transport ?? PLAIN_TCP,
    });
    this.running.set(m.infoHashHex, t);
    t.on('peer-complete', (p) => this.emit('peer-complete', m.infoHashHex, p));
    return t;
  }

  /** A running torrent, or a shared file's opened now (what an incoming handshake asks for); null if we have neither. */
  find(infohash: string): Promise<Torrent | null> {
    const running = this.running.get(infohash);
    if (running) return Promise.resolve(running);
    let p = this.opening.get(infohash);
    if (!p) {
      p = this.openShared(infohash).finally(() => this.opening.delete(infohash));
      this.opening.set(infohash, p);
    }
    return p;
  }

  /**
   * A store that seeds `file` (complete, hashed as `m`; a folder for a multi-file torrent, of
   * which `selected` files are there), reading through the node's open files and upload memory.
   */
  async seedStore(file: string, m: Metainfo, selected: readonly boolean[] | null = null): Promise<SeedStore> {
    const store: SeedStore = await SeedStore.open({
      file,
      metainfo: m,
      selected,
      files: this.files,
      memory: this.memory,
      hasher: this.init.hasher,
      counters: this.reads,
      expected: () => this.init.hashedStamp?.(file, m.infoHashHex),
      changed: (why) => {
        this.init.log.warn({ file, torrent: m.name }, `shared file changed since it was hashed: ${why}; hashing it again`);
        // Hashed again and still this torrent (a change undone, a file touched): what was refused is served again.
        void this.init.changed?.(file, why, m.infoHashHex).then(
          (same) => same && store.forgive(),
          () => {},
        );
      },
    });
    return store;
  }

  private async openShared(infohash: string): Promise<Torrent | null> {
    const file = this.init.shared(infohash);
    if (!file) return null;
    let store: SeedStore;
    try {
      store = await this.seedStore(file.path, file.metainfo);
    } catch (err) {
      if (!(err instanceof FileChangedError)) throw err;
      this.init.log.warn({ file: file.path }, `not serving a shared file that changed: ${err.message}; hashing it again`);
      void this.init.changed?.(file.path, err.message, infohash);
      return null;
    }
    // Started meanwhile by a download of the same infohash: serve that one.
    const raced = this.running.get(infohash);
    if (raced) {
      await store.close();
      return raced;
    }
    return this.open(file.metainfo, store);
  }

  /**
   * The infohash an incoming MSE handshake asks for, by its HASH('req2', infohash), among
   * every torrent we run and every shared file we could open; undefined if none.
   */
  findByReq2(req2: Buffer): Buffer | undefined {
    const match = (hex: string): boolean => {
      let h = this.req2.get(hex);
      if (!h) this.req2.set(hex, (h = req2Of(Buffer.from(hex, 'hex'))));
      return h.equals(req2);
    };
    for (const hex of this.running.keys()) if (match(hex)) return Buffer.from(hex, 'hex');
    for (const hex of this.init.sharedInfoHashes?.() ?? []) if (match(hex)) return Buffer.from(hex, 'hex');
    return undefined;
  }

  /** Forget and stop the torrent of `infohash`. */
  async drop(infohash: string): Promise<void> {
    const t = this.running.get(infohash);
    this.running.delete(infohash);
    await t?.stop();
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.running.values()].map((t) => t.stop()));
    await this.files.closeAll();
  }
}
