import { promises as fsp, type promises } from 'node:fs';
import { pieceHash, pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import { ClosedError } from '../util/errors.js';
import { UploadMemory, type CachedPiece } from './upload-memory.js';

export type { CachedPiece } from './upload-memory.js';

/** Bytes of whole pieces a reader made without a node's UploadMemory keeps (tests, tools). */
export const DEFAULT_READ_CACHE_BYTES = 16 * 1024 * 1024;
/** Piece reads in flight at once per file. */
export const MAX_LOADS = 8;
/** A piece a peer's behaviour made suspect is read and hashed again at most this often. */
export const SUSPECT_COOLDOWN_MS = 60_000;

/** Where a reader's bytes come from: a FileHandle, or a file leased from the node's OpenFiles. */
export interface PieceSource {
  read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /**
   * Asked after every read of torrent bytes `position` .. `position + length`: may they be
   * served as they are, their file(s) being as they were when the pieces were hashed? When not,
   * the piece is hashed before it is served. Absent: always yes.
   */
  unchanged?(position: number, length: number): Promise<boolean>;
}

/** Hashes a piece off the event loop (the node's HashPool): `buf` is lent and given back. */
export interface PieceHasher {
  lend(buf: Buffer, size: number): Promise<{ digest: Buffer; buf: Buffer }>;
}

/** A piece that is not served: it failed its hash, or the file no longer holds it. The peer hears a reject; its connection stays. */
export class PieceRefusedError extends Error {
  override name = 'PieceRefusedError';
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
  }
}

export interface PieceReaderOptions {
  /** The node's upload memory (shared LRU and budget); a private one of DEFAULT_READ_CACHE_BYTES otherwise. */
  memory?: UploadMemory;
  /** Verifies pieces read from a changed file (see PieceSource.unchanged); without it they are trusted. */
  hasher?: PieceHasher;
  /** A piece failed its hash, or could not be read whole: the file changed. Told once per piece. */
  refused?(index: number, why: string): void;
  /** Counters shared by the node's readers. */
  counters?: ReadCounters;
}

/** What readers did that the node's status shows. */
export interface ReadCounters {
  /** Pieces hashed before serving them (their file changed, or a peer's behaviour made them suspect). */
  verified: number;
  /** Pieces refused: they failed their hash, or the file shrank under them. */
  refused: number;
  /** Blocks read alone for a peer that wanted too little of their piece to read it whole. */
  blockReads: number;
}

export function newReadCounters(): ReadCounters {
  return { verified: 0, refused: 0, blockReads: 0 };
}

/**
 * Serves blocks of one torrent (one file, or a folder's files through a FileSet) by reading
 * whole pieces and slicing them: peers ask for 16 KiB at a time, mostly in order, so one
 * 512 KiB read answers 32 requests. Pieces live in
 * the node's UploadMemory (one LRU and one budget for every torrent); concurrent asks for one
 * piece share a single read; buffers are reused once no socket holds a view of them. A block
 * can also be read alone (`block`), for a peer that wants too little of a piece to read it all.
 *
 * Before a piece is served, the source says whether the file is as it was hashed; if not, the
 * piece is hashed (in a hash worker) and refused when it does not match, so a file changed
 * under a seed never sends a byte that fails its hash. A piece that failed stays refused.
 */
export class PieceReader {
  private readonly home = new Map<number, CachedPiece>();
  private readonly inflight = new Map<number, Promise<CachedPiece | null>>();
  private readonly memory: UploadMemory;
  /** Pieces to hash at their next read whatever the source says (a peer's behaviour made them suspect). */
  private readonly suspects = new Set<number>();
  private readonly lastSuspected = new Map<number, number>();
  private readonly bad = new Map<number, string>();
  private readonly counters: ReadCounters;
  private closed = false;

  constructor(
    private readonly source: PieceSource,
    private readonly m: Metainfo,
    private readonly opts: PieceReaderOptions | number = {},
  ) {
    const o = typeof opts === 'number' ? {} : opts;
    this.memory = o.memory ?? new UploadMemory(Math.max(4 * m.pieceLength, typeof opts === 'number' ? opts : DEFAULT_READ_CACHE_BYTES));
    this.counters = o.counters ?? newReadCounters();
  }

  private get options(): PieceReaderOptions {
    return typeof this.opts === 'number' ? {} : this.opts;
  }

  /** The piece if it is in memory now (no I/O). */
  cached(index: number): CachedPiece | undefined {
    const hit = this.home.get(index);
    if (hit) this.memory.touch(hit);
    return hit;
  }

  /** A read of this piece is under way. */
  loading(index: number): boolean {
    return this.inflight.has(index);
  }

  /** Why this piece is refused, or null. */
  refusal(index: number): string | null {
    return this.bad.get(index) ?? null;
  }

  /** Start reading a piece soon to be asked for, if there is room (none while uploads wait for memory: reads asked for go first). */
  prefetch(index: number): void {
    if (this.memory.short()) return;
    if (this.home.has(index) || this.inflight.has(index) || this.inflight.size >= MAX_LOADS || this.bad.has(index)) return;
    this.load(index).catch(() => {});
  }

  /**
   * The whole piece, from memory or read now; null when the upload memory has no room (wait
   * with `whenFree`). Rejects with PieceRefusedError for a piece that is not served.
   */
  async piece(index: number): Promise<CachedPiece | null> {
    return this.cached(index) ?? this.load(index);
  }

  /**
   * One block read alone into a buffer of its own, its bytes reserved in the upload memory
   * (the caller releases them once the socket has written it); null when there is no room.
   * A piece that must be verified first is read whole instead, and the block copied out.
   */
  async block(index: number, begin: number, length: number): Promise<Buffer | null> {
    this.check(index);
    if (this.suspects.has(index)) return this.blockOfPiece(index, begin, length);
    if (!this.memory.reserve(length)) return null;
    const buf = Buffer.allocUnsafe(length);
    try {
      await this.readFully(buf, length, index * this.m.pieceLength + begin, index);
      if (this.source.unchanged && !(await this.source.unchanged(index * this.m.pieceLength + begin, length))) {
        // The file changed: only a whole piece can be checked against its hash.
        this.memory.release(length);
        return this.blockOfPiece(index, begin, length);
      }
    } catch (err) {
      this.memory.release(length);
      throw err;
    }
    this.counters.blockReads++;
    return buf;
  }

  pin(p: CachedPiece): void {
    this.memory.pin(p);
  }

  unpin(p: CachedPiece): void {
    this.memory.unpin(p);
  }

  /**
   * A peer's behaviour suggests this piece was bad (it asked again for a block it already had,
   * as a downloader does after a failed hash): hash it at its next read. At most once per
   * SUSPECT_COOLDOWN_MS per piece; true when it took effect.
   */
  suspect(index: number, now = Date.now()): boolean {
    const last = this.lastSuspected.get(index);
    if (last !== undefined && now - last < SUSPECT_COOLDOWN_MS) return false;
    if (this.lastSuspected.size >= 4096) for (const [i, t] of this.lastSuspected) if (now - t >= SUSPECT_COOLDOWN_MS) this.lastSuspected.delete(i);
    this.lastSuspected.set(index, now);
    this.suspects.add(index);
    const p = this.home.get(index);
    if (p) this.memory.evict(p);
    return true;
  }

  /** The file was hashed again and still makes this torrent: pieces refused before may be served again. */
  forgive(): void {
    this.bad.clear();
  }

  /** Nothing more is read; cached pieces leave the LRU (the ones still pinned go once written). */
  close(): void {
    this.closed = true;
    for (const p of [...this.home.values()]) this.memory.evict(p);
  }

  private check(index: number): void {
    if (this.closed) throw new ClosedError('piece reader closed');
    const why = this.bad.get(index);
    if (why !== undefined) throw new PieceRefusedError(index, why);
  }

  private async blockOfPiece(index: number, begin: number, length: number): Promise<Buffer | null> {
    const p = await this.piece(index);
    if (!p) return null;
    if (!this.memory.reserve(length)) return null;
    return Buffer.from(p.buf.subarray(begin, begin + length));
  }

  private load(index: number): Promise<CachedPiece | null> {
    try {
      this.check(index);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    let p = this.inflight.get(index);
    if (p) return p;
    p = this.read(index).finally(() => this.inflight.delete(index));
    this.inflight.set(index, p);
    return p;
  }

  private async read(index: number): Promise<CachedPiece | null> {
    const size = pieceSize(this.m, index);
    const capacity = this.m.pieceLength;
    let whole = this.memory.allocPiece(capacity);
    if (!whole) return null;
    try {
      await this.readFully(whole, size, index * this.m.pieceLength, index);
      const mustHash = this.suspects.has(index) || (this.source.unchanged !== undefined && !(await this.source.unchanged(index * this.m.pieceLength, size)));
      if (mustHash) {
        const { digest, buf } = await this.hash(index, whole, size);
        whole = buf;
        if (!digest.equals(pieceHash(this.m, index))) this.refuse(index, `piece ${index} no longer matches its hash: the file changed since it was hashed`);
      }
      if (this.closed) throw new ClosedError('piece reader closed');
    } catch (err) {
      this.memory.discardPiece(whole, capacity);
      throw err;
    }
    const entry: CachedPiece = { index, buf: whole.subarray(0, size), refs: 0, evicted: false, home: this.home };
    this.memory.add(entry);
    return entry;
  }

  /** Hash a piece just read in a hash worker; the buffer comes back with the digest. */
  private async hash(index: number, buf: Buffer, size: number): Promise<{ digest: Buffer; buf: Buffer }> {
    const hasher = this.options.hasher;
    if (!hasher) throw new PieceRefusedError(index, `piece ${index} cannot be checked: its file changed since it was hashed`);
    const out = await hasher.lend(buf, size);
    this.counters.verified++;
    this.suspects.delete(index);
    return out;
  }

  private async readFully(buf: Buffer, size: number, position: number, index: number): Promise<void> {
    let done = 0;
    while (done < size) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await this.source.read(buf, done, size - done, position + done));
      } catch (err) {
        const code = goneCode(err);
        if (code) this.refuse(index, `piece ${index} could not be read: the file is gone (${code})`);
        throw err;
      }
      if (bytesRead === 0) this.refuse(index, `piece ${index} could not be read whole: the file shrank`);
      done += bytesRead;
    }
  }

  private refuse(index: number, why: string): never {
    if (!this.bad.has(index)) {
      this.bad.set(index, why);
      this.counters.refused++;
      this.options.refused?.(index, why);
    }
    throw new PieceRefusedError(index, why);
  }
}

/**
 * Errors that say a file is no longer the regular file that was shared (deleted, a symlink
 * or a folder or FIFO put in its place, a parent folder replaced): not a local failure, a
 * change. Returns the error's code, or null for any other error.
 */
const GONE = new Set(['ENOENT', 'ENOTDIR', 'ELOOP', 'EISDIR', 'EAGAIN', 'ENXIO']);
export function goneCode(err: unknown): string | null {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code && GONE.has(code) ? code : null;
}

export async function openForRead(file: string): Promise<promises.FileHandle> {
  return fsp.open(file, 'r');
}
