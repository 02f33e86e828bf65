import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { nanoid } from 'nanoid';
import { silentLogger, type Logger } from './util/log.js';
import { detectLanAddress, localAddresses, specificAddress } from './util/addresses.js';
import { HashPool } from './library/hash-pool.js';
import { Library, type SharedFile } from './library/library.js';
import { importFile as importInto, type ImportOptions } from './library/import.js';
import { encodeTorrent, withTrackers, DEFAULT_PIECE_LENGTH, type Metainfo } from './metainfo/metainfo.js';
import { makeMagnet } from './metainfo/magnet.js';
import { MAX_FILES_PER_NODE } from './wire/bootstrap-api.js';
import { PeerServer } from './peer-server.js';
import { PeerRegistry, type KnownPeer } from './discovery/peer-registry.js';
import type { DiscoveryHealth, PeerSource } from './discovery/discovery.js';
import { NodeDiscovery } from './discovery/sources.js';
import { ControlService, describeFile } from './control/control-service.js';
import { NetworkSearch, type SearchResult } from './catalog/search.js';
import { Gossip } from './catalog/gossip.js';
import { PeerProbe } from './catalog/peer-probe.js';
import { Holders } from './catalog/holders.js';
import { Watcher } from './catalog/watcher.js';
import { Torrents, type ServingStats } from './swarm/torrents.js';
import { DEFAULT_SWARM_LIMITS, type TorrentStats } from './swarm/torrent.js';
import { DEFAULT_PEER_TIMEOUTS, type PeerTimeouts } from './swarm/peer.js';
import { DEFAULT_ENCRYPTION, DEFAULT_UTP, type TransportPolicy } from './swarm/dial.js';
import { seedingReport, type SeedingEntry } from './swarm/seeding.js';
import { Announcer } from './tracker/announcer.js';
import { Downloads } from './downloads/downloads.js';
import type { DownloadInfo } from './downloads/download.js';
import type { TargetOptions } from './downloads/targets.js';
import type { ReadOptions } from './downloads/content.js';
import { contentInfo, readContent, type ContentInfo } from './downloads/content-sources.js';
import { fileViews, selectByIndex } from './downloads/selection.js';
import { FolderTorrents } from './library/folder-torrents.js';
import { METADATA_TIMEOUT_MS, type ResolveInit } from './downloads/resolve.js';
import { startDownload } from './downloads/start.js';
import { Keeper } from './downloads/keeper.js';
import { Identity, keepIdentity, loadIdentity, IdentityError, type LoadedIdentity } from './security/identity.js';
import { SwarmSecret } from './security/secret.js';
import { FolderLocks } from './storage/folder-lock.js';
import { checkSharedFolder } from './library/shared-folder.js';
import type { NodeEvents } from './node-events.js';
import { fetchWatched, sawSwarmPeer, wireParts, type Emit, type WiredParts } from './node-wiring.js';
import { Settings, type NodeSettings } from './config/settings.js';

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
  /** Derived from the node's public key (network/security/identity.ts): nobody else can sign for it. */
  readonly id: string;
  /** The swarm's secret, stretched (null: an open node). */
  private readonly secret: SwarmSecret | null;
  private readonly identity: Identity;
  /** The kept key, when it still has to be written (first start) or could not be read. */
  private readonly keyFile: { loaded: LoadedIdentity | null; error: IdentityError | null };
  /** Changes at every start, so peers notice a restart at once. */
  readonly instance = nanoid(12);
  readonly peerId = Buffer.concat([Buffer.from('-SH0100-'), Buffer.from(randomBytes(9).toString('base64url').slice(0, 12))]);
  readonly log: Logger;
  readonly downloadDir: string;
  private readonly settings_: Settings;
  private readonly stateDir: string;
  private readonly library: Library;
  private readonly folderTorrents: FolderTorrents;
  private readonly registry: PeerRegistry;
  private readonly hashPool: HashPool;
  private readonly server: PeerServer;
  private readonly torrents: Torrents;
  private readonly downloads: Downloads;
  /** Torrents seeded under their own infohash from data here (made elsewhere, or private). */
  private readonly keeper: Keeper;
  private readonly announcer: Announcer;
  private readonly holderIndex: Holders;
  private readonly watcher: Watcher;
  private readonly finder: NetworkSearch;
  private readonly gossip: Gossip;
  private readonly probe: PeerProbe;
  private readonly control: ControlService;
  private readonly discovery_: NodeDiscovery;
  private readonly timeouts: PeerTimeouts;
  private readonly transport: TransportPolicy;
  private folders: FolderLocks | null = null;
  private started = false;
  private stopping: Promise<void> | null = null;
  private startTime = Date.now();

  constructor(private readonly init: NodeInit) {
    super();
    this.log = init.logger ?? silentLogger();
    this.downloadDir = path.resolve(init.downloadDir);
    const stateDir = (this.stateDir = path.resolve(init.stateDir ?? path.join(this.downloadDir, '.shoal')));
    const log = this.log;
    this.settings_ = new Settings({
      node: init,
      stateDir,
      downloadDir: this.downloadDir,
      targets: {
        uploadRate: { get: () => this.torrents.maxUploadRate, set: (n) => this.torrents.setMaxUploadRate(n) },
        addFolder: (d) => this.library.addFolder(d),
        removeFolder: (d) => this.library.removeFolder(d),
        discovery: (sources) => this.discovery_.restart(sources),
      },
      changed: (settings) => this.emit('settings', settings),
      log,
    });
    const timeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    this.keyFile = { loaded: null, error: null };
    if (init.identity) this.identity = init.identity;
    else if (init.port === 0) this.identity = Identity.generate();
    else {
      try {
        this.keyFile.loaded = loadIdentity(stateDir);
        this.identity = this.keyFile.loaded.identity;
      } catch (err) {
        // start() refuses, naming the file: a damaged key is never replaced behind the user's back.
        this.keyFile.error = err instanceof IdentityError ? err : new IdentityError(String(err));
        this.identity = Identity.generate();
      }
    }
    this.id = this.identity.id;
    this.secret = init.secret === undefined ? null : SwarmSecret.from(init.secret);
    // In a private swarm every TCP connection between nodes is TLS 1.3 with the swarm's key (security/tls.ts).
    const psk = this.secret?.tlsPsk;
    this.hashPool = new HashPool({ workers: init.hashWorkers });
    this.library = new Library({
      withholds: (abs, st) => this.keeper.withholds(abs, st),
      folders: [...this.settings_.sharedFolders, this.downloadDir],
      cacheFile: path.join(stateDir, 'hash-cache.json'),
      hashPool: this.hashPool,
      pieceLength: init.pieceLength ?? DEFAULT_PIECE_LENGTH,
      logger: log,
      watch: init.watch ?? true,
      rescanIntervalMs: init.rescanIntervalMs,
    });
    this.folderTorrents = new FolderTorrents({ library: this.library, pool: this.hashPool, pieceLength: init.pieceLength ?? DEFAULT_PIECE_LENGTH, log });
    this.registry = new PeerRegistry({ self: { id: this.id, port: init.port } });
    this.holderIndex = new Holders({ registry: this.registry, psk, logger: log, timeoutMs, listIntervalMs: init.holdersListIntervalMs });
    this.finder = new NetworkSearch({ registry: this.registry, psk, holders: this.holderIndex, index: () => this.discovery_.bootstrap, selfId: this.id, timeoutMs, log });
    this.gossip = new Gossip({ registry: this.registry, psk, timeoutMs, intervalMs: init.gossipIntervalMs ?? 60_000, log });
    this.probe = new PeerProbe({ registry: this.registry, ask: (p) => this.gossip.probe(p) });
    this.watcher = new Watcher({
      registry: this.registry,
      psk,
      logger: log,
      fetch: (f, from, pattern) => fetchWatched(this.parts, this.emit.bind(this) as Emit, () => this.stopping !== null, f, from, pattern),
      observe: (from, what, files) => this.holderIndex.observed(from, what, files),
    });
    const timeouts = (this.timeouts = { ...DEFAULT_PEER_TIMEOUTS, ...init.timeouts });
    // TLS replaces MSE, and runs over TCP only, in a private swarm.
    const transport = (this.transport = psk
      ? { encryption: 'off' as const, utp: 'off' as const, utpEndpoint: () => null, psk }
      : { encryption: init.encryption ?? DEFAULT_ENCRYPTION, utp: init.utp ?? DEFAULT_UTP, utpEndpoint: () => this.server.utpEndpoint });
    this.torrents = new Torrents({
      peerId: this.peerId,
      hasher: this.hashPool,
      limits: { ...DEFAULT_SWARM_LIMITS, ...init.limits },
      timeouts,
      maxUploadRate: init.maxUploadRate ?? 0,
      log,
      port: () => this.port,
      shared: (h) => this.library.byInfoHash(h) ?? this.keeper.seeded(h),
      sharedInfoHashes: () => [...this.library.files().map((f) => f.metainfo.infoHashHex), ...this.keeper.seededInfoHashes()],
      transport,
      hashedStamp: (p, h) => this.library.hashedStamp(p, h),
      changed: (p, _why, h) =>
        this.folderTorrents.has(p)
          ? this.folderTorrents.recheck(p)
          : this.library.reverify(p).then(() => this.library.hashedStamp(p, h) !== undefined, () => false),
      openFiles: init.openFiles,
      uploadMemory: init.uploadMemory,
    });
    this.announcer = new Announcer({ peerId: this.peerId, port: () => this.port, log, headers: this.trackerHeaders });
    this.downloads = new Downloads({
      downloadDir: this.downloadDir,
      resumeDir: path.join(stateDir, 'resume'),
      hasher: this.hashPool,
      torrents: this.torrents,
      announcer: this.announcer,
      trackers: init.trackers ?? [],
      knownPeers: () => this.registry.list(),
      // A finished folder: its files are shared one by one (the rescan hashes them) and, when whole, as its torrent;
      // a private one (BEP 27) is seeded under its own infohash only, its folder marked so nothing in it is shared.
      adopt: (p, m, whole) =>
        m.multiFile ? (m.private ? Promise.resolve() : Promise.all([whole && this.folderTorrents.adopt(p, m), this.library.rescan()])) : this.keeper.finished(p, m),
      finishing: (m, p) => (m.multiFile ? Promise.resolve() : this.keeper.finishing(m, p)),
      unshare: (p) => (this.folderTorrents.remove(p), this.library.rescan()),
      stopping: () => this.stopping !== null,
      log,
    });
    const { downloads, torrents, announcer, hashPool: hasher, library, downloadDir } = this;
    const folders = () => [...this.sharedDirs, downloadDir];
    this.keeper = new Keeper({ file: path.join(stateDir, 'torrents.json'), downloads, torrents, announcer, hasher, library, folders, downloadDir, resumeDir: path.join(stateDir, 'resume'), trackers: () => this.trackers(), log });
    this.discovery_ = new NodeDiscovery(
      () => ({
        self: { id: this.id, instance: this.instance, name: this.name.slice(0, 64), port: this.port, host: this.advertised },
        signer: this.identity,
        secret: this.secret ?? undefined,
        bound: this.server.boundAddress,
        published: () => ({ files: this.library.files().slice(0, MAX_FILES_PER_NODE).map(describeFile), downloads: this.downloads.progress() }),
        registry: this.registry,
        health: (source, h) => this.emit('discovery-health', source, h),
        log,
      }),
      init.multicast || {},
    );
    this.control = new ControlService({ self: () => ({ id: this.id, name: this.name }), library: this.library, registry: this.registry, metainfo: (h) => this.metainfoOf(h), log });
    this.server = new PeerServer({
      host: init.listenHost,
      port: init.port,
      logger: log,
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      maxConnectionsPerAddress: init.maxConnectionsPerAddress,
      peerTimeouts: timeouts,
      control: { idleMs: init.controlIdleMs ?? 60_000, lineDeadlineMs: init.controlLineDeadlineMs },
      findTorrent: (h) => this.torrents.find(h.toString('hex')),
      findByReq2: (req2) => this.torrents.findByReq2(req2),
      encryption: transport.encryption,
      utp: transport.utp,
      psk,
      controlHandler: this.control,
    });
    wireParts(this.parts, this.emit.bind(this) as Emit, () => this.listenerCount('error') > 0);
  }

  /** Is this node in a private swarm (started with a secret)? */
  get isPrivate(): boolean {
    return this.secret !== null;
  }

  /** Eight hex characters that name the swarm's secret without revealing it (null: an open node). */
  get secretFingerprint(): string | null {
    return this.secret?.fingerprint ?? null;
  }

  /** A fresh key is written once the state folder is ours; one readable by others gets a warning. */
  private async keepKey(): Promise<void> {
    const loaded = this.keyFile.loaded;
    if (!loaded) return;
    if (loaded.fresh) {
      await keepIdentity(loaded);
      this.log.info({ id: this.id, file: loaded.file }, 'made this node\'s key: its id derives from it');
      loaded.fresh = false;
    } else if (loaded.exposed) {
      this.log.warn({ file: loaded.file }, `${loaded.file} can be read by other users: anyone who copies it can pose as this node (chmod 600 it)`);
    }
  }

  /** The port peers reach us on (after start). */
  get port(): number {
    return this.server.port;
  }

  /** The address this node tells others (magnets, beacons, the bootstrap server): `advertised`, else its first LAN address. */
  get announceHost(): string {
    return this.advertised ?? detectLanAddress();
  }

  /** `announceHost` (--peer-ip) if set, else the one address the peer port listens on (if one only). */
  private get advertised(): string | undefined {
    return this.init.announceHost ?? this.server.boundAddress ?? (isIP(this.init.listenHost ?? '') ? specificAddress(this.init.listenHost) : undefined);
  }

  get name(): string {
    return this.init.name ?? os.hostname();
  }

  /** The shared folders besides the downloads folder (which always is); settings can change them. */
  get sharedDirs(): string[] {
    return this.settings_.sharedFolders;
  }

  /** Where files added from the dashboard go: the first shared folder, else the downloads folder. */
  get sharedDir(): string {
    return this.sharedDirs[0] ?? this.downloadDir;
  }

  /** When this node started (ms since the epoch). */
  get startedAt(): number {
    return this.startTime;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startTime = Date.now();
    try {
      // Before anything is read or written: a node sharing nothing, or a second node writing
      // this one's .part files, must not start at all.
      if (this.keyFile.error) throw this.keyFile.error;
      for (const dir of this.sharedDirs) await checkSharedFolder(dir, this.init.createSharedDir);
      for (const dir of this.init.shareFoldersAsTorrents ?? []) await checkSharedFolder(dir, false);
      this.folders = await FolderLocks.take([this.downloadDir, this.stateDir], this.init.port, this.log);
      await this.keepKey();
      // Listen first: the library's first scan announces files to trackers with our port.
      await this.server.start();
    } catch (err) {
      // Nothing runs yet: the folders are free again (no stale lock left) and start() may be retried.
      await this.folders?.release();
      this.folders = null;
      this.started = false;
      throw err;
    }
    this.holderIndex.start();
    await this.folders.setPort(this.port);
    this.registry.setSelf({ id: this.id, port: this.port, hosts: [...localAddresses()] });
    // Before the first scan: a private torrent's file must never be indexed.
    await this.keeper.load();
    await this.library.start();
    for (const dir of this.init.shareFoldersAsTorrents ?? []) {
      await this.folderTorrents.share(dir).catch((err: Error) => this.log.error({ folder: dir, err: err.message }, 'could not share a folder as a torrent'));
    }
    this.folderTorrents.start();
    for (const p of this.init.peers ?? []) this.addPeer(p.host, p.port);
    for (const pattern of this.init.watchPatterns ?? []) this.watcher.add(pattern);
    await this.discovery_.start(this.settings_.sources);
    this.gossip.start();
    await this.downloads.resumeAll();
    await this.keeper.restore();
    const { encryption } = this.transport;
    this.log.info({ port: this.port, shared: this.sharedDir, downloads: this.downloadDir, files: this.library.files().length, utp: this.server.utpEndpoint ? 'on' : 'off', encryption }, 'node started');
  }

  /** Stop cleanly: GOODBYE and unregister, close connections, flush resume records, tell trackers we left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.watcher.stop();
      this.holderIndex.stop();
      this.gossip.stop();
      this.probe.stop();
      // GOODBYE and unregister first, while the peer port still answers stragglers.
      await this.discovery_.stop();
      await this.announcer.stopAll();
      await this.server.stop();
      await this.downloads.stop();
      await this.keeper.stop();
      await this.torrents.stopAll();
      this.folderTorrents.stop();
      await this.library.stop();
      await this.hashPool.close();
      await this.folders?.release();
      this.log.info('node stopped');
    })();
    return this.stopping;
  }

  // ---- settings -------------------------------------------------------------------------

  /** What can change while the node runs (network/config/settings.ts), as it is now. */
  settings(): NodeSettings {
    return this.settings_.get();
  }

  /** Change settings now and keep them in the config file; SettingsError or ConfigError, and then nothing changed. */
  changeSettings(change: unknown): Promise<NodeSettings> {
    return this.settings_.change(change);
  }

  /** The dashboard's access token, kept in the state folder: the same at every start until rotated. */
  accessToken(): string {
    return this.settings_.accessToken();
  }

  rotateAccessToken(): Promise<string> {
    return this.settings_.rotateAccessToken();
  }

  // ---- peers ----------------------------------------------------------------------------

  /** Add a peer by hand; it is tried at once and again until it answers (or counts as not answering). */
  addPeer(host: string, port: number): KnownPeer | null {
    const p = this.registry.add(host, port, 'manual');
    if (p) this.probe.watch(p);
    return p;
  }

  /** Forget a peer, whatever vouches for it. */
  removePeer(host: string, port: number): void {
    this.registry.remove(host, port);
  }

  /** The peers this node knows (those one source vouches for), freshest first; those that do not answer too (reachable 'no'). */
  knownPeers(source?: PeerSource): KnownPeer[] {
    return this.registry.list(source);
  }

  /** How many known peers count: those that answer or were not tried yet; those that do not answer are listed apart. */
  peerCount(): { peers: number; unreachable: number } {
    return this.registry.count();
  }

  /** One known peer by node id or `host:port`. */
  peer(idOrAddr: string): KnownPeer | undefined {
    return this.registry.get(idOrAddr);
  }

  /** Health of each discovery source in use. */
  discovery(): Array<{ source: PeerSource; health: DiscoveryHealth }> {
    return this.discovery_.health();
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
    for (const t of this.torrents.list()) for (const p of t.peers) if (p.bitfield.complete()) sawSwarmPeer(this.holderIndex, t.metainfo.infoHashHex, p);
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
   * Start downloading a name, infohash, magnet link or .torrent path, or the bytes of a
   * .torrent file (an upload). Resolves with the infohash once the download runs (its
   * metainfo is known); `whenDone` waits for the file. Rejects with NotFoundError (nobody has
   * it, yet), AmbiguousTargetError, BadTargetError, MagnetError or MetainfoError.
   */
  download(target: string | Uint8Array, opts: TargetOptions = {}): Promise<string> {
    return startDownload(target, opts, {
      downloads: this.downloads,
      resolve: this.resolving,
      search: (name) => this.search(name),
      magnetPeer: (p) => this.registry.add(p.host, p.port, 'magnet'),
      extraTrackers: () => (this.discovery_.bootstrap ? [this.discovery_.bootstrap.trackerUrl] : []),
      shared: (h) => this.library.byInfoHash(h),
      existing: (m) => this.keeper.existing(m),
      log: this.log,
    });
  }

  /**
   * Seed a .torrent (a path, or its bytes) from its data in the shared or download folders,
   * under its own infohash, now and after every restart; never downloads. Resolves with its
   * infohash and the data's path. NoDataError when not every piece is here (download it to
   * fetch the rest), BadTargetError or MetainfoError when it is not a torrent Shoal can take.
   */
  seed(torrent: string | Uint8Array, opts: TargetOptions = {}): Promise<{ infohash: string; path: string }> {
    return this.keeper.seedTarget(torrent, opts);
  }

  /** Resolves with the final path when the download of `infohash` is complete and verified (UnknownDownloadError). */
  whenDone(infohash: string): Promise<string> {
    return this.downloads.whenDone(infohash);
  }

  /** Cancel a download (running or paused): its connections close, its .part and resume record are deleted. */
  cancel(infohashOrName: string): Promise<boolean> {
    return this.downloads.cancel(infohashOrName);
  }

  /**
   * Take a finished or failed download off the list; with `deleteData` delete its file too
   * (and stop sharing it). A torrent seeded from data here (made elsewhere, or private) is
   * seeded no more; a private one's file stays out of the public catalog. False when there is
   * none, or it is still active (cancel those).
   */
  remove(infohash: string, opts: { deleteData: boolean }): Promise<boolean> {
    return this.keeper.remove(infohash.toLowerCase(), opts.deleteData);
  }

  /** What this node uploads: each torrent that sends or is asked to, its peers and its share ratio. */
  seeding(): SeedingEntry[] {
    return seedingReport(this.torrents.list());
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

  /** One download with its piece map, its files and its peers, or undefined. */
  downloadDetail(infohash: string): DownloadDetail | undefined {
    const d = this.downloads.get(infohash);
    if (!d) return undefined;
    return { ...d.info(), bitfield: Buffer.from(d.have.bytes), pieceCount: d.metainfo.pieceCount, peerList: d.torrent.peerStats(), fileList: fileViews(d.metainfo, d.have, d.selection()) };
  }

  /**
   * Download only these files of a running or paused download (indices of `fileList`; null:
   * every file). Verified pieces are kept; it is done when the selected files are. False when
   * there is no such download still to finish; SelectionError for an index it does not have.
   */
  select(infohash: string, files: readonly number[] | null): Promise<boolean> {
    const d = this.downloads.get(infohash.toLowerCase());
    if (!d) return Promise.resolve(false);
    return this.downloads.select(d.infohash, files && selectByIndex(d.metainfo, files));
  }

  /** Name, size and piece length of a shared file or a download (any state), or of file `file` of a multi-file one; undefined when none. */
  content(infohash: string, file?: number): ContentInfo | undefined {
    return contentInfo(this.contentSources, infohash, file);
  }

  /**
   * Bytes `start`..`end` (inclusive) of a file. A complete file streams from disk. A download
   * gives verified pieces only: `end` comes back clamped to the run of verified pieces from
   * `start`; when `start`'s piece is missing it is fetched first and awaited up to
   * `opts.waitMs` (then ContentUnavailableError). RangeError outside the file,
   * UnknownContentError for an unknown infohash.
   */
  readContent(infohash: string, start: number, end: number, opts: ReadOptions & { file?: number }): Promise<{ stream: Readable; end: number }> {
    return readContent(this.contentSources, infohash, start, end, opts);
  }

  // ---- status ---------------------------------------------------------------------------

  /** Payload bytes and rates over every torrent since the node started, seeding included. */
  totals(): TransferTotals {
    const { down, up } = this.torrents.totals;
    return { downloaded: down.total, uploaded: up.total, downloadRate: down.rate(), uploadRate: up.rate() };
  }

  /** Totals for status displays. */
  status(): {
    id: string;
    name: string;
    port: number;
    peers: number;
    unreachablePeers: number;
    files: number;
    connections: number;
    /** Connections the peer port refused or cut since start, by reason (tls: no TLS with the swarm's key). */
    refused: Readonly<PeerServer['refused']>;
    torrents: TorrentStats[];
    serving: ServingStats;
  } {
    const { peers, unreachable } = this.peerCount();
    return {
      id: this.id,
      name: this.name,
      port: this.port,
      peers,
      unreachablePeers: unreachable,
      files: this.library.files().length,
      connections: this.server.connections,
      refused: { ...this.server.refused },
      torrents: this.torrents.list().map((t) => t.info()),
      serving: this.torrents.serving(),
    };
  }

  // ---- internals ------------------------------------------------------------------------

  /** How a magnet or a bare infohash becomes a torrent (downloads/resolve.ts). */
  private get resolving(): ResolveInit {
    return {
      peerId: this.peerId,
      port: this.port,
      askNodes: (h, hint) => this.finder.metainfo(h, hint),
      timeoutMs: Math.max(METADATA_TIMEOUT_MS, this.init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS),
      timeouts: this.timeouts,
      transport: this.transport,
      trackerHeaders: this.trackerHeaders,
      log: this.log,
    };
  }

  /** A private swarm's bootstrap tracker takes announces carrying the swarm's HMAC (bootstrap-client.ts). */
  private readonly trackerHeaders = (target: string, url: URL): Record<string, string> | undefined => this.discovery_?.bootstrap?.trackerHeaders(url, target);

  private readonly contentSources = {
    download: (h: string) => this.downloads.get(h),
    shared: (h: string) => this.library.byInfoHash(h),
  };

  /** The parts the wiring needs (node-wiring.ts). */
  private get parts(): WiredParts {
    const { registry, library, downloads, torrents, announcer, gossip, finder, control, log } = this;
    return { registry, library, downloads, torrents, announcer, holders: this.holderIndex, gossip, finder, control, discovery: this.discovery_, trackers: this.init.trackers ?? [], log };
  }

  private metainfoOf(infohash: string): Metainfo | undefined {
    const h = infohash.toLowerCase();
    return this.library.byInfoHash(h)?.metainfo ?? this.downloads.get(h)?.metainfo ?? this.torrents.get(h)?.metainfo;
  }
}
