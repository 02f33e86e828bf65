import { EventEmitter } from 'node:events';

/** Where we heard of a peer. Issue-3 sources (multicast, bootstrap, learnt) join this list. */
export type PeerSource = 'manual' | 'tracker' | 'magnet';

export interface KnownPeer {
  host: string;
  port: number;
  sources: Set<PeerSource>;
  lastSeen: number;
}

export interface PeerRegistryEvents {
  'peer-up': [peer: KnownPeer];
  'peer-down': [peer: KnownPeer];
}

/** Upper bound on peers we remember, so no source can grow the registry without limit. */
export const MAX_KNOWN_PEERS = 10_000;

/** The peers this node knows, keyed by address, with the sources that told us of each. */
export class PeerRegistry extends EventEmitter<PeerRegistryEvents> {
  private readonly peers = new Map<string, KnownPeer>();

  constructor(private readonly self: { host: string; port: number } | null = null) {
    super();
  }

  add(host: string, port: number, source: PeerSource): KnownPeer | null {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
    if (this.self && this.self.port === port && isSelfHost(host, this.self.host)) return null;
    const key = `${host}:${port}`;
    const known = this.peers.get(key);
    if (known) {
      known.sources.add(source);
      known.lastSeen = Date.now();
      return known;
    }
    if (this.peers.size >= MAX_KNOWN_PEERS) return null;
    const peer: KnownPeer = { host, port, sources: new Set([source]), lastSeen: Date.now() };
    this.peers.set(key, peer);
    this.emit('peer-up', peer);
    return peer;
  }

  remove(host: string, port: number): void {
    const key = `${host}:${port}`;
    const peer = this.peers.get(key);
    if (!peer) return;
    this.peers.delete(key);
    this.emit('peer-down', peer);
  }

  list(): KnownPeer[] {
    return [...this.peers.values()];
  }
}

function isSelfHost(host: string, self: string): boolean {
  return host === self || host === '127.0.0.1' || host === 'localhost' || host === '::1';
}
