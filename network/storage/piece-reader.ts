import { promises as fsp, type promises } from 'node:fs';
import { pieceSize, type Metainfo } from '../metainfo/metainfo.js';

/** Bytes of whole pieces kept for serving, per open file. */
export const DEFAULT_READ_CACHE_BYTES = 8 * 1024 * 1024;

/**
 * Serves blocks of one file by reading whole pieces and slicing them: peers ask for 16 KiB
 * at a time, mostly in order, so one 512 KiB read answers 32 requests. A small LRU of
 * pieces, and concurrent asks for one piece share a single read.
 */
export class PieceReader {
  private readonly cache = new Map<number, Buffer>();
  private readonly inflight = new Map<number, Promise<Buffer>>();
  private readonly capacity: number;

  constructor(
    private readonly fd: promises.FileHandle,
    private readonly m: Metainfo,
    cacheBytes = DEFAULT_READ_CACHE_BYTES,
  ) {
    this.capacity = Math.max(2, Math.floor(cacheBytes / m.pieceLength));
  }

  async block(index: number, begin: number, length: number): Promise<Buffer> {
    const piece = await this.piece(index);
    if (begin + length > piece.length) throw new RangeError('block past the end of its piece');
    return piece.subarray(begin, begin + length);
  }

  async piece(index: number): Promise<Buffer> {
    const hit = this.cache.get(index);
    if (hit) {
      this.cache.delete(index); // re-insert: Map order is our LRU order
      this.cache.set(index, hit);
      return hit;
    }
    let p = this.inflight.get(index);
    if (!p) {
      p = this.load(index);
      this.inflight.set(index, p);
      p.finally(() => this.inflight.delete(index)).catch(() => {});
    }
    return p;
  }

  /** Forget a cached piece (its bytes on disk changed). */
  invalidate(index: number): void {
    this.cache.delete(index);
  }

  private async load(index: number): Promise<Buffer> {
    const size = pieceSize(this.m, index);
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await this.fd.read(buf, done, size - done, index * this.m.pieceLength + done);
      if (bytesRead === 0) throw new Error(`short read at piece ${index}: the file shrank`);
      done += bytesRead;
    }
    this.cache.set(index, buf);
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
    return buf;
  }
}

export async function openForRead(file: string): Promise<promises.FileHandle> {
  return fsp.open(file, 'r');
}
