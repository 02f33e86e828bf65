/**
 * Who else has a file: for each infohash, the other nodes seen sharing it and when. Fed by
 * search answers, the bootstrap index, subscribe streams, swarm peers with every piece,
 * and `list` requests that `refresh()` sends to answering peers (each at most once per
 * interval, a few at a time). A sighting counts for ten minutes; a node's full `list`
 * replaces what we knew of it, so a file it removed stops counting at the next refresh.
 *
 * Nodes are keyed by `host:port` (the address every source gives), or `peer:<id hex>` for
 * a swarm peer we only know by an incoming connection.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../util/log.js';
import type { PeerRegistry } from '../discovery/peer-registry.js';
import { controlRequest } from '../control/control-client.js';
import { MAX_FILES, type FileEntry } from '../wire/control-codec.js';
import { Cooldown } from '../util/cooldown.js';

/** How long a sighting counts. */
export const HOLDER_TTL_MS = 10 * 60_000;
/** Node-file pairs kept at most; the least recently seen files go first beyond it. */
export const MAX_HOLDER_ENTRIES = 100_000;
/** A peer is asked for its `list` at most this often. */
export const DEFAULT_LIST_INTERVAL_MS = 60_000;
/** `list` requests in flight at once. */
export const MAX_LISTS_AT_ONCE = 8;
/** Peers whose last `list` time we remember. */
const MAX_LISTED = 20_000;

export interface HoldersInit {
  registry: PeerRegistry;
  /** A private swarm's TLS key: every request to a peer goes inside TLS with it. */
  psk?: Buffer;
  logger: Logger;
  /** Per-request timeout of a `list` (the node's query timeout). */
  timeoutMs: number;
  ttlMs?: number;
  maxEntries?: number;
  listIntervalMs?: number;
  concurrency?: number;
}

export interface HoldersEvents {
  /** The number of nodes known to hold `infohash` changed. */
  change: [infohash: string, count: number];
}

export function holderKey(host: string, port: number): string {
  return `${host}:${port}`;
}

/**
 * How a swarm peer with every piece counts as a holder: a peer we dialled by the address we
 * dialled; an incoming one by its peer id, unless it is a Shoal node (its listening address
 * is unknown here, and the control protocol counts it already): null then.
 */
export function swarmHolderKey(p: { outgoing: boolean; host: string; port: number; client: string; peerId: Buffer }): string | null {
  if (p.outgoing) return holderKey(p.host, p.port);
  if (p.client.startsWith('Shoal ')) return null;
  return `peer:${p.peerId.toString('hex')}`;
}

export class Holders extends EventEmitter<HoldersEvents> {
  /** infohash → node key → last seen (ms); Map order is least recently touched first. */
  private readonly byFile = new Map<string, Map<string, number>>();
  private readonly byNode = new Map<string, Set<string>>();
  private entries = 0;
  /** The count last reported per infohash, so `change` fires only on a real change. */
  private readonly reported = new Map<string, number>();
  /** Each peer is asked for its `list` at most once per interval. */
  private readonly listed: Cooldown;
  private readonly queue: Array<{ host: string; port: number }> = [];
  private active = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();
  private readonly ttlMs: number;
  private readonly maxEntries: number;

  constructor(private readonly init: HoldersInit) {
    super();
    this.ttlMs = init.ttlMs ?? HOLDER_TTL_MS;
    this.maxEntries = init.maxEntries ?? MAX_HOLDER_ENTRIES;
    this.listed = new Cooldown(init.listIntervalMs ?? DEFAULT_LIST_INTERVAL_MS, MAX_LISTED);
  }

  /** Expire old sightings once a minute. Idempotent. */
  start(): void {
    if (this.timer || this.abort.signal.aborted) return;
    this.timer = setInterval(() => this.expire(), Math.min(60_000, this.ttlMs));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.queue.length = 0;
    this.abort.abort();
  }

  /** Nodes other than us seen with `infohash` within the TTL. */
  count(infohash: string, now = Date.now()): number {
    const nodes = this.byFile.get(infohash);
    if (!nodes) return 0;
    let n = 0;
    for (const seen of nodes.values()) if (now - seen <= this.ttlMs) n++;
    return n;
  }

  /** `node` has `infohash` now. */
  saw(infohash: string, node: string, at = Date.now()): void {
    this.put(infohash, node, at);
    this.changed(infohash);
    this.trim();
  }

  /** `node` no longer has `infohash` (a file-removed event). */
  lost(infohash: string, node: string): void {
    if (this.drop(infohash, node)) this.changed(infohash);
  }

  /**
   * What `node` shares, in full: files it no longer lists stop counting. A truncated list
   * (`complete` false) only adds.
   */
  replace(node: string, infohashes: Iterable<string>, complete = true, at = Date.now()): void {
    const now = new Set(infohashes);
    const touched = new Set<string>(now);
    if (complete) {
      for (const h of [...(this.byNode.get(node) ?? [])]) {
        if (!now.has(h) && this.drop(h, node)) touched.add(h);
      }
    }
    for (const h of now) this.put(h, node, at);
    for (const h of touched) this.changed(h);
    this.trim();
  }

  /** What a peer's subscribe stream says of its files (the watcher's): a snapshot in full, then each change. */
  observed(from: { host: string; port: number }, what: 'snapshot' | 'file-added' | 'file-removed', files: FileEntry[]): void {
    const key = holderKey(from.host, from.port);
    const have = files.filter((f) => f.complete !== false).map((f) => f.infohash);
    if (what === 'snapshot') this.replace(key, have, files.length < MAX_FILES);
    else if (what === 'file-added') for (const h of have) this.saw(h, key);
    else for (const f of files) this.lost(f.infohash, key);
  }

  /** Ask every answering known peer for its `list`, each at most once per interval. */
  refresh(): void {
    if (this.abort.signal.aborted) return;
    const now = Date.now();
    for (const p of this.init.registry.list()) {
      if (p.reachable === 'no') continue;
      if (!this.listed.take(holderKey(p.host, p.port), now)) continue;
      this.queue.push({ host: p.host, port: p.port });
    }
    this.pump();
  }

  /** Requests waiting plus in flight (tests wait for 0). */
  get pending(): number {
    return this.queue.length + this.active;
  }

  private pump(): void {
    const most = this.init.concurrency ?? MAX_LISTS_AT_ONCE;
    while (this.active < most && this.queue.length > 0) {
      const p = this.queue.shift()!;
      const key = holderKey(p.host, p.port);
      this.active++;
      controlRequest(p.host, p.port, { type: 'list' }, { timeoutMs: this.init.timeoutMs, signal: this.abort.signal, psk: this.init.psk })
        .then(
          (res) => {
            this.init.registry.contact(p.host, p.port, true);
            if (res.type !== 'LIST') return;
            const have = res.files.filter((f) => f.complete !== false).map((f) => f.infohash);
            this.replace(key, have, res.files.length < MAX_FILES);
          },
          (err: Error) => {
            if (this.abort.signal.aborted) return;
            this.init.registry.contact(p.host, p.port, false);
            this.init.logger.debug({ peer: key, err: err.message }, 'list: no answer');
          },
        )
        .finally(() => {
          this.active--;
          this.pump();
        });
    }
  }

  /** Forget sightings older than the TTL. */
  expire(now = Date.now()): void {
    for (const [h, nodes] of [...this.byFile]) {
      let dropped = false;
      for (const [node, seen] of [...nodes]) if (now - seen > this.ttlMs && this.drop(h, node)) dropped = true;
      if (dropped) this.changed(h);
    }
  }

  private put(h: string, node: string, at: number): void {
    let nodes = this.byFile.get(h);
    if (nodes) this.byFile.delete(h); // re-insert: most recently touched last
    else nodes = new Map();
    this.byFile.set(h, nodes);
    if (!nodes.has(node)) this.entries++;
    nodes.set(node, Math.max(at, nodes.get(node) ?? 0));
    let files = this.byNode.get(node);
    if (!files) this.byNode.set(node, (files = new Set()));
    files.add(h);
  }

  private drop(h: string, node: string): boolean {
    const nodes = this.byFile.get(h);
    if (!nodes?.delete(node)) return false;
    this.entries--;
    if (nodes.size === 0) this.byFile.delete(h);
    const files = this.byNode.get(node);
    files?.delete(h);
    if (files?.size === 0) this.byNode.delete(node);
    return true;
  }

  private changed(h: string): void {
    const n = this.count(h);
    if ((this.reported.get(h) ?? 0) === n) return;
    if (n === 0) this.reported.delete(h);
    else this.reported.set(h, n);
    this.emit('change', h, n);
  }

  /**
   * Keep within the bound: the least recently touched files go first, which puts files
   * nobody was seen with within the TTL first. No full sweep here (the minute timer does
   * that): at the bound, every new sighting comes through this.
   */
  private trim(): void {
    while (this.entries > this.maxEntries) {
      const [h, nodes] = this.byFile.entries().next().value!;
      for (const node of [...nodes.keys()]) this.drop(h, node);
      this.changed(h);
    }
  }
}
