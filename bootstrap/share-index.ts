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

/**
 * infohash (lower-case hex) → the nodes that share it complete, in the order they began to,
 * and the totals the monitor shows: distinct files and their bytes, each infohash once
 * however many nodes share it (its size as the first of them published it).
 */
export class SeedIndex {
  private readonly seeds = new Map<string, { size: number; nodes: Set<NodeRecord> }>();
  private bytes = 0;

  /** Forget `r` as a seed of its current files (before they are replaced). */
  remove(r: NodeRecord): void {
    for (const f of r.files) {
      const entry = this.seeds.get(f.infohash);
      if (!entry?.nodes.delete(r) || entry.nodes.size > 0) continue;
      this.seeds.delete(f.infohash);
      this.bytes -= entry.size;
    }
  }

  /** `r` seeds its current files, except those it has not completed. */
  add(r: NodeRecord): void {
    for (const f of r.files) {
      if (f.complete === false) continue;
      let entry = this.seeds.get(f.infohash);
      if (!entry) {
        this.seeds.set(f.infohash, (entry = { size: f.size, nodes: new Set() }));
        this.bytes += f.size;
      }
      entry.nodes.add(r);
    }
  }

  /** Up to `limit` nodes that seed `infohash`. */
  seedsOf(infohash: string, limit: number): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const r of this.seeds.get(infohash)?.nodes ?? []) {
      if (out.length >= limit) break;
      out.push(r);
    }
    return out;
  }

  seedCount(infohash: string): number {
    return this.seeds.get(infohash)?.nodes.size ?? 0;
  }

  /** Distinct files shared complete somewhere, and their total size in bytes. */
  totals(): { files: number; bytes: number } {
    return { files: this.seeds.size, bytes: this.bytes };
  }
}
