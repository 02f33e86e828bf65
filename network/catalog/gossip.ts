/**
 * Peer exchange between Shoal nodes over the control protocol: ask a peer which peers it
 * knows (`peers`), at most once a minute per peer, when it first comes up and then a few at
 * random every interval. What it names is second-hand: kept as source 'peer', fading unless
 * something first-hand confirms it (see the registry).
 */
import type { Logger } from '../util/log.js';
import { Cooldown } from '../util/cooldown.js';
import { isLoopbackAddress } from '../util/addresses.js';
import { MAX_PEERS } from '../wire/control-codec.js';
import type { KnownPeer, PeerRegistry } from '../discovery/peer-registry.js';
import { controlRequest } from '../control/control-client.js';

export const GOSSIP_EVERY_PEER_MS = 60_000;
/** Peers asked at random each interval. */
const PEERS_PER_ROUND = 3;

export interface GossipInit {
  registry: PeerRegistry;
  /** A private swarm's TLS key: every request to a peer goes inside TLS with it. */
  psk?: Buffer;
  timeoutMs: number;
  /** How often a few peers are asked (0 = only when a peer first comes up). */
  intervalMs: number;
  log: Logger;
}

export class Gossip {
  private readonly asked = new Cooldown(GOSSIP_EVERY_PEER_MS, 4 * MAX_PEERS);
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** Requests on their way, by `host:port`. */
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(private readonly init: GossipInit) {}

  start(): void {
    if (this.timer || this.stopped || this.init.intervalMs <= 0) return;
    this.timer = setInterval(() => this.round(), this.init.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Ask `p` for the peers it knows, unless asked within the last minute. */
  ask(p: KnownPeer): void {
    if (this.stopped || !this.asked.take(`${p.host}:${p.port}`)) return;
    void this.request(p);
  }

  /**
   * Ask `p` now, whatever the minute's limit (to learn whether it answers at all): resolves
   * with whether it answered. Joins a request to `p` already on its way rather than send two.
   */
  probe(p: KnownPeer): Promise<boolean> {
    if (this.stopped) return Promise.resolve(false);
    this.asked.take(`${p.host}:${p.port}`);
    return this.request(p);
  }

  private request(p: KnownPeer): Promise<boolean> {
    const key = `${p.host}:${p.port}`;
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const { registry, log } = this.init;
    const asking = controlRequest(p.host, p.port, { type: 'peers' }, { timeoutMs: this.init.timeoutMs, psk: this.init.psk })
      .then(
        (res) => {
          // The node that answered names itself: a peer listed at that address under another
          // id claimed an address that is not its own (registry.contact).
          const answeredAs = res.type === 'PEERS' ? res.self?.id : undefined;
          registry.contact(p.host, p.port, true, answeredAs);
          if (answeredAs !== undefined && p.id !== undefined && answeredAs !== p.id) return false;
          if (res.type !== 'PEERS') return true;
          // Its id and name from itself: a peer added by address learns both, one heard by a private
          // swarm's beacons (which carry no name) its name.
          if (res.self && (!p.id || (p.id === res.self.id && !p.name && res.self.name)))
            registry.see(p.sources.values().next().value ?? 'manual', { id: res.self.id, name: res.self.name, host: p.host, port: p.port });
          for (const q of res.peers) {
            // A remote peer's loopback is its own machine, not ours.
            if (isLoopbackAddress(q.host) && !isLoopbackAddress(p.host)) continue;
            registry.see('peer', q);
          }
          return true;
        },
        (err: Error) => {
          registry.contact(p.host, p.port, false);
          log.debug({ peer: key, err: err.message }, 'peers: no answer');
          return false;
        },
      )
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, asking);
    return asking;
  }

  private round(): void {
    const { registry } = this.init;
    registry.expire();
    const answering = registry.list().filter((p) => p.reachable !== 'no');
    for (let i = 0; i < PEERS_PER_ROUND && answering.length > 0; i++) this.ask(answering.splice(Math.floor(Math.random() * answering.length), 1)[0]!);
  }
}
