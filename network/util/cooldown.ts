/**
 * "At most once per interval per key", with a bound on the keys remembered: who was asked
 * for its peers lately, which source sent a bad beacon lately, which peer was reported
 * unreachable lately. Keys are kept in order of their last `take`, so the oldest (those whose
 * interval has long passed) are the ones dropped at the bound; dropping one only lets it
 * through again early, never blocks anything.
 */
export class Cooldown<K = string> {
  private readonly last = new Map<K, number>();

  constructor(
    readonly intervalMs: number,
    readonly maxKeys: number,
  ) {
    if (!(intervalMs >= 0)) throw new RangeError(`interval must be at least 0, got ${intervalMs}`);
    if (!(maxKeys >= 1)) throw new RangeError(`maxKeys must be at least 1, got ${maxKeys}`);
  }

  /** True, and `key` starts a new interval, when `key` was not let through within the interval. */
  take(key: K, now = Date.now()): boolean {
    const at = this.last.get(key);
    if (at !== undefined && now - at < this.intervalMs) return false;
    this.last.delete(key); // re-inserted last: Map order is the order of takes
    this.last.set(key, now);
    while (this.last.size > this.maxKeys) this.last.delete(this.last.keys().next().value as K);
    return true;
  }

  /** Would `take(key)` let it through now? (no change) */
  ready(key: K, now = Date.now()): boolean {
    const at = this.last.get(key);
    return at === undefined || now - at >= this.intervalMs;
  }

  /** Forget `key`: its next `take` goes through. */
  reset(key: K): void {
    this.last.delete(key);
  }

  get size(): number {
    return this.last.size;
  }
}
