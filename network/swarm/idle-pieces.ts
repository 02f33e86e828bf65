/**
 * The needed pieces nobody fetches yet (idle), in buckets by availability (how many connected
 * peers have each): the picker's rarest-first takes from the lowest non-empty bucket, so a
 * pick is O(1) when the peer is a seed and a scan of one bucket otherwise. Insert, remove and
 * a change of availability are O(1) (swap with the bucket's last).
 */
export class IdlePieces {
  private readonly availability: Uint32Array;
  private readonly buckets: number[][] = [[]];
  /** Where each idle piece sits in its bucket; -1 when it is not idle. */
  private readonly pos: Int32Array;
  private count = 0;

  constructor(private readonly pieceCount: number) {
    this.availability = new Uint32Array(pieceCount);
    this.pos = new Int32Array(pieceCount).fill(-1);
  }

  get size(): number {
    return this.count;
  }

  has(i: number): boolean {
    return this.pos[i]! >= 0;
  }

  /** A peer announced (+1) or lost (-1) piece `i`. */
  bump(i: number, delta: number): void {
    if (i >= this.pieceCount) return;
    const was = this.has(i);
    if (was) this.remove(i);
    this.availability[i] = Math.max(0, this.availability[i]! + delta);
    if (was) this.insert(i);
  }

  insert(i: number): void {
    const a = this.availability[i]!;
    while (this.buckets.length <= a) this.buckets.push([]);
    const bucket = this.buckets[a]!;
    this.pos[i] = bucket.length;
    bucket.push(i);
    this.count++;
  }

  remove(i: number): void {
    const bucket = this.buckets[this.availability[i]!]!;
    const p = this.pos[i]!;
    const last = bucket.pop()!;
    if (last !== i) {
      bucket[p] = last;
      this.pos[last] = p;
    }
    this.pos[i] = -1;
    this.count--;
  }

  /** The idle piece `has` accepts with the lowest availability (random among equals), or -1. */
  rarest(has: (i: number) => boolean): number {
    for (let a = 1; a < this.buckets.length; a++) {
      const bucket = this.buckets[a]!;
      const n = bucket.length;
      if (n === 0) continue;
      const start = (Math.random() * n) | 0;
      for (let k = 0; k < n; k++) {
        const i = bucket[(start + k) % n]!;
        if (has(i)) return i;
      }
    }
    return -1;
  }

  /** The first idle piece `has` accepts from a random starting point, or -1. */
  random(has: (i: number) => boolean): number {
    const n = this.pieceCount;
    const start = (Math.random() * n) | 0;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (this.has(i) && has(i)) return i;
    }
    return -1;
  }
}
