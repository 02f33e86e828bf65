/** Milliseconds since the epoch: `Date.now`, or a test's own clock. */
export type Clock = () => number;

/** Bytes per second over the last few seconds, in one-second buckets. */
export class RateMeter {
  private readonly buckets = new Float64Array(5);
  private second: number;
  total = 0;

  constructor(private readonly now: Clock = Date.now) {
    this.second = Math.floor(now() / 1000);
  }

  add(n: number): void {
    this.roll();
    this.buckets[this.second % this.buckets.length]! += n;
    this.total += n;
  }

  /** Average over the completed seconds plus the current one, weighted by elapsed time. */
  rate(): number {
    this.roll();
    const frac = this.now() / 1000 - this.second;
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) sum += this.buckets[i]!;
    return sum / (this.buckets.length - 1 + Math.max(frac, 0.1));
  }

  private roll(): void {
    const s = Math.floor(this.now() / 1000);
    if (s === this.second) return;
    const steps = Math.min(s - this.second, this.buckets.length);
    for (let k = 1; k <= steps; k++) this.buckets[(this.second + k) % this.buckets.length] = 0;
    this.second = s;
  }
}

/**
 * A token bucket shared by every upload of a node. `take` resolves when `n` bytes may
 * be sent; with no limit it resolves at once without a timer. The rate can change while
 * uploads wait (a setting changed at run time): they go on at the new rate, or at once
 * when the limit is lifted.
 *
 * A request larger than a second's worth (a 16 KiB block under a 10 KiB/s limit) goes
 * once the bucket is full, and the bucket goes into debt for the rest: the long-run rate
 * holds, and no request waits forever.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly waiters: Array<{ n: number; resolve: () => void }> = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private bytesPerSecond: number,
    private readonly now: Clock = Date.now,
  ) {
    this.tokens = bytesPerSecond;
    this.last = now();
  }

  get limited(): boolean {
    return this.bytesPerSecond > 0;
  }

  /** Bytes per second; 0 = no limit. */
  get rate(): number {
    return this.bytesPerSecond;
  }

  /** Change the limit now (0 lifts it). What was saved up under the old rate is kept, up to a second of the new. */
  setRate(bytesPerSecond: number): void {
    if (!(bytesPerSecond >= 0)) throw new RangeError(`a rate is a number of bytes per second, got ${bytesPerSecond}`);
    if (this.limited) this.refill();
    else {
      // Nothing was counted while unlimited: start full, as a new limiter would.
      this.tokens = bytesPerSecond;
      this.last = this.now();
    }
    this.bytesPerSecond = bytesPerSecond;
    if (!this.limited) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      for (const w of this.waiters.splice(0)) w.resolve();
      return;
    }
    this.tokens = Math.min(this.tokens, bytesPerSecond);
    if (this.waiters.length > 0) this.schedule();
  }

  take(n: number): Promise<void> | null {
    if (!this.limited) return null;
    this.refill();
    if (this.waiters.length === 0 && this.enough(n)) {
      this.tokens -= n;
      return null;
    }
    return new Promise((resolve) => {
      this.waiters.push({ n, resolve });
      this.schedule();
    });
  }

  /** May `n` bytes go now? A request above the bucket's size goes once it is full. */
  private enough(n: number): boolean {
    return this.tokens >= Math.min(n, this.bytesPerSecond);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.bytesPerSecond, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.limited) return;
      this.refill();
      while (this.waiters.length > 0 && this.enough(this.waiters[0]!.n)) {
        const w = this.waiters.shift()!;
        this.tokens -= w.n;
        w.resolve();
      }
      if (this.waiters.length > 0) this.schedule();
    }, 20);
    this.timer.unref();
  }
}
