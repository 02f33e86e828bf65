/**
 * Piece buffers, reused. A piece is copied once, from the socket into its buffer (a plain
 * memcpy: these are ordinary ArrayBuffers, not shared memory, whose copies V8 makes slow);
 * the buffer is lent to the hash worker and comes back, is written to disk, and returns
 * here. Reuse keeps RSS flat however large the file is and spares the GC.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private inUse = 0;

  /** Every buffer ever made is kept for reuse, so a download makes at most `limit` of them. */
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {}

  /** A buffer, or null when `limit` are in use. */
  acquire(): Buffer | null {
    if (this.inUse >= this.limit) return null;
    this.inUse++;
    // allocUnsafeSlow: a buffer that owns its ArrayBuffer, so it can be transferred.
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  /** Give a buffer back; a detached one (lost with a crashed hash worker) is dropped. */
  release(b: Buffer): void {
    this.inUse--;
    if (b.buffer.byteLength === this.size) this.free.push(b);
  }

  get buffersInUse(): number {
    return this.inUse;
  }
}
