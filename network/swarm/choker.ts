/** What the choker needs of a peer: whether we choke it, whether it wants to download, its rates. */
export interface ChokerPeer {
  readonly amChoking: boolean;
  readonly peerInterested: boolean;
  /** Payload bytes a second it sends us. */
  downloadRate(): number;
  /** Payload bytes a second we send it. */
  uploadRate(): number;
}

/** Seconds between regular re-chokes, and between optimistic unchoke rotations. */
export const RECHOKE_MS = 10_000;
export const OPTIMISTIC_MS = 30_000;

/**
 * Who we upload to. Up to `slots` interested peers are unchoked: first come while slots
 * are free; every 10 s the best (by what they give us while we download, by how fast they
 * take while we seed) keep their slot, and one slot rotates to a random waiting peer so
 * newcomers get a start (BEP 3's tit-for-tat with an optimistic unchoke).
 */
export class Choker<P extends ChokerPeer = ChokerPeer> {
  private lastRechoke: number;
  private lastOptimistic = 0;
  private optimistic: P | null = null;

  constructor(
    private readonly slots: number,
    private readonly seeding: () => boolean,
    now = Date.now(),
  ) {
    this.lastRechoke = now;
  }

  hasSlot(peers: Iterable<P>): boolean {
    let n = 0;
    for (const p of peers) if (!p.amChoking) n++;
    return n < this.slots;
  }

  /** A slot came free: give it to a waiting interested peer. */
  freed(peers: ReadonlySet<P>, unchoke: (p: P) => void): void {
    for (const p of peers) {
      if (!this.hasSlot(peers)) return;
      if (p.amChoking && p.peerInterested) unchoke(p);
    }
  }

  tick(now: number, peers: ReadonlySet<P>, unchoke: (p: P) => void, choke: (p: P) => void): void {
    if (now - this.lastRechoke < RECHOKE_MS) return;
    this.lastRechoke = now;
    // No slots: nobody is unchoked (a node that serves allowed-fast pieces only, BEP 6).
    if (this.slots <= 0) {
      for (const p of peers) if (!p.amChoking) choke(p);
      return;
    }
    const interested = [...peers].filter((p) => p.peerInterested);
    if (interested.length <= this.slots) {
      for (const p of interested) unchoke(p);
      return;
    }
    const score = this.seeding() ? (p: P) => p.uploadRate() : (p: P) => p.downloadRate();
    interested.sort((a, b) => score(b) - score(a));
    const keep = new Set(interested.slice(0, this.slots - 1));
    if (!this.optimistic || !peers.has(this.optimistic) || now - this.lastOptimistic >= OPTIMISTIC_MS) {
      const waiting = interested.filter((p) => !keep.has(p));
      this.optimistic = waiting[Math.floor(Math.random() * waiting.length)] ?? null;
      this.lastOptimistic = now;
    }
    if (this.optimistic) keep.add(this.optimistic);
    for (const p of peers) {
      if (keep.has(p)) unchoke(p);
      else if (!p.amChoking) choke(p);
    }
  }
}
