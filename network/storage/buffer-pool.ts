/**
 * Piece buffers backed by SharedArrayBuffers, reused: a piece is copied once, from the
 * socket into its buffer; the hash worker reads it there without a copy and fs.write
 * writes it from there. Reuse keeps RSS flat however large the file is: a dropped
 * SharedArrayBuffer is freed only after both isolates (ours and the hash worker's, which
 * rarely collects) let go of it, so churning them would grow RSS without bound.
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
    return this.free.pop() ?? Buffer.from(new SharedArrayBuffer(this.size));
  }

  release(b: Buffer): void {
    this.inUse--;
    this.free.push(b);
  }

  get buffersInUse(): number {
    return this.inUse;
  }
}
