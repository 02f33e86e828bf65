/**
 * The discovery sources a node runs, started together and wired to its registry: multicast
 * beacons on the LAN (on unless turned off) and the bootstrap client (when a server URL is
 * given). Each source's sightings and losses go to the registry, its health to `health`.
 * `NodeDiscovery` holds them for a node, and swaps them when a setting changes at run time.
 */
import type { Logger } from '../util/log.js';
import type { PeerRegistry } from './peer-registry.js';
import type { DiscoveryHealth, PeerDiscovery, PeerSource } from './discovery.js';
import { MulticastDiscovery } from './multicast.js';
import { BootstrapClient, type PublishedState } from './bootstrap-client.js';
import type { Signer } from '../security/identity.js';
import type { SwarmSecret } from '../security/secret.js';

export interface MulticastOptions {
  group?: string;
  port?: number;
  interfaces?: string[];
  ttl?: number;
  intervalMs?: number;
}

export interface DiscoveryInit {
  /** This node as beacons and registrations name it; `host` is the advertised address, if set. */
  self: { id: string; instance: string; name: string; port: number; host?: string };
  /** Signs beacons and bootstrap requests: the key this node's id derives from. */
  signer: Signer;
  /** A private swarm's secret: beacons and bootstrap requests carry its HMAC. */
  secret?: SwarmSecret;
  /** The one address the peer port listens on, if it listens on one only (beacons go only where it is reachable). */
  bound?: string;
  multicast?: false | MulticastOptions;
  bootstrap?: string;
  /** What the bootstrap server shows of us. */
  published(): PublishedState;
  registry: PeerRegistry;
  health(source: PeerSource, health: DiscoveryHealth): void;
  log: Logger;
}

export interface Discovery {
  /** The bootstrap client, when a bootstrap server is in use (its index, its tracker, reports). */
  readonly bootstrap: BootstrapClient | null;
  health(): Array<{ source: PeerSource; health: DiscoveryHealth }>;
  /** GOODBYE and unregister, then release every socket. */
  stop(): Promise<void>;
}

export async function startDiscovery(init: DiscoveryInit): Promise<Discovery> {
  const sources: PeerDiscovery[] = [];
  if (init.multicast !== false) {
    const m = init.multicast ?? {};
    sources.push(
      new MulticastDiscovery({
        self: { ...init.self, signer: init.signer },
        beaconKey: init.secret?.beaconKey,
        group: m.group,
        port: m.port,
        interfaces: m.interfaces,
        bound: init.bound,
        ttl: m.ttl,
        intervalMs: m.intervalMs,
        // Answered our search, peers or metainfo: worth its place in a full table.
        answered: (id) => init.registry.get(id)?.reachable === 'yes',
        logger: init.log,
      }),
    );
  }
  let bootstrap: BootstrapClient | null = null;
  if (init.bootstrap) {
    bootstrap = new BootstrapClient({ url: init.bootstrap, self: init.self, signer: init.signer, bootstrapKey: init.secret?.bootstrapKey, state: init.published, logger: init.log });
    sources.push(bootstrap);
  }
  for (const source of sources) {
    source.on('peer', (p) => init.registry.see(source.source, p));
    source.on('lost', (id, reason) => init.registry.lose(source.source, id, reason));
    source.on('health', (h) => init.health(source.source, h));
  }
  await Promise.all(sources.map((s) => s.start()));
  return {
    bootstrap,
    health: () => sources.map((s) => ({ source: s.source, health: s.health() })),
    stop: async () => {
      await Promise.allSettled(sources.map((s) => s.stop()));
    },
  };
}

/** Which sources to run: multicast on or off, the bootstrap server or none. */
export interface SourceChoice {
  multicast: boolean;
  bootstrap: string | null;
}

/**
 * A node's discovery sources across its life: started with the node, restarted with other
 * sources when a setting changes (the old ones say GOODBYE and unregister first), stopped
 * with the node. Until started, and once stopped, it has no sources.
 */
export class NodeDiscovery {
  private current: Discovery | null = null;
  private stopped = false;

  /**
   * `base` is read at each start (the node's port is known only once it listens);
   * `multicast` is how to run multicast whenever it is on.
   */
  constructor(
    private readonly base: () => Omit<DiscoveryInit, 'multicast' | 'bootstrap'>,
    private readonly multicast: MulticastOptions,
  ) {}

  get bootstrap(): BootstrapClient | null {
    return this.current?.bootstrap ?? null;
  }

  health(): Array<{ source: PeerSource; health: DiscoveryHealth }> {
    return this.current?.health() ?? [];
  }

  async start(choice: SourceChoice): Promise<void> {
    if (this.stopped) return;
    const started = await startDiscovery({ ...this.base(), multicast: choice.multicast && this.multicast, bootstrap: choice.bootstrap ?? undefined });
    this.current = started;
    if (this.stopped) await started.stop(); // stop() came while these started
  }

  /** Run these sources instead, if running; otherwise start() will pick them. */
  async restart(choice: SourceChoice): Promise<void> {
    if (!this.current || this.stopped) return;
    await this.current.stop();
    this.current = null;
    await this.start(choice);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.current?.stop();
  }
}
