import type { Logger } from './log.js';

export const RETRY_FIRST_MS = 1000;
export const RETRY_MAX_MS = 60_000;

/**
 * Distinct problems, each logged once when it appears (or changes) and once when it is
 * gone, each with its own exponential back-off for the next attempt.
 */
export class Problems {
  private readonly map = new Map<string, { message: string; attempts: number; nextAt: number }>();
  constructor(
    private readonly log: Logger,
    /** Starts every line, naming what has the problems (`multicast: `). */
    private readonly prefix: string,
    private readonly firstMs = RETRY_FIRST_MS,
    private readonly maxMs = RETRY_MAX_MS,
  ) {}

  report(key: string, message: string): void {
    const p = this.map.get(key);
    if (!p || p.message !== message) this.log.warn(`${this.prefix}${message}; retrying in the background`);
    const attempts = (p?.attempts ?? 0) + 1;
    const wait = Math.min(this.maxMs, this.firstMs * 2 ** Math.min(attempts - 1, 16));
    this.map.set(key, { message, attempts, nextAt: Date.now() + wait });
  }

  clear(key: string): void {
    const p = this.map.get(key);
    if (!p) return;
    this.map.delete(key);
    this.log.info(`${this.prefix}ok again (was: ${p.message})`);
  }

  /** No log line: the thing it was about went away on purpose. */
  forget(key: string): void {
    this.map.delete(key);
  }

  /** Sets the problems under `prefix` to exactly `current` (key → message). */
  sync(prefix: string, current: Map<string, string>): void {
    for (const key of [...this.map.keys()]) {
      if (key.startsWith(prefix) && !current.has(key)) this.clear(key);
    }
    for (const [key, message] of current) if (this.due(key)) this.report(key, message);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  due(key: string): boolean {
    const p = this.map.get(key);
    return !p || Date.now() >= p.nextAt;
  }

  nextDue(): number | undefined {
    let min: number | undefined;
    for (const p of this.map.values()) if (min === undefined || p.nextAt < min) min = p.nextAt;
    return min;
  }

  messages(): string[] {
    return [...this.map.values()].map((p) => p.message);
  }

  reset(): void {
    this.map.clear();
  }
}
