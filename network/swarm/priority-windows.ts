/** Pieces a streaming window covers by default (from the piece a reader wants onwards). */
export const DEFAULT_PRIORITY_WINDOW = 8;
/** Streaming windows remembered; an older one is forgotten when a new one comes. */
export const MAX_PRIORITY_WINDOWS = 4;

/** A run of pieces [from, to) a reader is waiting on. */
export interface Window {
  from: number;
  to: number;
}

/**
 * Streaming: the pieces readers wait on, newest first. A reader waiting at some byte sets a
 * window (the next few pieces from there); the picker starts needed pieces inside the latest
 * windows before anything else. A window goes once all its pieces are verified.
 */
export class PriorityWindows {
  private windows: Window[] = [];

  constructor(private readonly pieceCount: number) {}

  /** Pieces `from` .. `from + count - 1` come first now; out-of-range starts are ignored. */
  add(from: number, count = DEFAULT_PRIORITY_WINDOW): void {
    if (!Number.isInteger(from) || from < 0 || from >= this.pieceCount) return;
    const w = { from, to: Math.min(this.pieceCount, from + Math.max(1, count)) };
    this.windows = [w, ...this.windows.filter((x) => x.from !== from)].slice(0, MAX_PRIORITY_WINDOWS);
  }

  /** Piece `i` was verified: a window containing it is dropped once `have` says all of it is here. */
  verified(i: number, have: (i: number) => boolean): void {
    if (this.windows.length === 0) return;
    this.windows = this.windows.filter((w) => !(i >= w.from && i < w.to) || !allIn(w, have));
  }

  /** The windows now, newest first (copies). */
  list(): Window[] {
    return this.windows.map((w) => ({ ...w }));
  }

  /** Every piece of every window, newest window first, in order within each. */
  *pieces(): IterableIterator<number> {
    for (const w of this.windows) for (let i = w.from; i < w.to; i++) yield i;
  }
}

function allIn(w: Window, have: (i: number) => boolean): boolean {
  for (let i = w.from; i < w.to; i++) if (!have(i)) return false;
  return true;
}
