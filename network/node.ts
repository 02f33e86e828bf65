import os from 'node:os';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import { nanoid } from 'nanoid';
import { silentLogger, type Logger } from './log.js';
import { HashPool } from './library/hash-pool.js';
import { Library, type SharedFile } from './library/library.js';
import { encodeTorrent, fromInfo, DEFAULT_PIECE_LENGTH, type Metainfo } from './metainfo/metainfo.js';
import { PeerServer } from './peer-server.js';
import type { ControlRequest, ControlResponse } from './wire/control-codec.js';
import { controlRequest, fetchMetainfo } from './control/control-client.js';
import { TrackerClient } from './tracker/announce.js';
import { PeerRegistry, type KnownPeer } from './discovery/peer-registry.js';
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
  watch?: boolean;
  logger?: Logger;
}

export interface SearchResult {
  infohash: string;
  name: string;
  size: number;
  /** Nodes that answered with this file. */
  peers: Array<{ host: string; port: number }>;
}

export interface DownloadInfo extends TorrentStats {
  state: 'downloading' | 'done' | 'failed';
  path?: string;
  error?: string;
}

export interface NodeEvents {
  'peer-up': [peer: KnownPeer];
  'peer-down': [peer: KnownPeer];
  'file-added': [file: SharedFile];
  'file-removed': [file: SharedFile];
  progress: [info: DownloadInfo];
  done: [info: DownloadInfo];
  error: [err: Error, infohash?: string];
}

export const DEFAULT_MAX_CONNECTIONS = 256;

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
  readonly id = nanoid();
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
    this.registry = new PeerRegistry();
    this.server = new PeerServer({
      host: init.listenHost,
      port: init.port,
      logger: this.log,
      maxConnections: init.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
      peerTimeouts: this.timeouts,
      control: { idleMs: init.controlIdleMs ?? 60_000 },
      findTorrent: (h) => this.findTorrent(h.toString('hex')),
      controlHandler: { handle: (req) => this.handleControl(req) },
    });
    this.registry.on('peer-up', (p) => {
      this.emit('peer-up', p);
      for (const d of this.downloads.values()) if (d.state === 'downloading') d.torrent.addPeers([p]);
    });
    this.registry.on('peer-down', (p) => this.emit('peer-down', p));
    this.library.on('added', (f) => {
      this.emit('file-added', f);
      this.announceShared(f);
    });
    this.library.on('removed', (f) => this.onFileRemoved(f));
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
    await this.library.start();
    for (const p of this.init.peers ?? []) this.addPeer(p.host, p.port);
    for (const m of await PartFile.pending(path.join(this.stateDir, 'resume'), this.log)) {
      this.log.info({ file: m.name, infohash: m.infoHashHex }, 'resuming download');
      this.startDownload(m, []).catch((err: Error) => this.log.error({ err: err.message }, 'could not resume download'));
    }
    this.log.info({ port: this.port, shared: this.sharedDir, downloads: this.downloadDir, files: this.library.files().length }, 'node started');
  }

  /** Stop cleanly: close connections, flush resume records, tell trackers we left. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
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

  /** Ask every known peer (in parallel, each bounded by a timeout) and merge by infohash. */
  async search(query: string): Promise<SearchResult[]> {
    const merged = new Map<string, SearchResult>();
    await Promise.all(
      this.registry.list().map(async (p) => {
        try {
          const res = await controlRequest(p.host, p.port, { type: 'search', filename: query }, { timeoutMs: this.queryTimeout });
          if (res.type !== 'FOUND') return;
          for (const f of res.files) {
            const r = merged.get(f.infohash) ?? { infohash: f.infohash, name: f.name, size: f.size, peers: [] };
            r.peers.push({ host: p.host, port: p.port });
            merged.set(f.infohash, r);
          }
        } catch (err) {
          this.log.debug({ peer: `${p.host}:${p.port}`, err: (err as Error).message }, 'search: peer did not answer');
        }
      }),
    );
    return [...merged.values()].sort((a, b) => b.peers.length - a.peers.length || a.name.localeCompare(b.name));
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
  status(): { id: string; port: number; peers: number; files: number; connections: number; torrents: TorrentStats[] } {
    return {
      id: this.id,
      port: this.port,
      peers: this.registry.list().length,
      files: this.library.files().length,
      connections: this.server.connections,
      torrents: [...this.torrents.values()].map((t) => t.info()),
    };
  }

  // ---- internals ------------------------------------------------------------------------

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
      case 'peers':
        return { type: 'PEERS', peers: this.registry.list().slice(0, 200).map((p) => ({ host: p.host, port: p.port })) };
      default:
        return { type: 'ERROR', error: `${req.type} is not supported by this node yet` };
    }
  }
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
