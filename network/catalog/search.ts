/**
 * Network-wide search by name, and fetching a file's metainfo by infohash: the asking side
 * of the catalog. A search asks every known peer in parallel (each bounded by a timeout) and
 * the bootstrap index, and merges the answers by infohash with every node known to have each
 * file; what it learns feeds the holders index and the registry's view of who answers.
 */
import type { Logger } from '../util/log.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import type { FileEntry } from '../wire/control-codec.js';
import type { SearchHit } from '../wire/bootstrap-api.js';
import type { PeerRegistry } from '../discovery/peer-registry.js';
import { controlRequest, fetchMetainfo } from '../control/control-client.js';
import { ControlProtocolError } from '../wire/control-codec.js';
import { NotFoundError } from '../errors.js';
import { holderKey, type Holders } from './holders.js';

export interface SearchResult {
  infohash: string;
  name: string;
  size: number;
  /** Nodes known to have this file (answered a search, or listed by the bootstrap index). */
  peers: Array<{ id?: string; host: string; port: number }>;
  /** Where the answers came from. */
  via: Array<'peers' | 'bootstrap'>;
}

export interface NetworkSearchInit {
  registry: PeerRegistry;
  /** A private swarm's TLS key: every request to a peer goes inside TLS with it. */
  psk?: Buffer;
  holders: Holders;
  /** The bootstrap server's search index, while a bootstrap server is in use. */
  index(): { search(query: string): Promise<SearchHit[]> } | null;
  /** Our node id: the bootstrap index lists us too. */
  selfId: string;
  /** Per-peer timeout of each search and metainfo request. */
  timeoutMs: number;
  log: Logger;
}

type Holder = { id?: string; host: string; port: number };

export class NetworkSearch {
  constructor(private readonly init: NetworkSearchInit) {}

  async search(query: string): Promise<SearchResult[]> {
    const { registry, holders, log } = this.init;
    const merged = new Map<string, SearchResult>();
    const note = (f: FileEntry, node: Holder, via: 'peers' | 'bootstrap') => {
      const r = merged.get(f.infohash) ?? { infohash: f.infohash, name: f.name, size: f.size, peers: [], via: [] };
      const same = (p: Holder) => (p.id && p.id === node.id) || (p.host === node.host && p.port === node.port);
      if (!r.peers.some(same)) r.peers.push(node);
      if (!r.via.includes(via)) r.via.push(via);
      merged.set(f.infohash, r);
      if (f.complete !== false) holders.saw(f.infohash, holderKey(node.host, node.port));
    };
    // One ask per address, and a peer that does not answer only now and then.
    const asks = registry.askable().map(async (p) => {
      try {
        const res = await controlRequest(p.host, p.port, { type: 'search', filename: query }, { timeoutMs: this.init.timeoutMs, psk: this.init.psk });
        registry.contact(p.host, p.port, true);
        if (res.type === 'FOUND') for (const f of res.files) note(f, { id: p.id, host: p.host, port: p.port }, 'peers');
      } catch (err) {
        registry.contact(p.host, p.port, false);
        log.debug({ peer: `${p.host}:${p.port}`, err: (err as Error).message }, 'search: peer did not answer');
      }
    });
    const index = this.init.index();
    if (index) {
      asks.push(
        index.search(query).then(
          (files) => {
            for (const f of files) for (const n of f.nodes) if (n.id !== this.init.selfId) note(f, n, 'bootstrap');
          },
          (err: Error) => log.debug({ err: err.message }, 'search: the bootstrap index did not answer'),
        ),
      );
    }
    await Promise.all(asks);
    return [...merged.values()]
      .filter((r) => r.peers.length > 0)
      .sort((a, b) => b.peers.length - a.peers.length || a.name.localeCompare(b.name));
  }

  /**
   * The .torrent of `infohash` from whichever peer answers first: the hinted ones, then every
   * known peer. The infohash is recomputed from the bytes, so no peer can hand us another
   * file. NotFoundError when no peer is known or none has it.
   */
  async metainfo(infohash: string, hint: Array<{ host: string; port: number }>): Promise<Metainfo> {
    const seen = new Set<string>();
    const order = [...hint, ...this.init.registry.askable()].filter((p) => !seen.has(`${p.host}:${p.port}`) && seen.add(`${p.host}:${p.port}`));
    if (order.length === 0) throw new NotFoundError(`no known peer to ask for ${infohash}: add one with --peer HOST:PORT`);
    try {
      return await Promise.any(order.map((p) => fetchMetainfo(p.host, p.port, infohash, { timeoutMs: this.init.timeoutMs, psk: this.init.psk })));
    } catch (err) {
      // Say what went wrong beyond "not there" (a bad or unsafe torrent, a broken answer).
      const reasons = err instanceof AggregateError ? err.errors.filter((e) => e instanceof ControlProtocolError).map((e: Error) => e.message) : [];
      const why = reasons.length > 0 ? `: ${[...new Set(reasons)].slice(0, 3).join('; ')}` : '';
      throw new NotFoundError(`none of ${order.length} known peers has ${infohash}${why}`);
    }
  }
}
