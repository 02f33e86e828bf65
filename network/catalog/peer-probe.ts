/**
 * A peer added by hand is contacted only when something tries it (a search, the gossip of a
 * few peers a minute), so one that never answers would stay "unknown" forever: counted in
 * the totals and passed on to others. So a peer added by hand is tried soon after it is
 * added and again with back-off until it answers; after UNREACHABLE_AFTER failures the
 * registry marks it unreachable (not counted, not passed on), and it is still tried now and
 * then (at most every `maxDelayMs`), so a peer that comes up later is seen without a user's
 * action. Once it answers, the probe leaves it to the ordinary traffic.
 */
import type { KnownPeer, PeerRegistry } from '../discovery/peer-registry.js';

export const PROBE_FIRST_DELAY_MS = 1000;
export const PROBE_MAX_DELAY_MS = 5 * 60_000;

export interface PeerProbeInit {
  registry: PeerRegistry;
  /** One contact with the peer; resolves with whether it answered (and records it in the registry). */
  ask(p: KnownPeer): Promise<boolean>;
  firstDelayMs?: number;
  maxDelayMs?: number;
}

export class PeerProbe {
  /** Next try of each probed peer, by `host:port`. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly init: PeerProbeInit) {}

  /** Try `p` (a peer added by hand) soon, and again with back-off until it answers. */
  watch(p: KnownPeer): void {
    this.schedule(`${p.host}:${p.port}`, this.init.firstDelayMs ?? PROBE_FIRST_DELAY_MS);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(addr: string, delayMs: number): void {
    if (this.stopped || this.timers.has(addr)) return;
    const timer = setTimeout(() => void this.attempt(addr, delayMs), delayMs);
    timer.unref();
    this.timers.set(addr, timer);
  }

  private async attempt(addr: string, delayMs: number): Promise<void> {
    // Removed by the user, moved elsewhere, or answering already: nothing more to learn here.
    const p = this.init.registry.get(addr);
    if (!p || !p.sources.has('manual') || p.reachable === 'yes') {
      this.timers.delete(addr);
      return;
    }
    const answered = await this.init.ask(p);
    this.timers.delete(addr);
    if (!answered) this.schedule(addr, Math.min(2 * delayMs, this.init.maxDelayMs ?? PROBE_MAX_DELAY_MS));
  }
}
