/**
 * Piece buffers backed by SharedArrayBuffers, reused: a hash worker reads them without a
 * copy and fs.write takes them directly, so a verified piece is copied exactly once (from
 * the socket into its buffer). Reuse keeps RSS flat however large the file is.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private inUse = 0;

  constructor(
    readonly size: number,
    private readonly maxFree = 16,
  ) {}

  acquire(): Buffer {
    this.inUse++;
    return this.free.pop() ?? Buffer.from(new SharedArrayBuffer(this.size));
  }

  release(b: Buffer): void {
    this.inUse--;
    if (this.free.length < this.maxFree) this.free.push(b);
  }

  get buffersInUse(): number {
    return this.inUse;
  }
}
