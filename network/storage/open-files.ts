/**
 * The shared files this node holds open to serve pieces, within a budget of file
 * descriptors. Every read leases a handle: a file not open is opened (once, however many
 * leases ask for it at the same moment), and when the budget is spent the least recently
 * used handle nobody leases is closed to make room; with every handle leased, a new lease
 * waits its turn. A remote peer's handshake can name any number of shared files, so
 * without this each one would keep a descriptor open for the life of the node.
 */
import { constants, promises as fsp, type promises } from 'node:fs';
import { ClosedError } from '../util/errors.js';

/** Shared files held open at once, by default. */
export const DEFAULT_OPEN_FILES = 256;

/**
 * Never follow a symlink swapped in for a shared file, and never block opening something
 * that is not a regular file (a FIFO would wait for a writer forever).
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

export interface OpenFilesStats {
  /** Descriptors open (or being opened) now. */
  open: number;
  /** The most ever open at once. */
  peak: number;
  /** Opens done since the start (a file closed to make room and used again counts twice). */
  opens: number;
  /** Leases that had to wait for a handle to come free. */
  waits: number;
  budget: number;
}

interface Entry {
  file: string;
  handle: Promise<promises.FileHandle>;
  leases: number;
  /** Forgotten (the file changed or is no longer shared): closed as soon as nobody leases it. */
  doomed: boolean;
}

export class OpenFiles {
  /** Insertion order is use order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  /** Doomed entries still leased: they hold a descriptor until released. */
  private readonly leaving = new Set<Entry>();
  private readonly waiting: Array<() => void> = [];
  /** Handles being closed: their descriptors count until the close is done. */
  private closing = 0;
  private readonly counters = { peak: 0, opens: 0, waits: 0 };
  private closed = false;

  constructor(readonly budget = DEFAULT_OPEN_FILES) {
    if (!Number.isInteger(budget) || budget < 1) throw new RangeError(`the open-file budget must be a positive integer, got ${budget}`);
  }

  get stats(): OpenFilesStats {
    return { open: this.count, ...this.counters, budget: this.budget };
  }

  /** Run `fn` with an open handle on `file`; the handle may be closed once `fn` settles, so never keep it. */
  async use<T>(file: string, fn: (fh: promises.FileHandle) => Promise<T>): Promise<T> {
    const entry = await this.lease(file);
    try {
      return await fn(await entry.handle);
    } finally {
      this.release(entry);
    }
  }

  /** Close `file`'s handle once no lease holds it (the file changed, or is no longer served). */
  forget(file: string): void {
    const e = this.entries.get(file);
    if (!e) return;
    this.entries.delete(file);
    e.doomed = true;
    if (e.leases === 0) void this.shut(e);
    else this.leaving.add(e);
  }

  /** Close every handle not leased now, and the others as their leases end; later leases fail. */
  async closeAll(): Promise<void> {
    this.closed = true;
    for (const file of [...this.entries.keys()]) this.forget(file);
    for (const wake of this.waiting.splice(0)) wake();
  }

  private get count(): number {
    return this.entries.size + this.leaving.size + this.closing;
  }

  private async lease(file: string): Promise<Entry> {
    for (let waited = false; ; waited = true) {
      if (this.closed) throw new ClosedError('open files closed');
      const e = this.entries.get(file);
      if (e) {
        // Most recently used: to the end of the order.
        this.entries.delete(file);
        this.entries.set(file, e);
        e.leases++;
        return e;
      }
      if (this.count < this.budget) return this.open(file);
      // Make room, and wait for the descriptor to be really closed: the budget is a hard one.
      const shutting = this.evictIdle();
      if (shutting) {
        await shutting;
        continue;
      }
      if (!waited) this.counters.waits++;
      // One woken before finds no room after all: it keeps its place at the front.
      await new Promise<void>((resolve) => (waited ? this.waiting.unshift(resolve) : this.waiting.push(resolve)));
    }
  }

  private open(file: string): Entry {
    const entry: Entry = { file, handle: fsp.open(file, OPEN_FLAGS), leases: 1, doomed: false };
    this.entries.set(file, entry);
    this.counters.opens++;
    this.counters.peak = Math.max(this.counters.peak, this.count);
    // A failed open holds nothing: forget it, so the next lease tries again.
    entry.handle.catch(() => {
      if (this.entries.get(file) === entry) this.entries.delete(file);
      this.leaving.delete(entry);
      this.wake();
    });
    return entry;
  }

  /** Close the least recently used handle nobody leases (resolves once closed); null if every one is leased. */
  private evictIdle(): Promise<void> | null {
    for (const e of this.entries.values()) {
      if (e.leases > 0) continue;
      this.entries.delete(e.file);
      return this.shut(e);
    }
    return null;
  }

  private release(e: Entry): void {
    e.leases--;
    if (e.leases > 0) return;
    if (e.doomed) {
      this.leaving.delete(e);
      void this.shut(e);
    }
    this.wake();
  }

  private shut(e: Entry): Promise<void> {
    this.closing++;
    return e.handle
      .then((fh) => fh.close())
      .catch(() => {})
      .finally(() => {
        this.closing--;
        this.wake();
      });
  }

  /** One waiting lease tries again (it waits once more if there is still no room). */
  private wake(): void {
    this.waiting.shift()?.();
  }
}
