import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { nanoid } from 'nanoid';
import { silentLogger, type Logger } from './log.js';
import { HashPool } from './library/hash-pool.js';
import { Library, type SharedFile } from './library/library.js';
import { encodeTorrent, fromInfo, DEFAULT_PIECE_LENGTH, type Metainfo } from './metainfo/metainfo.js';
import { PeerServer } from './peer-server.js';
import { MAX_PEERS, type ControlRequest, type ControlResponse } from './wire/control-codec.js';
import { controlRequest, fetchMetainfo } from './control/control-client.js';
import { TrackerClient } from './tracker/announce.js';
import { PeerRegistry, isLoopback as isLoopbackHost, type KnownPeer } from './discovery/peer-registry.js';
import type { DiscoveryHealth, PeerDiscovery, PeerSource } from './discovery/discovery.js';
import { MulticastDiscovery } from './discovery/multicast.js';
import { BootstrapClient } from './discovery/bootstrap-client.js';
import type { Subscriber } from './control/control-server.js';
import type { FileEntry } from './wire/control-codec.js';
import { Watcher } from './watcher.js';
import { Torrent, DEFAULT_SWARM_LIMITS, type SwarmLimits, type TorrentStats } from './swarm/torrent.js';
import { DEFAULT_PEER_TIMEOUTS, type PeerTimeouts } from './swarm/peer.js';
import { RateLimiter } from './swarm/rate.js';
import { PartFile } from './storage/part-file.js';
import { SeedStore } from './storage/seed-store.js';
import { parseTarget } from './targets.js';

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
  state: 'downloading' | 'done' | 'failed';
  path?: string;
  error?: string;
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
  error: [err: Error, infohash?: string];
}

export const DEFAULT_MAX_CONNECTIONS = 256;
/** Nodes that may hold a `subscribe` stream to this one at once. */
export const MAX_SUBSCRIBERS = 64;

interface Download {
  torrent: Torrent;
  trackers: TrackerClient | null;
  state: DownloadInfo['state'];
  path?: string;
  error?: string;
  done: Promise<string>;
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
    this.watcher = new Watcher({ registry: this.registry, logger: this.log, fetch: (f, from, pattern) => this.fetchWatched(f, from, pattern) });
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

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // Listen first: the library's first scan announces files to trackers with our port.
    await this.server.start();
    this.registry.setSelf({ id: this.id, port: this.port, hosts: localAddresses() });
    await this.library.start();
    for (const p of this.init.peers ?? []) this.addPeer(p.host, p.port);
    for (const pattern of this.init.watchPatterns ?? []) this.watcher.add(pattern);
    await this.startDiscovery();
    for (const m of await PartFile.pending(path.join(this.stateDir, 'resume'), this.log)) {
      this.log.info({ file: m.name, infohash: m.infoHashHex }, 'resuming download');
      this.startDownload(m, []).catch((err: Error) => this.log.error({ err: err.message }, 'could not resume download'));
    }
    this.log.info({ port: this.port, shared: this.sharedDir, downloads: this.downloadDir, files: this.library.files().length }, 'node started');
  }

  /** Stop cleanly: close connections, flush resume records, tell trackers we left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.watcher.stop();
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

  /** Cancel a download: its connections close, its .part and resume record are deleted. */
  async cancel(infohashOrName: string): Promise<boolean> {
    for (const [h, d] of this.downloads) {
      if (d.state !== 'downloading' || (h !== infohashOrName.toLowerCase() && d.torrent.metainfo.name !== infohashOrName)) continue;
      d.state = 'failed';
      d.error = 'cancelled';
      await d.trackers?.stop();
      await d.torrent.cancel();
      this.torrents.delete(h);
      this.downloads.delete(h);
      this.log.info({ file: d.torrent.metainfo.name }, 'download cancelled');
      return true;
    }
    return false;
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
    return { files: this.library.files().slice(0, 10_000).map(describe), downloads };
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
          if (isLoopbackHost(q.host) && !isLoopbackHost(p.host)) continue;
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
    const files = this.library.files().slice(0, 1000).map(describe);
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
  private startDownload(m: Metainfo, peers: Array<{ host: string; port: number }>, extraTrackers: string[] = []): Promise<void> {
    const h = m.infoHashHex;
    const running = this.starting.get(h);
    if (running) return running.then(() => this.downloads.get(h)?.torrent.addPeers(peers));
    if (this.downloads.has(h)) {
      this.downloads.get(h)!.torrent.addPeers(peers);
      return Promise.resolve();
    }
    const p = this.openDownload(m, peers, extraTrackers).finally(() => this.starting.delete(h));
    this.starting.set(h, p);
    return p;
  }

  private async openDownload(m: Metainfo, peers: Array<{ host: string; port: number }>, extraTrackers: string[]): Promise<void> {
    const { part, resumed } = await PartFile.open({
      metainfo: m,
      downloadDir: this.downloadDir,
      resumeDir: path.join(this.stateDir, 'resume'),
      hasher: this.hashPool,
      logger: this.log,
    });
    if (resumed > 0) this.log.info({ file: m.name, verified: resumed, of: m.pieceCount }, 'resuming from verified pieces on disk');
    const torrent = this.makeTorrent(m, part);
    let resolve!: (p: string) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<string>((res, rej) => ((resolve = res), (reject = rej)));
    done.catch(() => {});
    const urls = [...new Set([...m.announce, ...extraTrackers, ...(this.init.trackers ?? [])])];
    const d: Download = { torrent, trackers: null, state: 'downloading', done };
    if (urls.length > 0) d.trackers = this.trackerFor(m, urls, torrent);
    this.downloads.set(m.infoHashHex, d);
    torrent.on('piece', () => this.progress(d));
    torrent.on('done', (p) => {
      d.state = 'done';
      d.path = p;
      d.trackers?.complete();
      // Share the finished file: its digests are known, so the library need not rehash it.
      this.library.adopt(p, m.pieces, m.pieceLength).catch((err: Error) => {
        if (!this.stopping) this.log.warn({ path: p, err: err.message }, 'could not add the finished file to the library');
      });
      this.emit('done', this.downloadInfo(d));
      resolve(p);
    });
    torrent.on('error', (err) => {
      d.state = 'failed';
      d.error = err.message;
      if (this.listenerCount('error') > 0) this.emit('error', err, m.infoHashHex);
      reject(err);
    });
    torrent.finishIfComplete(); // a crash right before the rename leaves every piece verified
    torrent.addPeers([...peers, ...this.registry.list()]);
    d.trackers?.start();
    this.log.info({ file: m.name, infohash: m.infoHashHex, size: m.length }, 'download started');
  }

  private makeTorrent(m: Metainfo, store: PartFile | SeedStore): Torrent {
    const t = new Torrent({
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
    return t;
  }

  /** Announces one torrent to `urls`; peers it hears of go to `onPeer`. */
  private newTracker(m: Metainfo, urls: string[], stats: () => { uploaded: number; downloaded: number; left: number }): TrackerClient {
    return new TrackerClient({ urls, infoHash: m.infoHash, peerId: this.peerId, port: this.port, logger: this.log, stats });
  }

  private trackerFor(m: Metainfo, urls: string[], torrent: Torrent): TrackerClient {
    const client = this.newTracker(m, urls, () => {
      const s = torrent.info();
      return { uploaded: s.uploaded, downloaded: s.downloaded, left: m.length - Math.min(m.length, s.verified * m.pieceLength) };
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
    const d: Download = { torrent, trackers: null, state: 'done', path: f.path, done: Promise.resolve(f.path) };
    this.downloads.set(h, d);
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
    return { ...d.torrent.info(), state: d.state, path: d.path, error: d.error };
  }

  private async handleControl(req: ControlRequest): Promise<ControlResponse> {
    switch (req.type) {
      case 'search': {
        const files = this.library.search(req.filename).map(describe);
        return files.length > 0 ? { type: 'FOUND', files } : { type: 'NOT_FOUND', files: [] };
      }
      case 'list':
        return { type: 'LIST', files: this.library.files().slice(0, 1000).map(describe) };
      case 'metainfo': {
        const m = this.library.byInfoHash(req.infohash)?.metainfo ?? this.torrents.get(req.infohash)?.metainfo;
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

/** Every IPv4 and IPv6 address of this machine: a peer at one of them on our port is us. */
function localAddresses(): string[] {
  return Object.values(os.networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

function describe(f: SharedFile): { name: string; size: number; infohash: string } {
  return { name: f.name, size: f.size, infohash: f.metainfo.infoHashHex };
}

/** The first non-internal IPv4 address, which is what LAN peers can reach us on. */
export function detectLanAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
