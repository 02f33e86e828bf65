import { promises as fsp, type promises } from 'node:fs';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';
import type { ByteSource } from './file-set.js';

/** Bytes of whole pieces kept for serving, per open file. */
export const DEFAULT_READ_CACHE_BYTES = 16 * 1024 * 1024;
/** Piece reads in flight at once per file. */
export const MAX_LOADS = 8;

/** A piece in memory. Blocks handed to a socket pin it until the socket has written them. */
export interface CachedPiece {
  readonly index: number;
  readonly buf: Buffer;
  refs: number;
  evicted: boolean;
}

/**
 * Serves blocks of one torrent (one file, or a folder's files: a ByteSource) by reading whole
 * pieces and slicing them: peers ask for 16 KiB at a time, mostly in order, so one 512 KiB
 * read answers 32 requests. A small LRU of
 * pieces; concurrent asks for one piece share a single read; piece buffers are recycled
 * (a 1 GiB upload would otherwise churn a gigabyte of garbage through the GC) once no
 * socket holds a view of them.
 */
export class PieceReader {
  private readonly cache = new Map<number, CachedPiece>();
  private readonly inflight = new Map<number, Promise<CachedPiece>>();
  private readonly free: Buffer[] = [];
  private readonly capacity: number;

  constructor(
    private readonly fd: ByteSource,
    private readonly m: Metainfo,
    cacheBytes = DEFAULT_READ_CACHE_BYTES,
  ) {
    this.capacity = Math.max(4, Math.floor(cacheBytes / m.pieceLength));
  }

  /** The piece if it is in memory now (no I/O). */
  cached(index: number): CachedPiece | undefined {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index); // re-insert: Map order is our LRU order
      this.cache.set(index, hit);
    }
    return hit;
  }

  /** Start reading a piece soon to be asked for, if there is room. */
  prefetch(index: number): void {
    if (this.cache.has(index) || this.inflight.has(index) || this.inflight.size >= MAX_LOADS) return;
    this.load(index).catch(() => {});
  }

  async piece(index: number): Promise<CachedPiece> {
    return this.cached(index) ?? this.load(index);
  }

  pin(p: CachedPiece): void {
    p.refs++;
  }

  unpin(p: CachedPiece): void {
    if (--p.refs === 0 && p.evicted) this.recycle(p.buf);
  }

  private load(index: number): Promise<CachedPiece> {
    let p = this.inflight.get(index);
    if (p) return p;
    p = this.read(index).finally(() => this.inflight.delete(index));
    this.inflight.set(index, p);
    return p;
  }

  private async read(index: number): Promise<CachedPiece> {
    const size = pieceSize(this.m, index);
    const whole = this.free.pop() ?? Buffer.allocUnsafe(this.m.pieceLength);
    const buf = whole.subarray(0, size);
    let done = 0;
    try {
      while (done < size) {
        const { bytesRead } = await this.fd.read(buf, done, size - done, index * this.m.pieceLength + done);
        if (bytesRead === 0) throw new Error(`short read at piece ${index}: the file shrank`);
        done += bytesRead;
      }
    } catch (err) {
      this.recycle(whole);
      throw err;
    }
    const entry: CachedPiece = { index, buf, refs: 0, evicted: false };
    this.cache.set(index, entry);
    while (this.cache.size > this.capacity) {
      const [oldIndex, old] = this.cache.entries().next().value!;
      this.cache.delete(oldIndex);
      old.evicted = true;
      if (old.refs === 0) this.recycle(old.buf);
    }
    return entry;
  }

  private recycle(buf: Buffer): void {
    if (this.free.length < this.capacity) this.free.push(Buffer.from(buf.buffer, buf.byteOffset, this.m.pieceLength));
  }
}

export async function openForRead(file: string): Promise<promises.FileHandle> {
  return fsp.open(file, 'r');
}
