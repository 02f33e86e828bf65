/**
 * The registry's nodes in last-seen order, newest first: an intrusive doubly-linked list, so
 * a register or heartbeat moves its node to the front in O(1), and an answer's freshest
 * MAX_PEERS_IN_ANSWER nodes cost that many steps, not a sort of every node.
 */

/** The links an item carries for its place in the list. */
export interface LastSeenLinks<T> {
  newer: T | null;
  older: T | null;
}

export class LastSeenList<T extends LastSeenLinks<T>> {
  /** The item seen last; `older` links lead through the rest. */
  private newest: T | null = null;
  /** The item seen longest ago; `newer` links lead back. */
  private oldest: T | null = null;

  /** Make `item` the newest; it must not be in the list. */
  push(item: T): void {
    item.newer = null;
    item.older = this.newest;
    if (this.newest) this.newest.newer = item;
    else this.oldest = item;
    this.newest = item;
  }

  remove(item: T): void {
    if (item.newer) item.newer.older = item.older;
    else if (this.newest === item) this.newest = item.older;
    if (item.older) item.older.newer = item.newer;
    else if (this.oldest === item) this.oldest = item.newer;
    item.newer = item.older = null;
  }

  /** `item` was seen just now. */
  touch(item: T): void {
    this.remove(item);
    this.push(item);
  }

  *freshestFirst(): Generator<T> {
    for (let item = this.newest; item; item = item.older) yield item;
  }

  *stalestFirst(): Generator<T> {
    for (let item = this.oldest; item; item = item.newer) yield item;
  }
}
