/**
 * The bootstrap server's registry of nodes: pure state, no HTTP. Who is registered, from
 * which address, what each shares and downloads, and who reported whom unreachable. Every
 * operation takes the sender's address and the node id whose key signed the request (the
 * server checks the signature, bootstrap/request-check.ts), so the ownership rules live
 * here, where they can be tested without sockets: a node id is acted for only by its own
 * key, from anywhere, loopback included.
 *
 * Bounds, per address and in total: nodes, shared files, and bytes (what a node's record
 * costs in memory and on disk, its names above all). An "address" is an IPv4 address, an
 * IPv6 /64 (one host's share), or this machine's loopback as a whole (127/8 is one host).
 * Past a per-address bound a registration is refused (429). Past a total bound a newcomer
 * takes the place of the stalest node of the address that holds the most, as long as that
 * address holds more than the newcomer's would: ten thousand registrations from one
 * address, or a few, cannot keep honest nodes from other addresses out (only then 503).
 *
 * Reports of unreachable nodes count only from nodes that could have tried: registered,
 * signed by their own key, and told of the target by an answer since it registered. A node
 * is dropped (and that instance quarantined a while) once distinct reporters from distinct
 * addresses agree: the threshold, or a quarter of the nodes told of it (at most
 * MAX_REPORT_QUORUM), or all of them when fewer exist.
 *
 * Around it: share-index.ts (search, who seeds what), last-seen.ts (the freshest-first
 * order), registry-store.ts (a file per node; a node loaded from it gets a fresh TTL, so it
 * can heartbeat again after a restart).
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../network/util/log.js';
import { isLoopbackAddress, normalizeAddress } from '../network/util/addresses.js';
import {
  MAX_DOWNLOADS_SHOWN, MAX_SHARES_SHOWN,
  type Download, type FileEntry, type HeartbeatRequest, type NodeView, type PeerView, type RegisterRequest, type SearchHit,
} from '../network/wire/bootstrap-api.js';
import { LastSeenList, type LastSeenLinks } from './last-seen.js';
import { addressBucket, LOOPBACK_BUCKET } from './address-bucket.js';

export { addressBucket, LOOPBACK_BUCKET } from './address-bucket.js';
import { RegistryStore } from './registry-store.js';
import { SeedIndex, searchShares } from './share-index.js';

export const DEFAULT_TTL_MS = 90_000;
export const DEFAULT_MAX_NODES = 10_000;
export const DEFAULT_MAX_NODES_PER_ADDRESS = 64;
export const DEFAULT_MAX_FILES_PER_ADDRESS = 100_000;
export const DEFAULT_MAX_FILES = 1_000_000;
/** What the registry holds at most, and per address, in bytes (names and records: see recordBytes). */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_BYTES_PER_ADDRESS = 32 * 1024 * 1024;
export const DEFAULT_REPORT_THRESHOLD = 3;
/** Reporters a drop needs at most, however many nodes were told of the target. */
export const MAX_REPORT_QUORUM = 10;
/** The share of the nodes told of a target whose reports drop it (within the threshold and the maximum). */
export const REPORT_QUORUM_SHARE = 0.25;
export const DEFAULT_REPORT_WINDOW_MS = 10 * 60_000;
export const DEFAULT_QUARANTINE_MS = 5 * 60_000;

/** A refused operation; `status` is the HTTP status the server answers with. */
export class RegistryError extends Error {
  override name = 'RegistryError';
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface NodeRecord {
  id: string;
  instance: string;
  name: string;
  /** The address peers dial. */
  host: string;
  port: number;
  /** The address it registered from. */
  source: string;
  /** The address's share it counts in (addressBucket of `source`). */
  bucket: string;
  /** What it costs (recordBytes). */
  bytes: number;
  files: FileEntry[];
  /** Lower-cased names, parallel to `files`, so a search allocates nothing per file. */
  lowerNames: string[];
  downloads: Download[];
  registeredAt: number;
  lastSeen: number;
  expiresAt: number;
  /** Reporter address (or id, on loopback) → when it reported. */
  reports: Map<string, number>;
}

/** About what a record costs in memory and on disk: its names, and a fixed overhead per entry. */
export function recordBytes(r: { name: string; files: readonly FileEntry[]; downloads: readonly Download[] }): number {
  let n = 512 + r.name.length;
  for (const f of r.files) n += 128 + f.name.length * 2; // the name, and its lower-cased copy
  for (const d of r.downloads) n += 128 + d.name.length;
  return n;
}

/** A record with its place in the last-seen order. */
interface Entry extends NodeRecord, LastSeenLinks<Entry> {}

export interface NodeRegistryInit {
  ttlMs?: number;
  /** The folder where the registry is persisted (a file per node); none = memory only. */
  dir?: string;
  logger?: Logger;
  now?: () => number;
  maxNodes?: number;
  maxNodesPerAddress?: number;
  maxFilesPerAddress?: number;
  maxFiles?: number;
  maxBytes?: number;
  maxBytesPerAddress?: number;
  reportThreshold?: number;
  reportWindowMs?: number;
  quarantineMs?: number;
  saveDelayMs?: number;
}

export interface NodeRegistryEvents {
  /** Membership or content changed (not plain heartbeats): monitors redraw, the file is saved. */
  change: [];
}

/** Maps a stored host to the one a given asker should dial (see the server's loopback rewrite). */
export type HostMap = (host: string) => string;
const sameHost: HostMap = (h) => h;

export class NodeRegistry extends EventEmitter<NodeRegistryEvents> {
  readonly ttlMs: number;
  private readonly nodes = new Map<string, Entry>();
  private readonly order = new LastSeenList<Entry>();
  /** Who seeds what: the tracker's index. */
  private readonly seeds = new SeedIndex();
  /** Per address share (addressBucket): what its nodes hold. */
  private readonly perAddress = new Map<string, Share>();
  /** `id/instance` → until when a node dropped as unreachable may not come back. */
  private readonly quarantine = new Map<string, number>();
  private totalFiles = 0;
  private totalBytes = 0;
  /** Nodes that gave way to newcomers from other addresses (a full registry). */
  private evicted = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly store: RegistryStore | null;

  constructor(private readonly init: NodeRegistryInit = {}) {
    super();
    this.ttlMs = init.ttlMs ?? DEFAULT_TTL_MS;
    this.log = init.logger ?? silentLogger();
    this.now = init.now ?? Date.now;
    this.store = init.dir ? new RegistryStore({ dir: init.dir, record: (id) => this.nodes.get(id), logger: this.log, saveDelayMs: init.saveDelayMs }) : null;
  }

  get size(): number {
    return this.nodes.size;
  }

  get fileCount(): number {
    return this.totalFiles;
  }

  /** What the records cost in all (recordBytes). */
  get byteCount(): number {
    return this.totalBytes;
  }

  /** Nodes that gave way to newcomers of other addresses since the start. */
  get evictions(): number {
    return this.evicted;
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /**
   * Register, or replace our own earlier registration (a restart: same id, new instance; or
   * the node moved to another address). `signer` is the node id whose key signed the request.
   */
  register(req: RegisterRequest, from: string, signer: string): NodeRecord {
    if (signer !== req.id) throw new RegistryError(403, `node id ${req.id} is not the id of the key that signed this request (${signer})`);
    const source = normalizeAddress(from);
    const host = req.host ?? source;
    if (host !== source && !isLoopbackAddress(source)) throw new RegistryError(403, `address does not belong to the sender: ${host} (request came from ${source})`);
    const now = this.now();
    const banned = this.quarantine.get(`${req.id}/${req.instance}`);
    if (banned !== undefined && banned > now) {
      throw new RegistryError(409, `other nodes reported ${req.id} unreachable; this instance may register again in ${Math.ceil((banned - now) / 1000)} s`);
    }
    const old = this.nodes.get(req.id);
    const bucket = addressBucket(source);
    const bytes = recordBytes(req);
    const share = this.perAddress.get(bucket) ?? { nodes: 0, files: 0, bytes: 0 };
    const mine = old?.bucket === bucket ? old : undefined;
    const after = { nodes: share.nodes + (mine ? 0 : 1), files: share.files + req.files.length - (mine?.files.length ?? 0), bytes: share.bytes + bytes - (mine?.bytes ?? 0) };
    if (after.nodes > (this.init.maxNodesPerAddress ?? DEFAULT_MAX_NODES_PER_ADDRESS)) throw new RegistryError(429, 'too many nodes from this address');
    this.checkShare(after);
    this.makeRoom(bucket, after, { nodes: old ? 0 : 1, files: req.files.length - (old?.files.length ?? 0), bytes: bytes - (old?.bytes ?? 0) }, old);
    if (old) this.remove(old);
    const record: Entry = {
      id: req.id,
      instance: req.instance,
      name: req.name,
      host,
      port: req.port,
      source,
      bucket,
      bytes: 0,
      files: [],
      lowerNames: [],
      downloads: [],
      registeredAt: old && old.instance === req.instance ? old.registeredAt : now,
      lastSeen: now,
      expiresAt: now + this.ttlMs,
      reports: new Map(),
      newer: null,
      older: null,
    };
    this.add(record);
    this.setContent(record, req.files, req.downloads);
    this.changed(record.id);
    return record;
  }

  /** A sign of life, maybe with new files (omitted = unchanged) and download progress. */
  heartbeat(id: string, req: HeartbeatRequest, from: string, signer: string): NodeRecord {
    const record = this.owned(id, req.instance, signer);
    if (addressBucket(from) !== record.bucket) throw new RegistryError(403, `node ${id} is registered from another address: register again`);
    const now = this.now();
    record.lastSeen = now;
    record.expiresAt = now + this.ttlMs;
    this.order.touch(record);
    const files = req.files && !sameFiles(record.files, req.files) ? req.files : undefined;
    const downloads = req.downloads && !sameDownloads(record.downloads, req.downloads) ? req.downloads : undefined;
    if (!files && !downloads) return record;
    const nextFiles = files ?? record.files;
    const nextDownloads = downloads ?? record.downloads;
    const share = this.perAddress.get(record.bucket)!;
    const bytes = recordBytes({ name: record.name, files: nextFiles, downloads: nextDownloads });
    const delta = { nodes: 0, files: nextFiles.length - record.files.length, bytes: bytes - record.bytes };
    const after = { nodes: share.nodes, files: share.files + delta.files, bytes: share.bytes + delta.bytes };
    this.checkShare(after);
    this.makeRoom(record.bucket, after, delta, record);
    this.setContent(record, nextFiles, nextDownloads);
    this.changed(record.id);
    return record;
  }

  unregister(id: string, instance: string, signer: string): void {
    this.remove(this.owned(id, instance, signer));
    this.changed(id);
  }

  /**
   * `reporterId` cannot reach `targetId` (`signer` signed the report). It counts only when
   * the reporter is registered and has been told of the target since the target registered;
   * reporters count once per address (per id on loopback, this machine's own nodes), so a
   * few sybils cannot drop a node that the many reach. See the top of this file.
   */
  report(targetId: string, reporterId: string, signer: string): { dropped: boolean } {
    if (signer !== reporterId) throw new RegistryError(403, `a report must be signed by its reporter's key (signed by ${signer}, names ${reporterId})`);
    const reporter = this.nodes.get(reporterId);
    if (!reporter) throw new RegistryError(403, 'the reporter must be a registered node');
    if (targetId === reporterId) throw new RegistryError(400, 'a node cannot report itself');
    const target = this.nodes.get(targetId);
    if (!target) throw new RegistryError(404, `unknown node ${targetId}`);
    if (reporter.lastSeen < target.registeredAt) throw new RegistryError(409, `${reporterId} has not been told of ${targetId} yet: it cannot have tried it`);
    const now = this.now();
    const window = this.init.reportWindowMs ?? DEFAULT_REPORT_WINDOW_MS;
    for (const [k, t] of target.reports) if (now - t > window) target.reports.delete(k);
    target.reports.set(reporter.bucket === LOOPBACK_BUCKET ? `id:${reporterId}` : reporter.bucket, now);
    const needed = this.quorum(target);
    if (target.reports.size < needed) return { dropped: false };
    this.log.info({ node: targetId, host: `${target.host}:${target.port}`, reporters: target.reports.size, needed }, 'node reported unreachable: dropped');
    this.quarantine.set(`${target.id}/${target.instance}`, now + (this.init.quarantineMs ?? DEFAULT_QUARANTINE_MS));
    this.remove(target);
    this.changed(target.id);
    return { dropped: true };
  }

  /** Distinct reporters that drop `target`: see the top of this file. */
  private quorum(target: Entry): number {
    let told = 0;
    for (const r of this.nodes.values()) if (r !== target && r.lastSeen >= target.registeredAt) told++;
    const threshold = Math.max(1, Math.min(this.init.reportThreshold ?? DEFAULT_REPORT_THRESHOLD, told));
    return Math.max(threshold, Math.min(MAX_REPORT_QUORUM, Math.ceil(told * REPORT_QUORUM_SHARE)));
  }

  /** Drop nodes whose heartbeats stopped; returns their ids. */
  expire(now = this.now()): string[] {
    const gone: string[] = [];
    for (const r of this.nodes.values()) {
      if (r.expiresAt > now) continue;
      gone.push(r.id);
      this.remove(r);
      this.store?.changed(r.id);
    }
    for (const [k, until] of this.quarantine) if (until <= now) this.quarantine.delete(k);
    if (gone.length > 0) {
      this.log.info({ nodes: gone.slice(0, 10), count: gone.length }, 'nodes expired');
      this.emit('change');
    }
    return gone;
  }

  /** Every node, freshest first. */
  list(): NodeRecord[] {
    return [...this.order.freshestFirst()];
  }

  /** The other nodes for a register/heartbeat answer, freshest first. */
  peersFor(selfId: string, limit: number, hostFor: HostMap = sameHost): { nodes: PeerView[]; truncated: boolean } {
    const nodes: PeerView[] = [];
    let truncated = false;
    for (const r of this.order.freshestFirst()) {
      if (r.id === selfId) continue;
      if (nodes.length >= limit) {
        truncated = true;
        break;
      }
      nodes.push({ id: r.id, instance: r.instance, name: r.name, host: hostFor(r.host), port: r.port });
    }
    return { nodes, truncated };
  }

  view(r: NodeRecord, hostFor: HostMap = sameHost): NodeView {
    return {
      id: r.id,
      instance: r.instance,
      name: r.name,
      host: hostFor(r.host),
      port: r.port,
      role: r.downloads.length > 0 ? 'LEECHER' : 'SEEDER',
      files: r.files.length,
      shares: r.files.slice(0, MAX_SHARES_SHOWN).map((f) => f.name),
      downloads: r.downloads.slice(0, MAX_DOWNLOADS_SHOWN).map((d) => ({ infohash: d.infohash, name: d.name, percent: Math.round(d.progress * 1000) / 10 })),
      downloadCount: r.downloads.length,
      lastSeen: r.lastSeen,
      registeredAt: r.registeredAt,
    };
  }

  /** Files whose name contains `query` (see searchShares), freshest nodes first. */
  search(query: string, hostFor: HostMap = sameHost): SearchHit[] {
    return searchShares(this.order.freshestFirst(), query, hostFor);
  }

  /** Up to `limit` nodes that share `infohash` complete (lower-case hex): seeds the tracker adds to its peers. */
  seedsOf(infohash: string, limit = Infinity): NodeRecord[] {
    return this.seeds.seedsOf(infohash, limit);
  }

  seedCount(infohash: string): number {
    return this.seeds.seedCount(infohash);
  }

  /** Distinct files shared complete by some node (an infohash counts once) and their bytes. */
  shareTotals(): { files: number; bytes: number } {
    return this.seeds.totals();
  }

  // ---- persistence ---------------------------------------------------------------------

  /** Read the saved nodes, if any. A damaged node file is kept as `<file>.bad` and skipped. */
  async load(): Promise<void> {
    if (!this.store) return;
    const { nodes } = await this.store.read();
    const now = this.now();
    let skipped = 0;
    // Oldest first, so the last-seen order comes back as it was.
    for (const n of nodes.sort((a, b) => a.lastSeen - b.lastSeen)) {
      try {
        const r = this.register({ id: n.id, instance: n.instance, name: n.name, port: n.port, host: n.host, files: n.files, downloads: n.downloads }, n.source, n.id);
        r.registeredAt = n.registeredAt;
        r.lastSeen = Math.min(n.lastSeen, now);
      } catch {
        skipped++;
      }
    }
    const dir = this.store.dir;
    if (skipped > 0) this.log.warn({ dir, skipped }, 'registry: skipped saved nodes past the bounds');
    this.log.info({ dir, nodes: this.nodes.size }, 'registry loaded');
    // Loading is not a change worth writing back.
    this.store.inStep();
  }

  /** Write every change now (after any write in progress). */
  save(): Promise<void> {
    return this.store ? this.store.save() : Promise.resolve();
  }

  /** Flush pending writes; the registry stays usable (a later change schedules a save again). */
  async close(): Promise<void> {
    await this.save();
  }

  // ---- internals ----------------------------------------------------------------------

  /** Only the node's own key acts for its id (the server checked the signature); and only its current instance. */
  private owned(id: string, instance: string, signer: string): Entry {
    if (signer !== id) throw new RegistryError(403, `node id ${id} is not the id of the key that signed this request (${signer})`);
    const r = this.nodes.get(id);
    if (!r) throw new RegistryError(404, `unknown node ${id}: register again`);
    if (r.instance !== instance) throw new RegistryError(403, `node ${id} is registered by another instance`);
    return r;
  }

  /** The per-address bounds (429). */
  private checkShare(after: Share): void {
    if (after.files > (this.init.maxFilesPerAddress ?? DEFAULT_MAX_FILES_PER_ADDRESS)) throw new RegistryError(429, 'too many shared files from this address');
    if (after.bytes > (this.init.maxBytesPerAddress ?? DEFAULT_MAX_BYTES_PER_ADDRESS)) throw new RegistryError(429, 'this address holds as many bytes as it may');
  }

  /**
   * The totals with `delta` added must fit: if not, the stalest nodes of the address that
   * holds the most give way, as long as it holds more than `bucket` would (`after`); else
   * 503. `keep` (the node being replaced or changed) never gives way to itself.
   */
  private makeRoom(bucket: string, after: Share, delta: Share, keep?: Entry): void {
    const maxNodes = this.init.maxNodes ?? DEFAULT_MAX_NODES;
    const maxFiles = this.init.maxFiles ?? DEFAULT_MAX_FILES;
    const maxBytes = this.init.maxBytes ?? DEFAULT_MAX_BYTES;
    for (;;) {
      const over =
        this.nodes.size + delta.nodes > maxNodes ? 'nodes' : this.totalFiles + delta.files > maxFiles ? 'files' : this.totalBytes + delta.bytes > maxBytes ? 'bytes' : null;
      if (!over) return;
      let top: string | null = null;
      let most = after[over];
      for (const [b, share] of this.perAddress) {
        if (b !== bucket && share[over] > most) [top, most] = [b, share[over]];
      }
      const victim = top === null ? undefined : this.stalestOf(top, keep);
      if (!victim) {
        throw new RegistryError(503, over === 'nodes' ? 'the registry is full' : over === 'files' ? 'the registry holds as many files as it can' : 'the registry holds as many bytes as it can');
      }
      this.evicted++;
      this.log.info({ node: victim.id, address: victim.bucket, for: bucket, full: over, evictions: this.evicted }, 'registry full: the stalest node of the largest address gave way');
      this.remove(victim);
      this.store?.changed(victim.id);
    }
  }

  private stalestOf(bucket: string, keep?: Entry): Entry | undefined {
    for (const r of this.order.stalestFirst()) if (r.bucket === bucket && r !== keep) return r;
    return undefined;
  }

  private add(r: Entry): void {
    this.nodes.set(r.id, r);
    this.order.push(r);
    const c = this.perAddress.get(r.bucket) ?? { nodes: 0, files: 0, bytes: 0 };
    c.nodes++;
    this.perAddress.set(r.bucket, c);
  }

  private remove(r: Entry): void {
    this.setContent(r, [], []);
    this.nodes.delete(r.id);
    this.order.remove(r);
    const c = this.perAddress.get(r.bucket);
    if (c) {
      c.bytes -= r.bytes;
      this.totalBytes -= r.bytes;
      r.bytes = 0;
      if (--c.nodes <= 0) this.perAddress.delete(r.bucket);
    }
  }

  /** Replace a node's files and downloads, keeping the counters and the seed index in step. */
  private setContent(r: Entry, files: FileEntry[], downloads: Download[]): void {
    this.seeds.remove(r);
    const c = this.perAddress.get(r.bucket);
    const bytes = this.nodes.get(r.id) === r ? recordBytes({ name: r.name, files, downloads }) : 0;
    if (c) {
      c.files += files.length - r.files.length;
      c.bytes += bytes - r.bytes;
    }
    this.totalFiles += files.length - r.files.length;
    this.totalBytes += bytes - r.bytes;
    r.bytes = bytes;
    r.files = files;
    r.downloads = downloads;
    r.lowerNames = files.map((f) => f.name.toLowerCase());
    this.seeds.add(r);
  }

  private changed(id: string): void {
    this.store?.changed(id);
    this.emit('change');
  }
}

/** What one address's nodes hold. */
interface Share {
  nodes: number;
  files: number;
  bytes: number;
}

function sameFiles(a: FileEntry[], b: FileEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.infohash !== y.infohash || x.name !== y.name || x.size !== y.size || x.complete !== y.complete) return false;
  }
  return true;
}

function sameDownloads(a: Download[], b: Download[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.infohash !== y.infohash || x.name !== y.name || x.progress !== y.progress) return false;
  }
  return true;
}
