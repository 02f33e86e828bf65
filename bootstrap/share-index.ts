/**
 * What the registered nodes share, as search and the tracker read it: name search over every
 * node's files, and an index of who seeds which infohash. The registry decides who is
 * registered; this only answers questions about their files.
 */
import { MAX_NODES_PER_RESULT, MAX_SEARCH_RESULTS, type SearchHit } from '../network/wire/bootstrap-api.js';
import type { HostMap, NodeRecord } from './registry.js';

/**
 * Files whose lower-cased name contains the lower-cased query: plain substring search,
 * never a pattern, so no query can be made slow. Merged by infohash, in the order of
 * `nodes` (the registry passes its freshest first).
 */
export function searchShares(nodes: Iterable<NodeRecord>, query: string, hostFor: HostMap): SearchHit[] {
  const needle = query.toLowerCase();
  const hits = new Map<string, SearchHit>();
  for (const r of nodes) {
    const node = { id: r.id, host: hostFor(r.host), port: r.port };
    for (let i = 0; i < r.files.length; i++) {
      if (!r.lowerNames[i]!.includes(needle)) continue;
      const f = r.files[i]!;
      if (f.complete === false) continue;
      let hit = hits.get(f.infohash);
      if (!hit) {
        if (hits.size >= MAX_SEARCH_RESULTS) continue;
        hit = { name: f.name, size: f.size, infohash: f.infohash, nodes: [] };
        hits.set(f.infohash, hit);
      }
      if (hit.nodes.length < MAX_NODES_PER_RESULT && !hit.nodes.some((n) => n.id === r.id)) hit.nodes.push(node);
    }
  }
  return [...hits.values()];
}

/** infohash (lower-case hex) → the nodes that share it complete, in the order they began to. */
export class SeedIndex {
  private readonly seeds = new Map<string, Set<NodeRecord>>();

  /** Forget `r` as a seed of its current files (before they are replaced). */
  remove(r: NodeRecord): void {
    for (const f of r.files) {
      const nodes = this.seeds.get(f.infohash);
      if (nodes?.delete(r) && nodes.size === 0) this.seeds.delete(f.infohash);
    }
  }

  /** `r` seeds its current files, except those it has not completed. */
  add(r: NodeRecord): void {
    for (const f of r.files) {
      if (f.complete === false) continue;
      let nodes = this.seeds.get(f.infohash);
      if (!nodes) this.seeds.set(f.infohash, (nodes = new Set()));
      nodes.add(r);
    }
  }

  /** Up to `limit` nodes that seed `infohash`. */
  seedsOf(infohash: string, limit: number): NodeRecord[] {
    const nodes = this.seeds.get(infohash);
    const out: NodeRecord[] = [];
    if (!nodes) return out;
    for (const r of nodes) {
      if (out.length >= limit) break;
      out.push(r);
    }
    return out;
  }

  seedCount(infohash: string): number {
    return this.seeds.get(infohash)?.size ?? 0;
  }
}
