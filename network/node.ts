import os from 'node:os';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { nanoid } from 'nanoid';
import { silentLogger, type Logger } from './util/log.js';
import { HashPool } from './library/hash-pool.js';
import { Library, type SharedFile } from './library/library.js';
import { encodeTorrent, fromInfo, DEFAULT_PIECE_LENGTH, type Metainfo } from './metainfo/metainfo.js';
import { PeerServer } from './peer-server.js';
import { MAX_FILES, MAX_PEERS, type ControlRequest, type ControlResponse, type FileEntry } from './wire/control-codec.js';
import { MAX_FILES_PER_NODE } from './wire/bootstrap-api.js';
import { controlRequest, fetchMetainfo } from './control/control-client.js';
import { TrackerClient } from './tracker/announce.js';
import { PeerRegistry, type KnownPeer } from './discovery/peer-registry.js';
import { detectLanAddress, isLoopbackAddress, localAddresses } from './util/addresses.js';
import type { DiscoveryHealth, PeerDiscovery, PeerSource } from './discovery/discovery.js';
import { MulticastDiscovery } from './discovery/multicast.js';
import { BootstrapClient } from './discovery/bootstrap-client.js';
import type { Subscriber } from './control/control-server.js';
import { Watcher } from './catalog/watcher.js';
import { Torrent, DEFAULT_SWARM_LIMITS, type SwarmLimits, type TorrentStats, type PeerStat } from './swarm/torrent.js';
import { DEFAULT_PEER_TIMEOUTS, type Peer, type PeerTimeouts } from './swarm/peer.js';
import { RateLimiter, RateMeter } from './swarm/rate.js';
import { clientName } from './swarm/client-name.js';
import { PartFile } from './storage/part-file.js';
import { SeedStore } from './storage/seed-store.js';
import { exists } from './storage/stores.js';
import { parseTarget } from './downloads/targets.js';
import type { Bitfield } from './wire/bitfield.js';
import { makeMagnet } from './metainfo/magnet.js';
import { Holders, holderKey } from './catalog/holders.js';
import {
  UnknownContentError, checkRange, readFileRange, readVerified,
  type ContentInfo, type ReadOptions, type VerifiedSource,
} from './downloads/content.js';
import { importFile as importInto, type ImportOptions } from './library/import.js';

export { ContentUnavailableError, UnknownContentError, type ContentInfo, type ReadOptions } from './downloads/content.js';
export {
  ImportError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError, DEFAULT_MAX_IMPORT_BYTES, type ImportOptions,
} from './library/import.js';
export type { PeerStat } from './swarm/torrent.js';

export interface NodeInit {
  /** TCP port for peers and control (0 picks a free one). */
  port: number;
  /** Listen address; every interface by default. */
  listenHost?: string;
  /** The address we tell others; the first LAN IPv4 address by default. */
  announceHost?: string;
  sharedDir: string;
  downloadDir: string;
  /** Node state (hash cache, resume records); `<downloads>/.shoal` by default. */
  stateDir?: string;
  name?: string;
  pieceLength?: number;
  peers?: Array<{ host: string; port: number }>;
  /** HTTP trackers to announce every shared file to. */
  trackers?: string[];
  maxConnections?: number;
  /** Upload limit in bytes per second; 0 = none. */
  maxUploadRate?: number;
  hashWorkers?: number;
  limits?: Partial<SwarmLimits>;
  timeouts?: Partial<PeerTimeouts>;
  controlIdleMs?: number;
  /** Per-peer timeout for searches and metainfo requests. */
  queryTimeoutMs?: number;
  /** Follow changes in the shared folders (default true). */
  watch?: boolean;
  /** Stable node id; by default kept in the state folder per port (fresh for port 0). */
  id?: string;
  /** LAN discovery by multicast beacons; `false` turns it off. On by default. */
  multicast?: false | MulticastOptions;
  /** Bootstrap server URL (http://host:port); none by default. */
  bootstrap?: string;
  /** Glob patterns: download every matching file that appears on the network. */
  watchPatterns?: string[];
  /** How often to ask a few peers for the peers they know (0 = never). */
  gossipIntervalMs?: number;
  /** `refreshHolders()` asks each peer for its list at most this often (default a minute). */
  holdersListIntervalMs?: number;
  logger?: Logger;
}

export interface MulticastOptions {
  group?: string;
  port?: number;
  interfaces?: string[];
  ttl?: number;
  intervalMs?: number;
}

export interface SearchResult {
  infohash: string;
  name: string;
  size: number;
  /** Nodes known to have this file (answered a search, or listed by the bootstrap index). */
  peers: Array<{ id?: string; host: string; port: number }>;
  /** Where the answers came from. */
  via: Array<'peers' | 'bootstrap'>;
}

export interface DownloadInfo extends TorrentStats {
  state: 'downloading' | 'paused' | 'done' | 'failed';
  /** When this download started (ms since the epoch; this run's start for a resumed one). */
  startedAt: number;
  /** Seconds left at the current rate; null when paused, stalled, done or failed. */
  eta: number | null;
  path?: string;
  error?: string;
}

/** A download with its verified-pieces bitfield (BEP 3 order, a copy) and its connected peers. */
export type DownloadDetail = DownloadInfo & { bitfield: Buffer; peerList: PeerStat[] };

/** Payload bytes and rates of every torrent this node ran since it started, seeding included. */
export interface TransferTotals {
  downloaded: number;
  uploaded: number;
  downloadRate: number;
  uploadRate: number;
}

export interface NodeEvents {
  'peer-up': [peer: KnownPeer];
  'peer-down': [peer: KnownPeer];
  'discovery-health': [source: PeerSource, health: DiscoveryHealth];
  /** A watched pattern matched a file on the network and its download started. */
  watched: [file: FileEntry, pattern: string, infohash: string];
  'file-added': [file: SharedFile];
  'file-removed': [file: SharedFile];
  progress: [info: DownloadInfo];
  done: [info: DownloadInfo];
  /** A download started, paused, resumed, finished or failed. */
  'download-state': [info: DownloadInfo];
  /** Cancelled: it is gone from the list. */
  'download-removed': [infohash: string];
  /** The number of other nodes known to share `infohash` changed. */
  holders: [infohash: string, count: number];
  error: [err: Error, infohash?: string];
}

export const DEFAULT_MAX_CONNECTIONS = 256;
/** Nodes that may hold a `subscribe` stream to this one at once. */
export const MAX_SUBSCRIBERS = 64;

interface Download {
  torrent: Torrent;
  /** Its .part (null when the file was shared here already). */
  part: PartFile | null;
  trackers: TrackerClient | null;
  /** Trackers to announce to (again after a resume). */
  trackerUrls: string[];
  state: DownloadInfo['state'];
  path?: string;
  error?: string;
  done: Promise<string>;
  startedAt: number;
  /** Readers waiting for a piece: told of every verified piece and change of state. */
  waiters: Set<() => void>;
}

/**
 * A Shoal node: shares a folder, serves it on one peer port, downloads from other nodes.
 * This is the one facade both front ends drive (start, stop, search, download, cancel, and
 * the typed events); nothing above it reaches past it.
 */
export class Node extends EventEmitter<NodeEvents> {
  readonly id: string;
  /** Changes at every start, so peers notice a restart at once. */
  readonly instance = nanoid(12);
  readonly peerId = Buffer.concat([Buffer.from('-SH0100-'), Buffer.from(randomBytes(9).toString('base64url').slice(0, 12))]);
  readonly log: Logger;
  readonly registry: PeerRegistry;
  readonly library: Library;
  readonly downloadDir: string;
  readonly sharedDir: string;
  private readonly hashPool: HashPool;
  private readonly server: PeerServer;
  private readonly torrents = new Map<string, Torrent>();
  private readonly downloads = new Map<string, Download>();
  private readonly seedTrackers = new Map<string, TrackerClient>();
  private readonly uploadLimiter: RateLimiter;
  private readonly limits: SwarmLimits;
  private readonly timeouts: PeerTimeouts;
  private readonly stateDir: string;
  private started = false;
  private stopping: Promise<void> | null = null;
  private lastProgress = new Map<string, number>();
  /** Downloads whose .part is being opened (and maybe rechecked) right now. */
  private readonly starting = new Map<string, Promise<void>>();
  private readonly sources: PeerDiscovery[] = [];
  private bootstrapClient: BootstrapClient | null = null;
  private readonly subscribers = new Set<Subscriber>();
  readonly watcher: Watcher;
  private readonly gossiped = new Map<string, number>();
  private gossipTimer: NodeJS.Timeout | null = null;
  private readonly holderIndex: Holders;
  private readonly meters = { down: new RateMeter(), up: new RateMeter() };
  private startTime = Date.now();

  constructor(private readonly init: NodeInit) {
    super();
    this.log = init.logger ?? silentLogger();
    this.sharedDir = path.resolve(init.sharedDir);
    this.downloadDir = path.resolve(init.downloadDir);
    this.stateDir = path.resolve(init.stateDir ?? path.join(this.downloadDir, '.shoal'));
    this.limits = { ...DEFAULT_SWARM_LIMITS, ...init.limits };
    this.timeouts = { ...DEFAULT_PEER_TIMEOUTS, ...init.timeouts };
    this.uploadLimiter = new RateLimiter(init.maxUploadRate ?? 0);
    this.hashPool = new HashPool({ workers: init.hashWorkers });
    this.library = new Library({
      folders: [this.sharedDir, this.downloadDir],
      cacheFile: path.join(this.stateDir, 'hash-cache.json'),
      hashPool: this.hashPool,
      pieceLength: init.pieceLength ?? DEFAULT_PIECE_LENGTH,
      logger: this.log,
      watch: init.watch ?? true,
    });
    this.id = init.id ?? loadNodeId(this.stateDir, init.port);
    this.registry = new PeerRegistry({ self: { id: this.id, port: init.port } });
    this.holderIndex = new Holders({ registry: this.registry, logger: this.log, timeoutMs: this.queryTimeout, listIntervalMs: init.holdersListIntervalMs });
    this.holderIndex.on('change', (h, n) => this.emit('holders', h, n));
    this.watcher = new Watcher({
      registry: this.registry,
      logger: this.log,
      fetch: (f, from, pattern) => this.fetchWatched(f, from, pattern),
      observe: (from, what, files) => {
        const key = holderKey(from.host, from.port);
        const have = files.filter((f) => f.complete !== false).map((f) => f.infohash);
        if (what === 'snapshot') this.holderIndex.replace(key, have, files.length < MAX_FILES);
        else if (what === 'file-added') for (const h of have) this.holderIndex.saw(h, key);
        else for (const f of files) this.holderIndex.lost(f.infohash, key);
      },
    });
    this.server = new PeerServer({
      host: init.listenHost,
      port: init.port,
      logger: this.log,
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      peerTimeouts: this.timeouts,
      control: { idleMs: init.controlIdleMs ?? 60_000 },
      findTorrent: (h) => this.findTorrent(h.toString('hex')),
      controlHandler: { handle: (req) => this.handleControl(req), subscribe: (sub) => this.addSubscriber(sub) },
    });
    this.registry.on('peer-up', (p) => {
      this.emit('peer-up', p);
      for (const d of this.downloads.values()) if (d.state === 'downloading') d.torrent.addPeers([p]);
      if (!p.sources.has('peer')) this.gossip(p);
    });
    this.registry.on('peer-changed', (p) => {
      for (const d of this.downloads.values()) if (d.state === 'downloading') d.torrent.addPeers([p]);
    });
    this.registry.on('peer-down', (p) => this.emit('peer-down', p));
    this.registry.on('peer-unreachable', (p) => {
      this.log.info({ peer: `${p.host}:${p.port}`, id: p.id }, 'peer does not answer');
      if (p.id && p.sources.has('bootstrap')) void this.bootstrapClient?.report(p.id).catch(() => {});
    });
    this.library.on('added', (f) => {
      this.emit('file-added', f);
      this.announceShared(f);
      this.publish('file-added', f);
    });
    this.library.on('removed', (f) => {
      this.onFileRemoved(f);
      this.publish('file-removed', f);
    });
  }

  /** The port peers reach us on (after start). */
  get port(): number {
    return this.server.port;
  }

  get announceHost(): string {
    return this.init.announceHost ?? detectLanAddress();
  }

  get name(): string {
    return this.init.name ?? os.hostname();
  }

  /** When this node started (ms since the epoch). */
  get startedAt(): number {
    return this.startTime;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startTime = Date.now();
    this.holderIndex.start();
    // Listen first: the library's first scan announces files to trackers with our port.
    await this.server.start();
    this.registry.setSelf({ id: this.id, port: this.port, hosts: [...localAddresses()] });
    await this.library.start();
    for (const p of this.init.peers ?? []) this.addPeer(p.host, p.port);
    for (const pattern of this.init.watchPatterns ?? []) this.watcher.add(pattern);
    await this.startDiscovery();
    for (const m of await PartFile.pending(path.join(this.stateDir, 'resume'), this.log)) {
      const paused = await exists(this.pausedMarker(m.infoHashHex));
      this.log.info({ file: m.name, infohash: m.infoHashHex, paused }, paused ? 'found a paused download' : 'resuming download');
      this.startDownload(m, [], [], paused).catch((err: Error) => this.log.error({ err: err.message }, 'could not resume download'));
    }
    this.log.info({ port: this.port, shared: this.sharedDir, downloads: this.downloadDir, files: this.library.files().length }, 'node started');
  }

  /** Stop cleanly: close connections, flush resume records, tell trackers we left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.watcher.stop();
      this.holderIndex.stop();
      if (this.gossipTimer) clearInterval(this.gossipTimer);
      // GOODBYE and unregister first, while the peer port still answers stragglers.
      await Promise.allSettled(this.sources.map((s) => s.stop()));
      const trackers = [...this.seedTrackers.values(), ...[...this.downloads.values()].map((d) => d.trackers)];
      await Promise.allSettled(trackers.map((t) => t?.stop()));
      await this.server.stop();
      await Promise.allSettled([...this.torrents.values()].map((t) => t.stop()));
      await this.library.stop();
      await this.hashPool.close();
      this.log.info('node stopped');
    })();
    return this.stopping;
  }

  addPeer(host: string, port: number): KnownPeer | null {
    return this.registry.add(host, port, 'manual');
  }

  knownPeers(): KnownPeer[] {
    return this.registry.list();
  }

  /**
   * Ask every known peer (in parallel, each bounded by a timeout) and the bootstrap index,
   * and merge the answers by infohash, with every node known to have each file.
   */
  async search(query: string): Promise<SearchResult[]> {
    const merged = new Map<string, SearchResult>();
    const note = (f: FileEntry, node: { id?: string; host: string; port: number }, via: 'peers' | 'bootstrap') => {
      const r = merged.get(f.infohash) ?? { infohash: f.infohash, name: f.name, size: f.size, peers: [], via: [] };
      const same = (p: { id?: string; host: string; port: number }) => (p.id && p.id === node.id) || (p.host === node.host && p.port === node.port);
      if (!r.peers.some(same)) r.peers.push(node);
      if (!r.via.includes(via)) r.via.push(via);
      merged.set(f.infohash, r);
      if (f.complete !== false) this.holderIndex.saw(f.infohash, holderKey(node.host, node.port));
    };
    const asks = this.registry.list().map(async (p) => {
      try {
        const res = await controlRequest(p.host, p.port, { type: 'search', filename: query }, { timeoutMs: this.queryTimeout });
        this.registry.contact(p.host, p.port, true);
        if (res.type === 'FOUND') for (const f of res.files) note(f, { id: p.id, host: p.host, port: p.port }, 'peers');
      } catch (err) {
        this.registry.contact(p.host, p.port, false);
        this.log.debug({ peer: `${p.host}:${p.port}`, err: (err as Error).message }, 'search: peer did not answer');
      }
    });
    const index = this.bootstrapClient;
    if (index) {
      asks.push(
        index.search(query).then(
          (files) => {
            for (const f of files) for (const n of f.nodes) if (n.id !== this.id) note(f, n, 'bootstrap');
          },
          (err: Error) => this.log.debug({ err: err.message }, 'search: the bootstrap index did not answer'),
        ),
      );
    }
    await Promise.all(asks);
    return [...merged.values()]
      .filter((r) => r.peers.length > 0)
      .sort((a, b) => b.peers.length - a.peers.length || a.name.localeCompare(b.name));
  }

  /** Download every file matching `pattern` that appears on the network. */
  watch(pattern: string): void {
    this.watcher.add(pattern);
  }

  unwatch(pattern: string): boolean {
    return this.watcher.remove(pattern);
  }

  /** Health of each discovery source in use. */
  discovery(): Array<{ source: PeerSource; health: DiscoveryHealth }> {
    return this.sources.map((s) => ({ source: s.source, health: s.health() }));
  }

  /**
   * Start downloading a name, infohash, magnet link or .torrent path. Resolves with the
   * infohash once the download runs (its metainfo is known); `whenDone` waits for the file.
   */
  async download(target: string): Promise<string> {
    const t = await parseTarget(target);
    let metainfo: Metainfo | null = null;
    let hint: Array<{ host: string; port: number }> = [];
    let trackers: string[] = [];
    let infohash: string;
    switch (t.kind) {
      case 'torrent':
        metainfo = t.metainfo;
        infohash = metainfo.infoHashHex;
        break;
      case 'magnet':
        infohash = t.infohash;
        hint = t.peers;
        trackers = t.trackers;
        for (const p of t.peers) this.registry.add(p.host, p.port, 'magnet');
        break;
      case 'infohash':
        infohash = t.infohash;
        break;
      case 'name': {
        const results = await this.search(t.name);
        const exact = results.filter((r) => r.name === t.name || path.posix.basename(r.name) === t.name);
        const pick = exact.length > 0 ? exact : results;
        const hashes = new Set(pick.map((r) => r.infohash));
        if (hashes.size === 0) throw new Error(`no known peer shares a file named ${JSON.stringify(t.name)}`);
        if (hashes.size > 1)
          throw new Error(`${JSON.stringify(t.name)} is ambiguous: ${pick.map((r) => `${r.name} (${r.infohash})`).join(', ')}; use an infohash`);
        infohash = pick[0]!.infohash;
        hint = pick.flatMap((r) => r.peers);
        break;
      }
    }
    if (this.bootstrapClient) trackers = [...trackers, this.bootstrapClient.trackerUrl];
    if (this.downloads.has(infohash)) return infohash;
    const opening = this.starting.get(infohash);
    if (opening) {
      await opening;
      return infohash;
    }
    const local = this.library.byInfoHash(infohash);
    if (local) {
      this.log.info({ file: local.name }, 'already shared here: nothing to download');
      await this.recordDone(local);
      return infohash;
    }
    // Tracker URLs inside metainfo that a peer handed us are not covered by the infohash
    // check, and would make us send requests wherever that peer likes: drop them.
    metainfo ??= fromInfo((await this.fetchMetainfo(infohash, hint)).info);
    await this.startDownload(metainfo, hint, trackers);
    return infohash;
  }

  /** Resolves with the final path when the download of `infohash` is complete and verified. */
  whenDone(infohash: string): Promise<string> {
    const d = this.downloads.get(infohash);
    if (!d) return Promise.reject(new Error(`no download with infohash ${infohash}`));
    return d.done;
  }

  /** Cancel a download (running or paused): its connections close, its .part and resume record are deleted. */
  async cancel(infohashOrName: string): Promise<boolean> {
    for (const [h, d] of this.downloads) {
      if (d.state !== 'downloading' && d.state !== 'paused') continue;
      if (h !== infohashOrName.toLowerCase() && d.torrent.metainfo.name !== infohashOrName) continue;
      d.state = 'failed';
      d.error = 'cancelled';
      this.downloads.delete(h);
      this.torrents.delete(h);
      await d.trackers?.stop();
      await d.torrent.cancel();
      await this.markPaused(h, false);
      this.log.info({ file: d.torrent.metainfo.name }, 'download cancelled');
      this.poke(d);
      this.emit('download-removed', h);
      return true;
    }
    return false;
  }

  /**
   * Pause a running download: no more requests or dialing, its connections close, the
   * resume record is flushed and the .part kept. It stays paused across a restart.
   * False when there is no running download of `infohash`.
   */
  async pause(infohash: string): Promise<boolean> {
    const h = infohash.toLowerCase();
    const d = this.downloads.get(h);
    if (!d || d.state !== 'downloading') return false;
    d.state = 'paused';
    const trackers = d.trackers;
    d.trackers = null;
    // Trackers hear `stopped` in the background: a slow one must not hold the pause up.
    void trackers?.stop();
    const remember = this.markPaused(h, true).catch((err: Error) =>
      this.log.warn({ err: err.message }, 'could not record the pause: it will not outlast a restart'),
    );
    await Promise.all([d.torrent.pause(), remember]);
    // Finished (or failed, or cancelled) while the pause settled: that state stands.
    if (d.state !== 'paused' || this.downloads.get(h) !== d) {
      await this.markPaused(h, false);
      return false;
    }
    this.log.info({ file: d.torrent.metainfo.name }, 'download paused');
    this.stateChanged(d);
    return true;
  }

  /** Go on with a paused download, from every known source (its hints, known peers, trackers). */
  async resume(infohash: string): Promise<boolean> {
    const h = infohash.toLowerCase();
    const d = this.downloads.get(h);
    if (!d || d.state !== 'paused') return false;
    d.state = 'downloading';
    await this.markPaused(h, false);
    if (this.downloads.get(h) !== d || d.state !== 'downloading') return false;
    d.torrent.resume();
    d.torrent.addPeers(this.registry.list());
    if (d.trackerUrls.length > 0 && !d.trackers) {
      d.trackers = this.trackerFor(d.torrent.metainfo, d.trackerUrls, d.torrent);
      d.trackers.start();
    }
    this.log.info({ file: d.torrent.metainfo.name }, 'download resumed');
    this.stateChanged(d);
    return true;
  }

  /** One download with its piece map and its peers, or undefined. */
  downloadDetail(infohash: string): DownloadDetail | undefined {
    const d = this.downloads.get(infohash.toLowerCase());
    if (!d) return undefined;
    return { ...this.downloadInfo(d), bitfield: Buffer.from(d.torrent.store.have.bytes), peerList: d.torrent.peerStats() };
  }

  /** Payload bytes and rates over every torrent since the node started, seeding included. */
  totals(): TransferTotals {
    const { down, up } = this.meters;
    return { downloaded: down.total, uploaded: up.total, downloadRate: down.rate(), uploadRate: up.rate() };
  }

  /** Other nodes known to share `infohash`, seen within the last ten minutes. */
  holders(infohash: string): number {
    return this.holderIndex.count(infohash.toLowerCase());
  }

  /**
   * Look again who shares what: every answering known peer is asked for its list (each at
   * most once a minute, eight at a time); connected seeds count too. Returns at once.
   */
  refreshHolders(): void {
    if (this.stopping) return;
    for (const [h, t] of this.torrents) for (const p of t.peers) if (p.bitfield.complete()) this.sawSwarmPeer(h, p);
    this.holderIndex.refresh();
  }

  /** Name, size and piece length of a shared file or a download (any state), or undefined. */
  content(infohash: string): ContentInfo | undefined {
    const src = this.contentSource(infohash);
    if (!src) return undefined;
    const m = 'file' in src ? src.metainfo : src.d.torrent.metainfo;
    const complete = 'file' in src || src.d.torrent.store.have.complete();
    return { name: m.name, length: m.length, pieceLength: m.pieceLength, complete };
  }

  /**
   * Bytes `start`..`end` (inclusive) of a file. A complete file streams from disk. A download
   * gives verified pieces only: `end` comes back clamped to the run of verified pieces from
   * `start`; when `start`'s piece is missing it is fetched first and awaited up to
   * `opts.waitMs` (then ContentUnavailableError). RangeError outside the file,
   * UnknownContentError for an unknown infohash.
   */
  async readContent(infohash: string, start: number, end: number, opts: ReadOptions): Promise<{ stream: Readable; end: number }> {
    const src = this.contentSource(infohash);
    if (!src) throw new UnknownContentError(`no shared file or download has infohash ${infohash}`);
    if ('file' in src) {
      checkRange(src.metainfo.length, start, end);
      return { stream: await readFileRange(src.file, src.metainfo.length, start, end), end };
    }
    return readVerified(this.verifiedSource(src.d), start, end, opts);
  }

  /**
   * Add an uploaded file as `name` (relative) in the shared folder; resolves once the library
   * has hashed it. Refuses with BadNameError, ExistsError, NoSpaceError, TooLargeError.
   */
  importFile(name: string, body: Readable, opts: ImportOptions = {}): Promise<SharedFile> {
    return importInto(this.library, this.sharedDir, name, body, opts);
  }

  /** The .torrent of a shared file or a download. */
  torrentFile(infohash: string): Buffer | undefined {
    const m = this.metainfoOf(infohash);
    return m ? encodeTorrent(m) : undefined;
  }

  /** A magnet link for a shared file or a download, naming this node as a peer (x.pe). */
  magnet(infohash: string): string | undefined {
    const m = this.metainfoOf(infohash);
    return m ? makeMagnet(m, { peers: [{ host: this.announceHost, port: this.port }] }) : undefined;
  }

  listDownloads(): DownloadInfo[] {
    return [...this.downloads.values()].map((d) => this.downloadInfo(d));
  }

  /** Totals for status displays. */
  status(): { id: string; name: string; port: number; peers: number; files: number; connections: number; torrents: TorrentStats[] } {
    return {
      id: this.id,
      name: this.name,
      port: this.port,
      peers: this.registry.list().length,
      files: this.library.files().length,
      connections: this.server.connections,
      torrents: [...this.torrents.values()].map((t) => t.info()),
    };
  }

  // ---- internals ------------------------------------------------------------------------

  private async startDiscovery(): Promise<void> {
    const self = { id: this.id, instance: this.instance, name: this.name.slice(0, 64), port: this.port, host: this.init.announceHost };
    if (this.init.multicast !== false) {
      const m = this.init.multicast ?? {};
      this.sources.push(
        new MulticastDiscovery({
          self,
          group: m.group,
          port: m.port,
          interfaces: m.interfaces,
          ttl: m.ttl,
          intervalMs: m.intervalMs,
          logger: this.log,
        }),
      );
    }
    if (this.init.bootstrap) {
      this.bootstrapClient = new BootstrapClient({ url: this.init.bootstrap, self, state: () => this.publishedState(), logger: this.log });
      this.sources.push(this.bootstrapClient);
    }
    for (const source of this.sources) {
      source.on('peer', (p) => this.registry.see(source.source, p));
      source.on('lost', (id, reason) => this.registry.lose(source.source, id, reason));
      source.on('health', (h) => this.emit('discovery-health', source.source, h));
    }
    await Promise.all(this.sources.map((s) => s.start()));
    const every = this.init.gossipIntervalMs ?? 60_000;
    if (every > 0) {
      this.gossipTimer = setInterval(() => {
        this.registry.expire();
        const answering = this.registry.list().filter((p) => p.reachable !== 'no');
        for (let i = 0; i < 3 && answering.length > 0; i++) this.gossip(answering.splice(Math.floor(Math.random() * answering.length), 1)[0]!);
      }, every);
      this.gossipTimer.unref();
    }
  }

  /** What the bootstrap server shows of us: our files and each download's progress. */
  private publishedState(): { files: FileEntry[]; downloads: Array<{ infohash: string; name: string; progress: number }> } {
    const downloads = [...this.downloads.values()]
      .filter((d) => d.state === 'downloading')
      .map((d) => {
        const i = d.torrent.info();
        return { infohash: i.infohash, name: i.name, progress: i.pieces > 0 ? i.verified / i.pieces : 0 };
      });
    return { files: this.library.files().slice(0, MAX_FILES_PER_NODE).map(describe), downloads };
  }

  /**
   * Ask a peer which peers it knows (at most once a minute per peer). What it names is
   * second-hand: kept as source 'peer', fading unless something else confirms it.
   */
  private gossip(p: KnownPeer): void {
    const key = `${p.host}:${p.port}`;
    const now = Date.now();
    if (this.stopping || now - (this.gossiped.get(key) ?? 0) < 60_000) return;
    this.gossiped.set(key, now);
    if (this.gossiped.size > 4 * MAX_PEERS) for (const k of [...this.gossiped.keys()].slice(0, MAX_PEERS)) this.gossiped.delete(k);
    controlRequest(p.host, p.port, { type: 'peers' }, { timeoutMs: this.queryTimeout }).then(
      (res) => {
        this.registry.contact(p.host, p.port, true);
        if (res.type !== 'PEERS') return;
        if (res.self && !p.id) this.registry.see(p.sources.values().next().value ?? 'manual', { id: res.self.id, name: res.self.name, host: p.host, port: p.port });
        for (const q of res.peers) {
          // A remote peer's loopback is its own machine, not ours.
          if (isLoopbackAddress(q.host) && !isLoopbackAddress(p.host)) continue;
          this.registry.see('peer', q);
        }
      },
      (err: Error) => {
        this.registry.contact(p.host, p.port, false);
        this.log.debug({ peer: key, err: err.message }, 'peers: no answer');
      },
    );
  }

  private addSubscriber(sub: Subscriber): { snapshot: ControlResponse; unsubscribe(): void } | { refused: string } {
    if (this.subscribers.size >= MAX_SUBSCRIBERS) return { refused: `this node already has ${MAX_SUBSCRIBERS} subscribers` };
    this.subscribers.add(sub);
    this.log.debug({ peer: sub.who }, 'subscriber joined');
    const files = this.library.files().slice(0, MAX_FILES).map(describe);
    return { snapshot: { type: 'SUBSCRIBED', self: { id: this.id, name: this.name.slice(0, 64) }, files }, unsubscribe: () => this.subscribers.delete(sub) };
  }

  /** Tell subscribers and the bootstrap server that the library changed. */
  private publish(event: 'file-added' | 'file-removed', f: SharedFile): void {
    for (const sub of this.subscribers) sub.send({ type: 'EVENT', event, file: describe(f) });
    this.bootstrapClient?.publishSoon();
  }

  /** A watched pattern matched a file somewhere: fetch it unless we have or fetch it already. */
  private fetchWatched(f: FileEntry, from: KnownPeer, pattern: string): void {
    const h = f.infohash;
    if (this.stopping || this.library.byInfoHash(h) || this.downloads.has(h) || this.starting.has(h)) return;
    const hint = [{ host: from.host, port: from.port }];
    this.log.info({ file: f.name, pattern, from: `${from.host}:${from.port}` }, 'watched pattern matched: downloading');
    const extra = this.bootstrapClient ? [this.bootstrapClient.trackerUrl] : [];
    this.fetchMetainfo(h, hint)
      .then((m) => fromInfo(m.info))
      .then((m) => this.startDownload(m, hint, extra))
      .then(
        () => this.emit('watched', f, pattern, h),
        (err: Error) => this.log.warn({ file: f.name, err: err.message }, 'could not start a watched download'),
      );
  }

  private get queryTimeout(): number {
    return this.init.queryTimeoutMs ?? 3_000;
  }

  private async fetchMetainfo(infohash: string, hint: Array<{ host: string; port: number }>): Promise<Metainfo> {
    const seen = new Set<string>();
    const order = [...hint, ...this.registry.list()].filter((p) => !seen.has(`${p.host}:${p.port}`) && seen.add(`${p.host}:${p.port}`));
    if (order.length === 0) throw new Error(`no known peer to ask for ${infohash}: add one with --peer HOST:PORT`);
    try {
      return await Promise.any(order.map((p) => fetchMetainfo(p.host, p.port, infohash, { timeoutMs: this.queryTimeout })));
    } catch {
      throw new Error(`none of ${order.length} known peers has ${infohash}`);
    }
  }

  /** Start (or join the start already under way of) the download of `m`. */
  private startDownload(m: Metainfo, peers: Array<{ host: string; port: number }>, extraTrackers: string[] = [], paused = false): Promise<void> {
    const h = m.infoHashHex;
    const running = this.starting.get(h);
    if (running) return running.then(() => this.downloads.get(h)?.torrent.addPeers(peers));
    if (this.downloads.has(h)) {
      this.downloads.get(h)!.torrent.addPeers(peers);
      return Promise.resolve();
    }
    const p = this.openDownload(m, peers, extraTrackers, paused).finally(() => this.starting.delete(h));
    this.starting.set(h, p);
    return p;
  }

  private async openDownload(m: Metainfo, peers: Array<{ host: string; port: number }>, extraTrackers: string[], paused: boolean): Promise<void> {
    const { part, resumed } = await PartFile.open({
      metainfo: m,
      downloadDir: this.downloadDir,
      resumeDir: path.join(this.stateDir, 'resume'),
      hasher: this.hashPool,
      logger: this.log,
    });
    if (resumed > 0) this.log.info({ file: m.name, verified: resumed, of: m.pieceCount }, 'resuming from verified pieces on disk');
    const torrent = this.makeTorrent(m, part, paused);
    let resolve!: (p: string) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
    done.catch(() => {});
    const urls = [...new Set([...m.announce, ...extraTrackers, ...(this.init.trackers ?? [])])];
    const d: Download = {
      torrent, part, trackers: null, trackerUrls: urls, state: paused ? 'paused' : 'downloading', done, startedAt: Date.now(), waiters: new Set(),
    };
    if (urls.length > 0 && !paused) d.trackers = this.trackerFor(m, urls, torrent);
    this.downloads.set(m.infoHashHex, d);
    torrent.on('piece', () => {
      this.progress(d);
      this.poke(d);
    });
    torrent.on('done', (p) => {
      d.state = 'done';
      d.path = p;
      d.trackers?.complete();
      void this.markPaused(m.infoHashHex, false).catch(() => {});
      // Share the finished file: its digests are known, so the library need not rehash it.
      this.library.adopt(p, m.pieces, m.pieceLength).catch((err: Error) => {
        if (!this.stopping) this.log.warn({ path: p, err: err.message }, 'could not add the finished file to the library');
      });
      this.stateChanged(d);
      this.emit('done', this.downloadInfo(d));
      resolve(p);
    });
    torrent.on('error', (err) => {
      d.state = 'failed';
      d.error = err.message;
      this.stateChanged(d);
      if (this.listenerCount('error') > 0) this.emit('error', err, m.infoHashHex);
      reject(err);
    });
    this.stateChanged(d);
    torrent.finishIfComplete(); // a crash right before the rename leaves every piece verified
    // A paused torrent keeps these as candidates and dials none until resumed.
    torrent.addPeers([...peers, ...this.registry.list()]);
    d.trackers?.start();
    this.log.info({ file: m.name, infohash: m.infoHashHex, size: m.length, paused }, 'download started');
  }

  private makeTorrent(m: Metainfo, store: PartFile | SeedStore, paused = false): Torrent {
    const t = new Torrent({
      paused,
      totals: this.meters,
      metainfo: m,
      store,
      peerId: this.peerId,
      hasher: this.hashPool,
      logger: this.log,
      limits: this.limits,
      timeouts: this.timeouts,
      uploadLimiter: this.uploadLimiter,
    });
    this.torrents.set(m.infoHashHex, t);
    t.on('peer-complete', (p) => this.sawSwarmPeer(m.infoHashHex, p));
    return t;
  }

  /** Announces one torrent to `urls`; peers it hears of go to `onPeer`. */
  private newTracker(m: Metainfo, urls: string[], stats: () => { uploaded: number; downloaded: number; left: number }): TrackerClient {
    return new TrackerClient({ urls, infoHash: m.infoHash, peerId: this.peerId, port: this.port, logger: this.log, stats });
  }

  private trackerFor(m: Metainfo, urls: string[], torrent: Torrent): TrackerClient {
    const client = this.newTracker(m, urls, () => {
      const s = torrent.info();
      return { uploaded: s.uploaded, downloaded: s.downloaded, left: bytesLeft(m, torrent.store.have) };
    });
    client.on('peer', (p) => torrent.addPeers([p]));
    return client;
  }

  /** The torrent an incoming handshake asks for: a running one, or a shared file opened now. */
  private async findTorrent(infohash: string): Promise<Torrent | null> {
    const running = this.torrents.get(infohash);
    if (running) return running;
    const file = this.library.byInfoHash(infohash);
    if (!file) return null;
    const store = await SeedStore.open(file.path, file.metainfo);
    return this.torrents.get(infohash) ?? this.makeTorrent(file.metainfo, store);
  }

  private onFileRemoved(f: SharedFile): void {
    this.emit('file-removed', f);
    const h = f.metainfo.infoHashHex;
    void this.seedTrackers.get(h)?.stop();
    this.seedTrackers.delete(h);
    if (this.downloads.has(h)) return;
    const t = this.torrents.get(h);
    if (t && !this.library.byInfoHash(h)) {
      this.torrents.delete(h);
      void t.stop();
    }
  }

  private announceShared(f: SharedFile): void {
    const urls = this.init.trackers ?? [];
    const h = f.metainfo.infoHashHex;
    if (urls.length === 0 || this.seedTrackers.has(h) || this.downloads.has(h)) return;
    const client = this.newTracker(f.metainfo, urls, () => ({ uploaded: this.torrents.get(h)?.info().uploaded ?? 0, downloaded: 0, left: 0 }));
    this.seedTrackers.set(h, client);
    client.start();
  }

  /** A download of something we already share is done at once. */
  private async recordDone(f: SharedFile): Promise<void> {
    const h = f.metainfo.infoHashHex;
    const torrent = (await this.findTorrent(h))!;
    const d: Download = {
      torrent, part: null, trackers: null, trackerUrls: [], state: 'done', path: f.path, done: Promise.resolve(f.path), startedAt: Date.now(), waiters: new Set(),
    };
    this.downloads.set(h, d);
    this.stateChanged(d);
    this.emit('done', this.downloadInfo(d));
  }

  private progress(d: Download): void {
    const h = d.torrent.metainfo.infoHashHex;
    const now = Date.now();
    if (now - (this.lastProgress.get(h) ?? 0) < 200) return;
    this.lastProgress.set(h, now);
    this.emit('progress', this.downloadInfo(d));
  }

  private downloadInfo(d: Download): DownloadInfo {
    const s = d.torrent.info();
    return { ...s, state: d.state, startedAt: d.startedAt, eta: this.eta(d, s), path: d.path, error: d.error };
  }

  /** Seconds left at the current rate, or null when no rate makes sense. */
  private eta(d: Download, s: TorrentStats): number | null {
    if (d.state !== 'downloading' || s.downloadRate < 1) return null;
    return Math.ceil(bytesLeft(d.torrent.metainfo, d.torrent.store.have) / s.downloadRate);
  }

  private stateChanged(d: Download): void {
    this.poke(d);
    this.emit('download-state', this.downloadInfo(d));
  }

  /** Wake the readers waiting on this download. */
  private poke(d: Download): void {
    for (const w of [...d.waiters]) w();
  }

  private pausedMarker(infohash: string): string {
    return path.join(this.stateDir, 'resume', `${infohash}.paused`);
  }

  /** Remember across restarts that a download is paused, or forget it. */
  private async markPaused(infohash: string, paused: boolean): Promise<void> {
    const marker = this.pausedMarker(infohash);
    if (!paused) return fsp.rm(marker, { force: true });
    await fsp.mkdir(path.dirname(marker), { recursive: true });
    await fsp.writeFile(marker, `${Date.now()}\n`);
  }

  private metainfoOf(infohash: string): Metainfo | undefined {
    const h = infohash.toLowerCase();
    return this.library.byInfoHash(h)?.metainfo ?? this.downloads.get(h)?.torrent.metainfo ?? this.torrents.get(h)?.metainfo;
  }

  /** A download in progress (any state but done), else a complete file on disk. */
  private contentSource(infohash: string): { file: string; metainfo: Metainfo } | { d: Download } | undefined {
    const h = infohash.toLowerCase();
    const d = this.downloads.get(h);
    if (d && d.state !== 'done' && d.part) return { d };
    const f = this.library.byInfoHash(h);
    if (f) return { file: f.path, metainfo: f.metainfo };
    if (d?.path) return { file: d.path, metainfo: d.torrent.metainfo };
    return undefined;
  }

  private verifiedSource(d: Download): VerifiedSource {
    const h = d.torrent.metainfo.infoHashHex;
    return {
      metainfo: d.torrent.metainfo,
      have: () => d.torrent.store.have,
      paths: () => [d.part?.partPath, d.part?.finalPath, d.path],
      blocked: () => {
        if (this.downloads.get(h) !== d) return 'the download was cancelled';
        if (d.state === 'paused') return 'the download is paused';
        if (d.state === 'failed') return `the download failed${d.error ? `: ${d.error}` : ''}`;
        return null;
      },
      prioritize: (i) => d.torrent.prioritize(i),
      watch: (cb) => {
        d.waiters.add(cb);
        return () => d.waiters.delete(cb);
      },
    };
  }

  /**
   * A swarm peer with every piece holds the file. A peer we dialled is known by the address
   * we dialled; an incoming one by its peer id, unless it is a Shoal node (its listening
   * address is unknown here, and the control protocol counts it already).
   */
  private sawSwarmPeer(infohash: string, p: Peer): void {
    if (p.outgoing) return this.holderIndex.saw(infohash, holderKey(p.address, p.port));
    if (!p.peerId || clientName(p.peerId).startsWith('Shoal ')) return;
    this.holderIndex.saw(infohash, `peer:${p.peerId.toString('hex')}`);
  }

  private async handleControl(req: ControlRequest): Promise<ControlResponse> {
    switch (req.type) {
      case 'search': {
        const files = this.library.search(req.filename).map(describe);
        return files.length > 0 ? { type: 'FOUND', files } : { type: 'NOT_FOUND', files: [] };
      }
      case 'list':
        return { type: 'LIST', files: this.library.files().slice(0, MAX_FILES).map(describe) };
      case 'metainfo': {
        const m = this.metainfoOf(req.infohash);
        if (!m) return { type: 'ERROR', error: `unknown infohash ${req.infohash}` };
        return { type: 'METAINFO', infohash: m.infoHashHex, torrent: encodeTorrent(m).toString('base64') };
      }
      case 'peers': {
        // Only peers we have reason to think are real: never pass on second-hand hearsay
        // that we could not reach ourselves.
        const vouched = this.registry.list().filter((p) => p.reachable !== 'no' && !(p.sources.size === 1 && p.sources.has('peer')));
        const peers = vouched.slice(0, MAX_PEERS).map((p) => ({ id: p.id, name: p.name?.slice(0, 64), host: p.host, port: p.port }));
        return { type: 'PEERS', self: { id: this.id, name: this.name.slice(0, 64) }, peers };
      }
      case 'subscribe':
        return { type: 'ERROR', error: 'subscribe must be the last request on its connection' };
    }
  }
}

/** This node's id for a peer port: kept across restarts on a fixed port, fresh for port 0. */
function loadNodeId(stateDir: string, port: number): string {
  if (port === 0) return nanoid(16);
  const file = path.join(stateDir, `node-id-${port}`);
  try {
    const id = fs.readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(id)) return id;
  } catch {
    /* first start on this port */
  }
  const id = nanoid(16);
  try {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(file, `${id}\n`);
  } catch {
    /* a read-only state folder: the id just changes at each start */
  }
  return id;
}

/** Bytes of `m` not in a verified piece yet (the last piece may be short). */
function bytesLeft(m: Metainfo, have: Bitfield): number {
  const lastShort = have.get(m.pieceCount - 1) ? m.pieceCount * m.pieceLength - m.length : 0;
  return Math.max(0, m.length - (have.count() * m.pieceLength - lastShort));
}

function describe(f: SharedFile): { name: string; size: number; infohash: string } {
  return { name: f.name, size: f.size, infohash: f.metainfo.infoHashHex };
}
