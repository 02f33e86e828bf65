/**
 * Requests per address share (address-bucket.ts), as token buckets: each share may send
 * `burst` requests at once and `perSecond` after that. What the node API costs per request
 * (a signature to check, a body of up to 4 MiB to parse, a search over every name) is
 * bounded per sender this way, so one address cannot starve the others of the server's CPU.
 * At most `maxAddresses` buckets are kept (the least recently used go first: a full bucket
 * is what a forgotten one comes back as, so forgetting costs nobody anything).
 */
export const DEFAULT_REQUESTS_PER_SECOND = 50;
export const DEFAULT_REQUEST_BURST = 500;
const DEFAULT_MAX_ADDRESSES = 100_000;

export interface RateLimitInit {
  perSecond?: number;
  burst?: number;
  maxAddresses?: number;
  now?: () => number;
}

export class AddressRateLimit {
  readonly perSecond: number;
  readonly burst: number;
  private readonly maxAddresses: number;
  private readonly now: () => number;
  /** Share → tokens left and when they were counted; in order of last use. */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private refusedCount = 0;

  constructor(init: RateLimitInit = {}) {
    this.perSecond = init.perSecond ?? DEFAULT_REQUESTS_PER_SECOND;
    this.burst = init.burst ?? DEFAULT_REQUEST_BURST;
    this.maxAddresses = init.maxAddresses ?? DEFAULT_MAX_ADDRESSES;
    this.now = init.now ?? Date.now;
  }

  /** Requests refused since the start. */
  get refused(): number {
    return this.refusedCount;
  }

  /** Take one request for `share`: 0 when it may go on, else the ms until it may. */
  take(share: string): number {
    const now = this.now();
    const b = this.buckets.get(share) ?? { tokens: this.burst, at: now };
    this.buckets.delete(share); // re-inserted last: most recently used
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    let wait = 0;
    if (b.tokens >= 1) b.tokens -= 1;
    else {
      wait = Math.ceil(((1 - b.tokens) / this.perSecond) * 1000);
      this.refusedCount++;
    }
    this.buckets.set(share, b);
    if (this.buckets.size > this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    return wait;
  }
}
