import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { nanoid } from 'nanoid';
import { silentLogger, type Logger } from './util/log.js';
import { detectLanAddress, localAddresses } from './util/addresses.js';
import { HashPool } from './library/hash-pool.js';
import { Library, type SharedFile } from './library/library.js';
import { importFile as importInto, type ImportOptions } from './library/import.js';
import { encodeTorrent, fromInfo, withTrackers, DEFAULT_PIECE_LENGTH, type Metainfo } from './metainfo/metainfo.js';
import { makeMagnet } from './metainfo/magnet.js';
import { MAX_FILES, type FileEntry } from './wire/control-codec.js';
import { MAX_FILES_PER_NODE } from './wire/bootstrap-api.js';
import { PeerServer } from './peer-server.js';
import { PeerRegistry, type KnownPeer } from './discovery/peer-registry.js';
import type { DiscoveryHealth, PeerSource } from './discovery/discovery.js';
import { startDiscovery, type Discovery } from './discovery/sources.js';
import { ControlService, describeFile } from './control/control-service.js';
import { NetworkSearch, type SearchResult } from './catalog/search.js';
import { Gossip } from './catalog/gossip.js';
import { Holders, holderKey, swarmHolderKey } from './catalog/holders.js';
import { Watcher } from './catalog/watcher.js';
import { Torrents } from './swarm/torrents.js';
import { DEFAULT_SWARM_LIMITS, type TorrentStats } from './swarm/torrent.js';
import { DEFAULT_PEER_TIMEOUTS } from './swarm/peer.js';
import type { PeerSession } from './swarm/peer-session.js';
import { clientName } from './swarm/client-name.js';
import { Announcer } from './tracker/announcer.js';
import { Downloads } from './downloads/downloads.js';
import type { DownloadInfo } from './downloads/download.js';
import { parseTarget, pickByName, type TargetOptions } from './downloads/targets.js';
import { contentInfo, readContent, type ContentInfo, type ReadOptions } from './downloads/content.js';
import { loadNodeId } from './security/node-id.js';
import type { NodeEvents } from './node-events.js';

import { DEFAULT_MAX_CONNECTIONS, DEFAULT_QUERY_TIMEOUT_MS, type DownloadDetail, type NodeInit, type TransferTotals } from './node-init.js';

/**
 * A Shoal node: shares a folder, serves it on one peer port, downloads from other nodes.
 * The one facade both front ends drive (start, stop, search, download, pause, resume,
 * cancel, content, and the typed events of NodeEvents); nothing above it reaches past it.
 * It owns no logic of its own: it builds the parts (library, registry and discovery,
 * catalog, torrents, downloads, control service, peer server), wires their events, and
 * answers for them.
 */
export class Node extends EventEmitter<NodeEvents> {
  readonly id: string;
  /** Changes at every start, so peers notice a restart at once. */
  readonly instance = nanoid(12);
  readonly peerId = Buffer.concat([Buffer.from('-SH0100-'), Buffer.from(randomBytes(9).toString('base64url').slice(0, 12))]);
  readonly log: Logger;
  readonly downloadDir: string;
  readonly sharedDir: string;
  private readonly library: Library;
  private readonly registry: PeerRegistry;
  private readonly hashPool: HashPool;
  private readonly server: PeerServer;
  private readonly torrents: Torrents;
  private readonly downloads: Downloads;
  private readonly announcer: Announcer;
  private readonly holderIndex: Holders;
  private readonly watcher: Watcher;
  private readonly finder: NetworkSearch;
  private readonly gossip: Gossip;
  private readonly control: ControlService;
  private discovery_: Discovery | null = null;
  private started = false;
  private stopping: Promise<void> | null = null;
  private startTime = Date.now();

  constructor(private readonly init: NodeInit) {
    super();
    this.log = init.logger ?? silentLogger();
    this.sharedDir = path.resolve(init.sharedDir);
    this.downloadDir = path.resolve(init.downloadDir);
    const stateDir = path.resolve(init.stateDir ?? path.join(this.downloadDir, '.shoal'));
    const log = this.log;
    const timeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    this.id = init.id ?? loadNodeId(stateDir, init.port);
    this.hashPool = new HashPool({ workers: init.hashWorkers });
    this.library = new Library({
      folders: [this.sharedDir, this.downloadDir],
      cacheFile: path.join(stateDir, 'hash-cache.json'),
      hashPool: this.hashPool,
      pieceLength: init.pieceLength ?? DEFAULT_PIECE_LENGTH,
      logger: log,
      watch: init.watch ?? true,
    });
    this.registry = new PeerRegistry({ self: { id: this.id, port: init.port } });
    this.holderIndex = new Holders({ registry: this.registry, logger: log, timeoutMs, listIntervalMs: init.holdersListIntervalMs });
    this.finder = new NetworkSearch({ registry: this.registry, holders: this.holderIndex, index: () => this.discovery_?.bootstrap ?? null, selfId: this.id, timeoutMs, log });
    this.gossip = new Gossip({ registry: this.registry, timeoutMs, intervalMs: init.gossipIntervalMs ?? 60_000, log });
    this.watcher = new Watcher({
      registry: this.registry,
      logger: log,
      fetch: (f, from, pattern) => this.fetchWatched(f, from, pattern),
      observe: (from, what, files) => {
        const key = holderKey(from.host, from.port);
        const have = files.filter((f) => f.complete !== false).map((f) => f.infohash);
        if (what === 'snapshot') this.holderIndex.replace(key, have, files.length < MAX_FILES);
        else if (what === 'file-added') for (const h of have) this.holderIndex.saw(h, key);
        else for (const f of files) this.holderIndex.lost(f.infohash, key);
      },
    });
    const timeouts = { ...DEFAULT_PEER_TIMEOUTS, ...init.timeouts };
    this.torrents = new Torrents({
      peerId: this.peerId,
      hasher: this.hashPool,
      limits: { ...DEFAULT_SWARM_LIMITS, ...init.limits },
      timeouts,
      maxUploadRate: init.maxUploadRate ?? 0,
      log,
      shared: (h) => this.library.byInfoHash(h),
    });
    this.announcer = new Announcer({ peerId: this.peerId, port: () => this.port, log });
    this.downloads = new Downloads({
      downloadDir: this.downloadDir,
      resumeDir: path.join(stateDir, 'resume'),
      hasher: this.hashPool,
      torrents: this.torrents,
      announcer: this.announcer,
      trackers: init.trackers ?? [],
      knownPeers: () => this.registry.list(),
      adopt: (p, m) => this.library.adopt(p, m.pieces, m.pieceLength),
      stopping: () => this.stopping !== null,
      log,
    });
    this.control = new ControlService({ self: () => ({ id: this.id, name: this.name }), library: this.library, registry: this.registry, metainfo: (h) => this.metainfoOf(h), log });
    this.server = new PeerServer({
      host: init.listenHost,
      port: init.port,
      logger: log,
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      peerTimeouts: timeouts,
      control: { idleMs: init.controlIdleMs ?? 60_000 },
      findTorrent: (h) => this.torrents.find(h.toString('hex')),
      controlHandler: this.control,
    });
    this.wire();
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
    this.discovery_ = await startDiscovery({
      self: { id: this.id, instance: this.instance, name: this.name.slice(0, 64), port: this.port, host: this.init.announceHost },
      multicast: this.init.multicast,
      bootstrap: this.init.bootstrap,
      published: () => ({ files: this.library.files().slice(0, MAX_FILES_PER_NODE).map(describeFile), downloads: this.downloads.progress() }),
      registry: this.registry,
      health: (source, h) => this.emit('discovery-health', source, h),
      log: this.log,
    });
    this.gossip.start();
    await this.downloads.resumeAll();
    this.log.info({ port: this.port, shared: this.sharedDir, downloads: this.downloadDir, files: this.library.files().length }, 'node started');
  }

  /** Stop cleanly: GOODBYE and unregister, close connections, flush resume records, tell trackers we left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.watcher.stop();
      this.holderIndex.stop();
      this.gossip.stop();
      // GOODBYE and unregister first, while the peer port still answers stragglers.
      await this.discovery_?.stop();
      await this.announcer.stopAll();
      await this.server.stop();
      await this.downloads.stop();
      await this.torrents.stopAll();
      await this.library.stop();
      await this.hashPool.close();
      this.log.info('node stopped');
    })();
    return this.stopping;
  }

  // ---- peers ----------------------------------------------------------------------------

  addPeer(host: string, port: number): KnownPeer | null {
    return this.registry.add(host, port, 'manual');
  }

  /** Forget a peer, whatever vouches for it. */
  removePeer(host: string, port: number): void {
    this.registry.remove(host, port);
  }

  /** The peers this node knows (those one source vouches for), freshest first. */
  knownPeers(source?: PeerSource): KnownPeer[] {
    return this.registry.list(source);
  }

  /** One known peer by node id or `host:port`. */
  peer(idOrAddr: string): KnownPeer | undefined {
    return this.registry.get(idOrAddr);
  }

  /** Health of each discovery source in use. */
  discovery(): Array<{ source: PeerSource; health: DiscoveryHealth }> {
    return this.discovery_?.health() ?? [];
  }

  // ---- what is shared -------------------------------------------------------------------

  /** Every file this node shares (its shared folder and finished downloads). */
  files(): SharedFile[] {
    return this.library.files();
  }

  file(infohash: string): SharedFile | undefined {
    return this.library.byInfoHash(infohash.toLowerCase());
  }

  /** Look at the shared folders again now (the watcher and the periodic rescan do it anyway). */
  rescan(): Promise<void> {
    return this.library.rescan();
  }

  /**
   * Add an uploaded file as `name` (relative) in the shared folder; resolves once the library
   * has hashed it. Refuses with BadNameError, ExistsError, NoSpaceError, TooLargeError.
   */
  importFile(name: string, body: Readable, opts: ImportOptions = {}): Promise<SharedFile> {
    return importInto(this.library, this.sharedDir, name, body, opts);
  }

  /** The .torrent of a shared file or a download, with this node's trackers in announce / announce-list. */
  torrentFile(infohash: string): Buffer | undefined {
    const m = this.metainfoOf(infohash);
    return m ? encodeTorrent(withTrackers(m, this.trackers())) : undefined;
  }

  /** A magnet link for a shared file or a download: this node's trackers (tr=) and this node as a peer (x.pe). */
  magnet(infohash: string): string | undefined {
    const m = this.metainfoOf(infohash);
    return m ? makeMagnet(withTrackers(m, this.trackers()), { peers: [{ host: this.announceHost, port: this.port }] }) : undefined;
  }

  /** The trackers this node announces to: the bootstrap server's, when one is used, and every `--tracker`. */
  trackers(): string[] {
    const bootstrap = this.discovery_?.bootstrap;
    return [...new Set([...(bootstrap ? [bootstrap.trackerUrl] : []), ...(this.init.trackers ?? [])])];
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
    for (const t of this.torrents.list()) for (const p of t.peers) if (p.bitfield.complete()) this.sawSwarmPeer(t.metainfo.infoHashHex, p);
    this.holderIndex.refresh();
  }

  // ---- search and watch -----------------------------------------------------------------

  /**
   * Ask every known peer (in parallel, each bounded by a timeout) and the bootstrap index,
   * and merge the answers by infohash, with every node known to have each file.
   */
  search(query: string): Promise<SearchResult[]> {
    return this.finder.search(query);
  }

  /** Download every file matching `pattern` that appears on the network. Throws PatternError. */
  watch(pattern: string): void {
    this.watcher.add(pattern);
  }

  unwatch(pattern: string): boolean {
    return this.watcher.remove(pattern);
  }

  /** The patterns watched, and how many peers' streams are open for them. */
  watching(): { patterns: string[]; streams: number } {
    return { patterns: this.watcher.patterns(), streams: this.watcher.subscriptions };
  }

  // ---- downloads ------------------------------------------------------------------------

  /**
   * Start downloading a name, infohash, magnet link or .torrent path. Resolves with the
   * infohash once the download runs (its metainfo is known); `whenDone` waits for the file.
   * Rejects with NotFoundError (nobody has it, yet), AmbiguousTargetError, BadTargetError,
   * MagnetError or MetainfoError.
   */
  async download(target: string, opts: TargetOptions = {}): Promise<string> {
    const t = await parseTarget(target, opts);
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
        ({ infohash, peers: hint, trackers } = t);
        for (const p of t.peers) this.registry.add(p.host, p.port, 'magnet');
        break;
      case 'infohash':
        infohash = t.infohash;
        break;
      case 'name':
        ({ infohash, peers: hint } = pickByName(t.name, await this.search(t.name), t.exact));
        break;
    }
    const bootstrap = this.discovery_?.bootstrap;
    if (bootstrap) trackers = [...trackers, bootstrap.trackerUrl];
    if (this.downloads.get(infohash)) return infohash;
    const opening = this.downloads.opened(infohash);
    if (opening) {
      await opening;
      return infohash;
    }
    const local = this.library.byInfoHash(infohash);
    if (local) {
      this.log.info({ file: local.name }, 'already shared here: nothing to download');
      await this.downloads.alreadyShared(local);
      return infohash;
    }
    // Tracker URLs inside metainfo that a peer handed us are not covered by the infohash
    // check, and would make us send requests wherever that peer likes: drop them.
    metainfo ??= fromInfo((await this.finder.metainfo(infohash, hint)).info);
    await this.downloads.start(metainfo, hint, trackers);
    return infohash;
  }

  /** Resolves with the final path when the download of `infohash` is complete and verified (UnknownDownloadError). */
  whenDone(infohash: string): Promise<string> {
    return this.downloads.whenDone(infohash);
  }

  /** Cancel a download (running or paused): its connections close, its .part and resume record are deleted. */
  cancel(infohashOrName: string): Promise<boolean> {
    return this.downloads.cancel(infohashOrName);
  }

  /** Pause a running download (kept across restarts); false when there is no running download of `infohash`. */
  pause(infohash: string): Promise<boolean> {
    return this.downloads.pause(infohash);
  }

  /** Go on with a paused download, from every known source (its hints, known peers, trackers). */
  resume(infohash: string): Promise<boolean> {
    return this.downloads.resume(infohash);
  }

  listDownloads(): DownloadInfo[] {
    return this.downloads.list().map((d) => d.info());
  }

  /** One download with its piece map and its peers, or undefined. */
  downloadDetail(infohash: string): DownloadDetail | undefined {
    const d = this.downloads.get(infohash);
    if (!d) return undefined;
    return { ...d.info(), bitfield: Buffer.from(d.have.bytes), peerList: d.torrent.peerStats() };
  }

  /** Name, size and piece length of a shared file or a download (any state), or undefined. */
  content(infohash: string): ContentInfo | undefined {
    return contentInfo(this.contentSources, infohash);
  }

  /**
   * Bytes `start`..`end` (inclusive) of a file. A complete file streams from disk. A download
   * gives verified pieces only: `end` comes back clamped to the run of verified pieces from
   * `start`; when `start`'s piece is missing it is fetched first and awaited up to
   * `opts.waitMs` (then ContentUnavailableError). RangeError outside the file,
   * UnknownContentError for an unknown infohash.
   */
  readContent(infohash: string, start: number, end: number, opts: ReadOptions): Promise<{ stream: Readable; end: number }> {
    return readContent(this.contentSources, infohash, start, end, opts);
  }

  // ---- status ---------------------------------------------------------------------------

  /** Payload bytes and rates over every torrent since the node started, seeding included. */
  totals(): TransferTotals {
    const { down, up } = this.torrents.totals;
    return { downloaded: down.total, uploaded: up.total, downloadRate: down.rate(), uploadRate: up.rate() };
  }

  /** Totals for status displays. */
  status(): { id: string; name: string; port: number; peers: number; files: number; connections: number; torrents: TorrentStats[] } {
    return {
      id: this.id,
      name: this.name,
      port: this.port,
      peers: this.registry.size,
      files: this.library.files().length,
      connections: this.server.connections,
      torrents: this.torrents.list().map((t) => t.info()),
    };
  }

  // ---- internals ------------------------------------------------------------------------

  private readonly contentSources = {
    download: (h: string) => this.downloads.get(h),
    shared: (h: string) => this.library.byInfoHash(h),
  };

  /** Every part's events, turned into the node's (and into work for the other parts). */
  private wire(): void {
    const { registry, library, downloads } = this;
    this.holderIndex.on('change', (h, n) => this.emit('holders', h, n));
    registry.on('peer-up', (p) => {
      this.emit('peer-up', p);
      downloads.addPeers([p]);
      if (!p.sources.has('peer')) this.gossip.ask(p);
    });
    registry.on('peer-changed', (p, what) => {
      downloads.addPeers([p]);
      this.emit('peer-changed', p, what);
    });
    registry.on('peer-down', (p) => this.emit('peer-down', p));
    registry.on('peer-unreachable', (p) => {
      this.log.info({ peer: `${p.host}:${p.port}`, id: p.id }, 'peer does not answer');
      if (p.id && p.sources.has('bootstrap')) void this.discovery_?.bootstrap?.report(p.id).catch(() => {});
      this.emit('peer-changed', p, 'reachability');
    });
    library.on('added', (f) => {
      this.emit('file-added', f);
      const h = f.metainfo.infoHashHex;
      if (!downloads.get(h)) this.announcer.start(f.metainfo, this.init.trackers ?? [], () => ({ uploaded: this.torrents.get(h)?.info().uploaded ?? 0, downloaded: 0, left: 0 }));
      this.control.publish('file-added', f);
      this.discovery_?.bootstrap?.publishSoon();
    });
    library.on('removed', (f) => {
      this.emit('file-removed', f);
      const h = f.metainfo.infoHashHex;
      if (!downloads.get(h)) {
        void this.announcer.stop(h);
        if (!library.byInfoHash(h)) void this.torrents.drop(h);
      }
      this.control.publish('file-removed', f);
      this.discovery_?.bootstrap?.publishSoon();
    });
    this.torrents.on('peer-complete', (h, p) => this.sawSwarmPeer(h, p));
    downloads.on('progress', (d) => this.emit('progress', d));
    downloads.on('done', (d) => this.emit('done', d));
    downloads.on('download-state', (d) => this.emit('download-state', d));
    downloads.on('download-removed', (h) => this.emit('download-removed', h));
    downloads.on('error', (err, h) => {
      if (this.listenerCount('error') > 0) this.emit('error', err, h);
    });
  }

  /** A watched pattern matched a file somewhere: fetch it unless we have or fetch it already. */
  private fetchWatched(f: FileEntry, from: KnownPeer, pattern: string): void {
    const h = f.infohash;
    if (this.stopping || this.library.byInfoHash(h) || this.downloads.knows(h)) return;
    const hint = [{ host: from.host, port: from.port }];
    this.log.info({ file: f.name, pattern, from: `${from.host}:${from.port}` }, 'watched pattern matched: downloading');
    const bootstrap = this.discovery_?.bootstrap;
    this.finder
      .metainfo(h, hint)
      .then((m) => this.downloads.start(fromInfo(m.info), hint, bootstrap ? [bootstrap.trackerUrl] : []))
      .then(
        () => this.emit('watched', f, pattern, h),
        (err: Error) => this.log.warn({ file: f.name, err: err.message }, 'could not start a watched download'),
      );
  }

  private metainfoOf(infohash: string): Metainfo | undefined {
    const h = infohash.toLowerCase();
    return this.library.byInfoHash(h)?.metainfo ?? this.downloads.get(h)?.metainfo ?? this.torrents.get(h)?.metainfo;
  }

  /** A swarm peer with every piece holds the file. */
  private sawSwarmPeer(infohash: string, p: PeerSession): void {
    const key = swarmHolderKey({ outgoing: p.outgoing, host: p.peer.address, port: p.peer.port, client: clientName(p.peerId), peerId: p.peerId });
    if (key) this.holderIndex.saw(infohash, key);
  }
}
