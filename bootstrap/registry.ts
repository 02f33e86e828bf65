/**
 * The bootstrap server's registry of nodes: pure state, no HTTP. Who is registered, from
 * which address, what each shares and downloads, and who reported whom unreachable. Every
 * operation takes the sender's address so the ownership rules live here, where they can be
 * tested without sockets.
 *
 * Bounds: total nodes, nodes and shared files per source address, shared files in total.
 * Around it: share-index.ts (search, who seeds what), last-seen.ts (the freshest-first
 * order), registry-file.ts (the file; a node loaded from it gets a fresh TTL, so it can
 * heartbeat again after a restart).
 */
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../network/util/log.js';
import { isLoopbackAddress, normalizeAddress } from '../network/util/addresses.js';
import {
  MAX_DOWNLOADS_SHOWN, MAX_SHARES_SHOWN,
  type Download, type FileEntry, type HeartbeatRequest, type NodeView, type PeerView, type RegisterRequest, type SearchHit,
} from '../network/wire/bootstrap-api.js';
import { LastSeenList, type LastSeenLinks } from './last-seen.js';
import { RegistryFile } from './registry-file.js';
import { SeedIndex, searchShares } from './share-index.js';

export const DEFAULT_TTL_MS = 90_000;
export const DEFAULT_MAX_NODES = 10_000;
export const DEFAULT_MAX_NODES_PER_ADDRESS = 64;
export const DEFAULT_MAX_FILES_PER_ADDRESS = 100_000;
export const DEFAULT_MAX_FILES = 1_000_000;
export const DEFAULT_REPORT_THRESHOLD = 2;
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
  /** The address it registered from: the owner of this record. */
  source: string;
  files: FileEntry[];
  /** Lower-cased names, parallel to `files`, so a search allocates nothing per file. */
  lowerNames: string[];
  downloads: Download[];
  registeredAt: number;
  lastSeen: number;
  expiresAt: number;
  /** Reporter key (address, or id on loopback) → when it reported. */
  reports: Map<string, number>;
}

/** A record with its place in the last-seen order. */
interface Entry extends NodeRecord, LastSeenLinks<Entry> {}

export interface NodeRegistryInit {
  ttlMs?: number;
  /** Where the registry is persisted; none = memory only. */
  file?: string;
  logger?: Logger;
  now?: () => number;
  maxNodes?: number;
  maxNodesPerAddress?: number;
  maxFilesPerAddress?: number;
  maxFiles?: number;
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
  private readonly perAddress = new Map<string, { nodes: number; files: number }>();
  /** `id/instance` → until when a node dropped as unreachable may not come back. */
  private readonly quarantine = new Map<string, number>();
  private totalFiles = 0;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly file: RegistryFile | null;

  constructor(private readonly init: NodeRegistryInit = {}) {
    super();
    this.ttlMs = init.ttlMs ?? DEFAULT_TTL_MS;
    this.log = init.logger ?? silentLogger();
    this.now = init.now ?? Date.now;
    this.file = init.file
      ? new RegistryFile({ path: init.file, nodes: () => this.nodes.values(), logger: this.log, now: this.now, saveDelayMs: init.saveDelayMs })
      : null;
  }

  get size(): number {
    return this.nodes.size;
  }

  get fileCount(): number {
    return this.totalFiles;
  }

  get(id: string): NodeRecord | undefined {
    return this.nodes.get(id);
  }

  /** Register, or replace our own earlier registration (a restart: same id, new instance). */
  register(req: RegisterRequest, from: string): NodeRecord {
    const source = normalizeAddress(from);
    const host = req.host ?? source;
    if (host !== source && !isLoopbackAddress(source)) throw new RegistryError(403, `address does not belong to the sender: ${host} (request came from ${source})`);
    const now = this.now();
    const banned = this.quarantine.get(`${req.id}/${req.instance}`);
    if (banned !== undefined && banned > now) {
      throw new RegistryError(409, `other nodes reported ${req.id} unreachable; this instance may register again in ${Math.ceil((banned - now) / 1000)} s`);
    }
    const old = this.nodes.get(req.id);
    if (old && !this.owns(old, source)) throw new RegistryError(403, `node id ${req.id} is registered from another address`);
    const counts = this.perAddress.get(source) ?? { nodes: 0, files: 0 };
    const sameSource = old?.source === source;
    const extraNodes = sameSource ? 0 : 1;
    const extraFiles = req.files.length - (sameSource ? old.files.length : 0);
    if (!old && this.nodes.size >= (this.init.maxNodes ?? DEFAULT_MAX_NODES)) throw new RegistryError(503, 'the registry is full');
    if (counts.nodes + extraNodes > (this.init.maxNodesPerAddress ?? DEFAULT_MAX_NODES_PER_ADDRESS)) throw new RegistryError(429, 'too many nodes from this address');
    this.checkFiles(counts.files + extraFiles, this.totalFiles + req.files.length - (old?.files.length ?? 0));
    if (old) this.remove(old);
    const record: Entry = {
      id: req.id,
      instance: req.instance,
      name: req.name,
      host,
      port: req.port,
      source,
      files: [],
      lowerNames: [],
      downloads: req.downloads,
      registeredAt: old && old.instance === req.instance ? old.registeredAt : now,
      lastSeen: now,
      expiresAt: now + this.ttlMs,
      reports: new Map(),
      newer: null,
      older: null,
    };
    this.add(record);
    this.setFiles(record, req.files);
    this.changed();
    return record;
  }

  /** A sign of life, maybe with new files (omitted = unchanged) and download progress. */
  heartbeat(id: string, req: HeartbeatRequest, from: string): NodeRecord {
    const record = this.owned(id, req.instance, from);
    const now = this.now();
    record.lastSeen = now;
    record.expiresAt = now + this.ttlMs;
    this.order.touch(record);
    let changed = false;
    if (req.files && !sameFiles(record.files, req.files)) {
      const counts = this.perAddress.get(record.source)!;
      const delta = req.files.length - record.files.length;
      this.checkFiles(counts.files + delta, this.totalFiles + delta);
      this.setFiles(record, req.files);
      changed = true;
    }
    if (req.downloads && !sameDownloads(record.downloads, req.downloads)) {
      record.downloads = req.downloads;
      changed = true;
    }
    if (changed) this.changed();
    return record;
  }

  unregister(id: string, instance: string, from: string): void {
    this.remove(this.owned(id, instance, from));
    this.changed();
  }

  /**
   * `reporter` cannot reach `target`. Distinct reporters count once each, by address (by id
   * on loopback, where many test nodes share one), so one machine cannot outvote the rest.
   * Enough of them — the threshold, or every other live node when fewer exist — drop it.
   */
  report(targetId: string, reporterId: string, from: string): { dropped: boolean } {
    const source = normalizeAddress(from);
    const reporter = this.nodes.get(reporterId);
    if (!reporter || !this.owns(reporter, source)) throw new RegistryError(403, 'the reporter must be a node registered from this address');
    if (targetId === reporterId) throw new RegistryError(400, 'a node cannot report itself');
    const target = this.nodes.get(targetId);
    if (!target) throw new RegistryError(404, `unknown node ${targetId}`);
    const now = this.now();
    const window = this.init.reportWindowMs ?? DEFAULT_REPORT_WINDOW_MS;
    for (const [k, t] of target.reports) if (now - t > window) target.reports.delete(k);
    target.reports.set(isLoopbackAddress(source) ? `id:${reporterId}` : source, now);
    const needed = Math.max(1, Math.min(this.init.reportThreshold ?? DEFAULT_REPORT_THRESHOLD, this.nodes.size - 1));
    if (target.reports.size < needed) return { dropped: false };
    this.log.info({ node: targetId, host: `${target.host}:${target.port}`, reporters: target.reports.size }, 'node reported unreachable: dropped');
    this.quarantine.set(`${target.id}/${target.instance}`, now + (this.init.quarantineMs ?? DEFAULT_QUARANTINE_MS));
    this.remove(target);
    this.changed();
    return { dropped: true };
  }

  /** Drop nodes whose heartbeats stopped; returns their ids. */
  expire(now = this.now()): string[] {
    const gone: string[] = [];
    for (const r of this.nodes.values()) {
      if (r.expiresAt > now) continue;
      gone.push(r.id);
      this.remove(r);
    }
    for (const [k, until] of this.quarantine) if (until <= now) this.quarantine.delete(k);
    if (gone.length > 0) {
      this.log.info({ nodes: gone.slice(0, 10), count: gone.length }, 'nodes expired');
      this.changed();
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

  /** Read the file, if any. A damaged file is kept as `<file>.bad` and the registry starts empty. */
  async load(): Promise<void> {
    const nodes = await this.file?.read();
    if (!this.file || !nodes) return;
    const now = this.now();
    let skipped = 0;
    // Oldest first, so the last-seen order comes back as it was.
    for (const n of nodes.sort((a, b) => a.lastSeen - b.lastSeen)) {
      try {
        const r = this.register({ id: n.id, instance: n.instance, name: n.name, port: n.port, host: n.host, files: n.files, downloads: n.downloads }, n.source);
        r.registeredAt = n.registeredAt;
        r.lastSeen = Math.min(n.lastSeen, now);
      } catch {
        skipped++;
      }
    }
    const file = this.file.path;
    if (skipped > 0) this.log.warn({ file, skipped }, 'registry file: skipped nodes past the bounds');
    this.log.info({ file, nodes: this.nodes.size }, 'registry loaded');
    // Loading is not a change worth writing back.
    this.file.inStep();
  }

  /** Write the registry now (after any write in progress). */
  save(): Promise<void> {
    return this.file ? this.file.save() : Promise.resolve();
  }

  /** Flush pending writes; the registry stays usable (a later change schedules a save again). */
  async close(): Promise<void> {
    await this.save();
  }

  // ---- internals ----------------------------------------------------------------------

  /** Loopback may act for anyone registered from this machine; others only for their own address. */
  private owns(r: NodeRecord, source: string): boolean {
    return r.source === source || isLoopbackAddress(source);
  }

  private owned(id: string, instance: string, from: string): Entry {
    const r = this.nodes.get(id);
    if (!r) throw new RegistryError(404, `unknown node ${id}: register again`);
    if (r.instance !== instance) throw new RegistryError(403, `node ${id} is registered by another instance`);
    if (!this.owns(r, normalizeAddress(from))) throw new RegistryError(403, `node ${id} is registered from another address`);
    return r;
  }

  private checkFiles(addressFiles: number, total: number): void {
    if (addressFiles > (this.init.maxFilesPerAddress ?? DEFAULT_MAX_FILES_PER_ADDRESS)) throw new RegistryError(429, 'too many shared files from this address');
    if (total > (this.init.maxFiles ?? DEFAULT_MAX_FILES)) throw new RegistryError(503, 'the registry holds as many files as it can');
  }

  private add(r: Entry): void {
    this.nodes.set(r.id, r);
    this.order.push(r);
    const c = this.perAddress.get(r.source) ?? { nodes: 0, files: 0 };
    c.nodes++;
    this.perAddress.set(r.source, c);
  }

  private remove(r: Entry): void {
    this.setFiles(r, []);
    this.nodes.delete(r.id);
    this.order.remove(r);
    const c = this.perAddress.get(r.source);
    if (c && --c.nodes <= 0) this.perAddress.delete(r.source);
  }

  /** Replace a node's files, keeping the counters and the seed index in step. */
  private setFiles(r: NodeRecord, files: FileEntry[]): void {
    this.seeds.remove(r);
    const c = this.perAddress.get(r.source);
    if (c) c.files += files.length - r.files.length;
    this.totalFiles += files.length - r.files.length;
    r.files = files;
    r.lowerNames = files.map((f) => f.name.toLowerCase());
    this.seeds.add(r);
  }

  private changed(): void {
    this.file?.changed();
    this.emit('change');
  }
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
