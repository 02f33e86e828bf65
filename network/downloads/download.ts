import type { Metainfo } from '../metainfo/metainfo.js';
import { Bitfield } from '../wire/bitfield.js';
import type { PartFile } from '../storage/part-file.js';
import type { Torrent, TorrentStats } from '../swarm/torrent.js';
import type { VerifiedSource } from './content.js';
import { fileView, onDisk } from './content-sources.js';

/** Where a download stands, as callers see it. A cancelled download is gone from every list. */
export type DownloadState = 'downloading' | 'paused' | 'done' | 'failed';
type State = DownloadState | 'cancelled';

/**
 * The one state machine of a download. `done`, `failed` and `cancelled` are final; a paused
 * download can still finish (every piece was verified before a crash) or fail (its file
 * cannot be finished).
 */
const NEXT: Record<State, readonly State[]> = {
  downloading: ['paused', 'done', 'failed', 'cancelled'],
  paused: ['downloading', 'done', 'failed', 'cancelled'],
  done: [],
  failed: [],
  cancelled: [],
};

export interface DownloadInfo extends TorrentStats {
  state: DownloadState;
  /** When this download started (ms since the epoch; this run's start for a resumed one). */
  startedAt: number;
  /** Seconds left at the current rate; null when paused, stalled, done or failed. */
  eta: number | null;
  path?: string;
  error?: string;
  /** The torrent is a folder (its content is read one file at a time); its files (padding left out), and how many are downloaded. */
  multiFile: boolean;
  files: number;
  selectedFiles: number;
}

export interface DownloadInit {
  torrent: Torrent;
  /** Its .part (null when the file was shared here already). */
  part: PartFile | null;
  state: DownloadState;
  /** Trackers to announce to (again after a resume). */
  trackerUrls: string[];
  /** The finished file, for a download that is done from the start. */
  path?: string;
}

/**
 * One download: its torrent and .part, where it stands, and the readers waiting for its
 * pieces. Only `to()` changes its state, and only along NEXT; its final path is recorded
 * once, here, when the file is in place.
 */
export class Download {
  readonly torrent: Torrent;
  readonly part: PartFile | null;
  readonly metainfo: Metainfo;
  readonly trackerUrls: string[];
  readonly startedAt = Date.now();
  /** Resolves with the final path once the file is complete and verified; rejects when it fails or is cancelled. */
  readonly done: Promise<string>;
  private current: State;
  private finalPath: string | undefined;
  private failure: string | undefined;
  /** Paused by itself because the disk is full (why, for the user), not by a user: it goes on once there is room. */
  private noSpace: string | undefined;
  private settle!: { resolve(path: string): void; reject(err: Error): void };
  /** Readers waiting for a piece: told of every verified piece and change of state. */
  private readonly waiters = new Set<() => void>();

  constructor(init: DownloadInit) {
    this.torrent = init.torrent;
    this.part = init.part;
    this.metainfo = init.torrent.metainfo;
    this.trackerUrls = init.trackerUrls;
    this.current = init.state;
    this.finalPath = init.path;
    this.done = new Promise<string>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => {});
    if (init.state === 'done' && init.path) this.settle.resolve(init.path);
  }

  get infohash(): string {
    return this.metainfo.infoHashHex;
  }

  get state(): State {
    return this.current;
  }

  /** Still to finish: downloading or paused. */
  get active(): boolean {
    return this.current === 'downloading' || this.current === 'paused';
  }

  get path(): string | undefined {
    return this.finalPath;
  }

  get have(): Bitfield {
    return this.torrent.have;
  }

  /** Move to `next` if the machine allows it from here; false (and no change) if not. */
  to(next: State): boolean {
    if (!NEXT[this.current].includes(next)) return false;
    this.current = next;
    this.noSpace = undefined;
    this.poke();
    return true;
  }

  /** Paused for want of space (`why` says so to the user); false when it was not running. */
  pausedForSpace(why: string): boolean {
    if (!this.to('paused')) return false;
    this.noSpace = why;
    return true;
  }

  /** Paused because the disk is full, waiting for room (a user's pause or resume ends that). */
  get waitingForSpace(): boolean {
    return this.noSpace !== undefined;
  }

  /** A user paused it while it waited for room: it waits for the user now. */
  keepPaused(): void {
    this.noSpace = undefined;
  }

  /** The file is in place at `path`: done. */
  finished(path: string): boolean {
    if (!this.to('done')) return false;
    this.finalPath = path;
    this.settle.resolve(path);
    return true;
  }

  failed(err: Error): boolean {
    if (!this.to('failed')) return false;
    this.failure = err.message;
    this.settle.reject(err);
    return true;
  }

  cancelled(): boolean {
    if (!this.to('cancelled')) return false;
    this.failure = 'cancelled';
    this.settle.reject(new Error('cancelled'));
    return true;
  }

  info(): DownloadInfo {
    const s = this.torrent.info();
    const state = this.current === 'cancelled' ? 'failed' : this.current;
    const real = this.metainfo.files.filter((f) => !f.pad).length;
    const selection = this.selection();
    const selectedFiles = selection ? selection.filter(Boolean).length : real;
    return { ...s, state, startedAt: this.startedAt, eta: this.eta(s), path: this.finalPath, error: this.failure ?? this.noSpace, multiFile: this.metainfo.multiFile, files: real, selectedFiles };
  }

  /** Which files are (or were) being downloaded, in torrent order; null: every file. */
  selection(): boolean[] | null {
    return this.part?.selection() ?? null;
  }

  /** Bytes of wanted pieces not verified yet (the last piece may be short): what trackers hear as `left`. */
  bytesLeft(): number {
    if (!this.active || !this.part) return 0;
    const { wanted, have } = this.part;
    const m = this.metainfo;
    let left = 0;
    for (const i of wanted.indices()) if (!have.get(i)) left += i === m.pieceCount - 1 ? m.length - i * m.pieceLength : m.pieceLength;
    return left;
  }

  /** Wake the readers waiting on this download (a piece came, or the state changed). */
  poke(): void {
    for (const w of [...this.waiters]) w();
  }

  /** File `file`'s verified pieces as a content reader needs them (a file not selected has none). */
  verifiedSource(file = 0): VerifiedSource {
    const m = this.metainfo;
    const view = fileView(m, file)!;
    const selected = () => this.selection()?.[file] ?? true;
    const none = new Bitfield(m.pieceCount);
    return {
      view,
      have: () => (selected() ? this.have : none),
      paths: () => [this.part?.partPath, this.finalPath].map((root) => root && onDisk(root, m, file)),
      blocked: () => {
        if (this.current === 'cancelled') return 'the download was cancelled';
        if (this.current === 'paused') return 'the download is paused';
        if (this.current === 'failed') return `the download failed${this.failure ? `: ${this.failure}` : ''}`;
        if (!selected()) return 'the file is not selected for download';
        return null;
      },
      prioritize: (i) => this.torrent.prioritize(i),
      watch: (cb) => {
        this.waiters.add(cb);
        return () => this.waiters.delete(cb);
      },
    };
  }

  /** Seconds left at the current rate, or null when no rate makes sense. */
  private eta(s: TorrentStats): number | null {
    if (this.current !== 'downloading' || s.downloadRate < 1) return null;
    return Math.ceil(this.bytesLeft() / s.downloadRate);
  }
}
