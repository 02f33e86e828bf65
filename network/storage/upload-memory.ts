/**
 * The memory this node spends serving pieces, under one budget: whole pieces read and kept
 * for the next requests (one LRU for every torrent), pieces being read, pieces evicted from
 * that LRU that a socket still has to write, blocks copied or read alone for a socket, and
 * spare buffers kept for reuse. `used` is all of it, byte for byte what the uploads hold.
 *
 * A peer that asks for one block of many pieces and never reads its socket used to keep a
 * whole piece alive behind every queued 16 KiB view. Here nothing is allocated beyond the
 * budget: a read or copy that does not fit waits (`whenFree`) until sockets have written
 * what they hold, and idle pieces in the LRU give way first. Each peer also has its own
 * share (`peerLimit`), which its upload pump keeps to (swarm/uploads.ts).
 */

/** Bytes of uploads' memory per node, by default. */
export const DEFAULT_UPLOAD_MEMORY = 64 * 1024 * 1024;
/** Bytes one peer's socket may hold alive (pieces it has views of, copies), by default. */
export const DEFAULT_PEER_UPLOAD_MEMORY = 4 * 1024 * 1024;
/** Spare piece buffers are kept up to this share of the budget. */
const SPARE_SHARE = 8;
/**
 * While memory is short (an upload waits for it, or did within PRESSURE_WINDOW_MS), a socket that has
 * held memory this long without taking any of it is closed, so that what it pins goes to peers
 * that read; without that pressure such a socket is closed only after the swarm's sendStallMs.
 */
export const PRESSURE_STALL_MS = 3000;
const PRESSURE_WINDOW_MS = 1000;

/** A peer's socket that holds upload memory; the node may close it to give that memory to others. */
export interface MemoryHolder {
  /** How long it has held memory without its socket taking any of it (ms); 0 when it holds nothing. */
  stalledFor(now: number): number;
  /** Close it, saying why: what it holds comes back once its socket is gone. */
  evict(why: string): void;
}

/** A piece in memory. Blocks handed to a socket pin it until the socket has written them. */
export interface CachedPiece {
  readonly index: number;
  readonly buf: Buffer;
  refs: number;
  /** Out of the LRU: nobody finds it any more; its buffer goes once the last pin does. */
  evicted: boolean;
  /** The reader's own index of its cached pieces, which eviction updates. */
  readonly home: Map<number, CachedPiece>;
}

export interface UploadMemoryStats {
  /** Bytes held now: cached, being read, pinned by sockets, copies, spare buffers. */
  used: number;
  /** The most ever held at once. */
  peak: number;
  /** Of `used`: whole pieces in the LRU. */
  cached: number;
  /** Of `used`: what only sockets keep alive (evicted pieces still pinned, copies and block reads). */
  pinned: number;
  limit: number;
  peerLimit: number;
  /** Blocks sent as copies (a view would have kept a whole piece alive for them). */
  copies: number;
  /** Times an upload waited for memory. */
  waits: number;
  /** Sockets closed because they held memory others waited for and read none of it. */
  evicted: number;
}

export class UploadMemory {
  private readonly lru = new Set<CachedPiece>();
  private readonly spare = new Map<number, Buffer[]>();
  private readonly waiters: Array<() => void> = [];
  private usedBytes = 0;
  private cachedBytes = 0;
  private spareBytes = 0;
  private peakBytes = 0;
  /** Loading bytes are in `used` only; pinned = used - cached - spare - loading. */
  private loadingBytes = 0;
  private copyCount = 0;
  private waitCount = 0;
  private evictCount = 0;
  /** Sockets holding memory now, and when an upload last had to wait for memory. */
  private readonly holders = new Set<MemoryHolder>();
  private lastWaitAt = 0;
  private waking = false;

  constructor(
    readonly limit = DEFAULT_UPLOAD_MEMORY,
    readonly peerLimit = DEFAULT_PEER_UPLOAD_MEMORY,
  ) {
    if (!(limit > 0) || !(peerLimit > 0)) throw new RangeError('upload memory limits must be positive');
  }

  get stats(): UploadMemoryStats {
    return {
      used: this.usedBytes,
      peak: this.peakBytes,
      cached: this.cachedBytes,
      pinned: this.usedBytes - this.cachedBytes - this.spareBytes - this.loadingBytes,
      limit: this.limit,
      peerLimit: this.peerLimit,
      copies: this.copyCount,
      waits: this.waitCount,
      evicted: this.evictCount,
    };
  }

  /**
   * Take `bytes` if they fit (idle cached pieces and spare buffers give way); false if not.
   * A piece larger than the whole budget is still taken when nothing else is held.
   */
  reserve(bytes: number): boolean {
    if (!this.makeRoom(bytes) && this.usedBytes > 0) return false;
    this.usedBytes += bytes;
    this.peakBytes = Math.max(this.peakBytes, this.usedBytes);
    return true;
  }

  /** Give back what `reserve` took. */
  release(bytes: number): void {
    this.usedBytes -= bytes;
    this.wake();
  }

  /** A block copied out of a piece for a socket (its bytes were reserved). */
  copied(): void {
    this.copyCount++;
  }

  /** Run `fn` once memory is given back (at once if `used` is 0, which cannot change by waiting). */
  whenFree(fn: () => void): void {
    this.waitCount++;
    this.lastWaitAt = Date.now();
    if (this.usedBytes === 0) return void queueMicrotask(fn);
    this.waiters.push(fn);
  }

  /** Memory is short: an upload waits for it now, or did within PRESSURE_WINDOW_MS. */
  short(now = Date.now()): boolean {
    return this.waiters.length > 0 || now - this.lastWaitAt <= PRESSURE_WINDOW_MS;
  }

  /** A socket holds memory now (or no more). */
  holding(h: MemoryHolder, holds: boolean): void {
    if (holds) this.holders.add(h);
    else this.holders.delete(h);
  }

  /**
   * Memory is short (an upload waits for it, or did within the last second): close every socket that has held
   * memory for PRESSURE_STALL_MS without taking any of it. Called about once a second; returns
   * how many were closed.
   */
  relieve(now = Date.now()): number {
    if (!this.short(now)) return 0;
    let closed = 0;
    for (const h of [...this.holders]) {
      const ms = h.stalledFor(now);
      if (ms < PRESSURE_STALL_MS) continue;
      this.holders.delete(h);
      this.evictCount++;
      closed++;
      h.evict(`it read none of what we sent for ${(ms / 1000).toFixed(1)} s while other peers wait for upload memory`);
    }
    return closed;
  }

  // ---- whole pieces (used by PieceReader) -------------------------------------------------

  /**
   * A buffer of `capacity` bytes for a piece being read, counted from now; null when it does
   * not fit. Buffers are reused (a spare one, else the least recently used idle piece's), so a
   * long upload makes no garbage once the budget is reached.
   */
  allocPiece(capacity: number): Buffer | null {
    let buf = this.spare.get(capacity)?.pop();
    if (buf) this.spareBytes -= capacity;
    else if (this.usedBytes + capacity > this.limit) buf = this.takeIdle(capacity);
    if (!buf) {
      if (!this.reserve(capacity)) return null;
      // allocUnsafeSlow: a buffer that owns its ArrayBuffer, so it can be lent to a hash worker.
      buf = Buffer.allocUnsafeSlow(capacity);
    }
    this.loadingBytes += capacity;
    return buf;
  }

  /** The buffer of the least recently used idle piece of this capacity, taken out of the LRU (its bytes stay counted). */
  private takeIdle(capacity: number): Buffer | undefined {
    for (const p of this.lru) {
      if (p.refs > 0 || p.buf.buffer.byteLength !== capacity) continue;
      this.lru.delete(p);
      p.evicted = true;
      if (p.home.get(p.index) === p) p.home.delete(p.index);
      this.cachedBytes -= capacity;
      return Buffer.from(p.buf.buffer, 0, capacity);
    }
    return undefined;
  }

  /** A piece buffer of `capacity` bytes whose read failed or was refused (or was lost with a hash worker): a spare now, or freed. */
  discardPiece(buf: Buffer, capacity: number): void {
    this.loadingBytes -= capacity;
    this.recycle(buf, capacity);
  }

  /** A piece was read: it joins the LRU (most recently used). */
  add(p: CachedPiece): void {
    const capacity = p.buf.buffer.byteLength;
    this.loadingBytes -= capacity;
    this.cachedBytes += capacity;
    this.lru.add(p);
    p.home.set(p.index, p);
  }

  /** Used again: to the end of the LRU. */
  touch(p: CachedPiece): void {
    if (!this.lru.delete(p)) return;
    this.lru.add(p);
  }

  /** Out of the LRU now (its reader closed, or its bytes are suspect); its memory goes once unpinned. */
  evict(p: CachedPiece): void {
    if (!this.lru.delete(p)) return;
    p.evicted = true;
    if (p.home.get(p.index) === p) p.home.delete(p.index);
    this.cachedBytes -= p.buf.buffer.byteLength;
    if (p.refs === 0) this.recycle(p.buf, p.buf.buffer.byteLength);
  }

  pin(p: CachedPiece): void {
    p.refs++;
  }

  unpin(p: CachedPiece): void {
    if (--p.refs > 0) return;
    // Evicted: its memory is given back. Still cached: it can give way now, which may be what a waiter needs.
    if (p.evicted) this.recycle(p.buf, p.buf.buffer.byteLength);
    else this.wake();
  }

  /** Room for `bytes` more: evict idle pieces (least recently used first), then drop spare buffers. */
  private makeRoom(bytes: number): boolean {
    const fits = () => this.usedBytes + bytes <= this.limit;
    if (fits()) return true;
    this.dropSpare();
    for (const p of this.lru) {
      if (fits()) return true;
      if (p.refs > 0) continue;
      this.evict(p);
      this.dropSpare();
    }
    return fits();
  }

  private dropSpare(): void {
    if (this.spareBytes === 0) return;
    for (const list of this.spare.values()) list.length = 0;
    this.usedBytes -= this.spareBytes;
    this.spareBytes = 0;
  }

  /** Keep a buffer nobody reads any more for the next piece, within SPARE_SHARE of the budget; else free it. */
  private recycle(buf: Buffer, capacity: number): void {
    // A buffer lost with a crashed hash worker is detached: only its bytes are given back.
    const whole = buf.buffer.byteLength === capacity ? Buffer.from(buf.buffer, 0, capacity) : null;
    if (whole && this.spareBytes + capacity <= this.limit / SPARE_SHARE) {
      let list = this.spare.get(capacity);
      if (!list) this.spare.set(capacity, (list = []));
      list.push(whole);
      this.spareBytes += capacity;
    } else {
      this.usedBytes -= capacity;
    }
    this.wake();
  }

  /** Waiters try again once per turn of the event loop, however many releases that turn made. */
  private wake(): void {
    if (this.waking || this.waiters.length === 0) return;
    this.waking = true;
    setImmediate(() => {
      this.waking = false;
      for (const fn of this.waiters.splice(0)) fn();
    });
  }
}
