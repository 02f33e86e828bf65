/**
 * `watch <glob>`: download every file matching a pattern that appears anywhere on the
 * network. While at least one pattern is set, the watcher holds a `subscribe` stream to
 * every known peer (and to each new one as it comes up); each snapshot and file-added
 * event that matches is handed to `fetch`, which decides whether it is new to us.
 * A broken stream is reopened with back-off while the registry still lists the peer.
 */
import type { Logger } from '../util/log.js';
import type { FileEntry } from '../wire/control-codec.js';
import type { KnownPeer, PeerRegistry } from '../discovery/peer-registry.js';
import { subscribe, type Subscription } from '../control/subscription.js';
import { checkPattern, globMatch, PatternError } from './glob.js';

export const MAX_WATCH_PATTERNS = 64;
/** Streams held at once; on a bigger network the freshest peers are watched. */
export const MAX_SUBSCRIPTIONS = 256;
/** A broken stream is retried after this, then after twice as long each time it fails again... */
export const RETRY_FIRST_MS = 1000;
/** ...up to this; a snapshot (the stream works) starts over from RETRY_FIRST_MS. */
export const RETRY_MAX_MS = 30_000;

export interface WatcherInit {
  registry: PeerRegistry;
  /** A private swarm's TLS key: every request to a peer goes inside TLS with it. */
  psk?: Buffer;
  /** A matching file seen on `from`: download it unless we have it or fetch it already. */
  fetch(file: FileEntry, from: KnownPeer, pattern: string): void;
  /** Everything a stream tells of a peer's files (a snapshot in full, then each change). */
  observe?(from: KnownPeer, what: 'snapshot' | 'file-added' | 'file-removed', files: FileEntry[]): void;
  logger: Logger;
  maxSubscriptions?: number;
  /** Opens one stream; the control protocol over TCP by default (a test gives its own). */
  subscribe?: typeof subscribe;
  /** Back-off of a broken stream's reconnects; RETRY_FIRST_MS doubling to RETRY_MAX_MS by default. */
  retry?: { firstMs: number; maxMs: number };
}

interface Stream {
  peer: KnownPeer;
  sub: Subscription | null;
  retryMs: number;
  timer: NodeJS.Timeout | null;
}

export class Watcher {
  private readonly patternList: string[] = [];
  private readonly streams = new Map<string, Stream>();
  private readonly onUp = (p: KnownPeer) => this.open(p);
  private readonly onDown = (p: KnownPeer) => this.close(p.key);
  private readonly onChanged = (p: KnownPeer, what: 'address' | 'instance' | 'id') => {
    if (what === 'id') return this.rekey(p);
    // Restarted or moved: its old stream is dead or points at the wrong place.
    this.close(p.key);
    this.open(p);
  };

  private readonly subscribe: typeof subscribe;
  private readonly retryFirstMs: number;
  private readonly retryMaxMs: number;

  constructor(private readonly init: WatcherInit) {
    this.subscribe = init.subscribe ?? subscribe;
    this.retryFirstMs = init.retry?.firstMs ?? RETRY_FIRST_MS;
    this.retryMaxMs = init.retry?.maxMs ?? RETRY_MAX_MS;
  }

  patterns(): string[] {
    return [...this.patternList];
  }

  /** Add a pattern; the first one starts the streams. Throws PatternError on a bad one. */
  add(pattern: string): void {
    checkPattern(pattern);
    if (this.patternList.includes(pattern)) return;
    if (this.patternList.length >= MAX_WATCH_PATTERNS) throw new PatternError(`at most ${MAX_WATCH_PATTERNS} watch patterns`);
    this.patternList.push(pattern);
    if (this.patternList.length === 1) this.startStreams();
    else for (const s of this.streams.values()) this.reopen(s); // re-read snapshots for the new pattern
  }

  remove(pattern: string): boolean {
    const i = this.patternList.indexOf(pattern);
    if (i < 0) return false;
    this.patternList.splice(i, 1);
    if (this.patternList.length === 0) this.stop();
    return true;
  }

  /** Which pattern a name matches, if any. */
  match(name: string): string | undefined {
    return this.patternList.find((p) => globMatch(p, name));
  }

  stop(): void {
    const r = this.init.registry;
    r.off('peer-up', this.onUp);
    r.off('peer-down', this.onDown);
    r.off('peer-changed', this.onChanged);
    for (const key of [...this.streams.keys()]) this.close(key);
  }

  get subscriptions(): number {
    return [...this.streams.values()].filter((s) => s.sub).length;
  }

  private startStreams(): void {
    const r = this.init.registry;
    r.on('peer-up', this.onUp);
    r.on('peer-down', this.onDown);
    r.on('peer-changed', this.onChanged);
    for (const p of r.list()) this.open(p);
  }

  private open(peer: KnownPeer): void {
    if (this.streams.has(peer.key) || this.streams.size >= (this.init.maxSubscriptions ?? MAX_SUBSCRIPTIONS)) return;
    const s: Stream = { peer, sub: null, retryMs: this.retryFirstMs, timer: null };
    this.streams.set(peer.key, s);
    this.connect(s);
  }

  private connect(s: Stream): void {
    const { peer } = s;
    const log = this.init.logger;
    s.sub = this.subscribe(peer.host, peer.port, {
      snapshot: (files) => {
        s.retryMs = this.retryFirstMs;
        log.debug({ peer: `${peer.host}:${peer.port}`, files: files.length }, 'watching peer');
        this.init.observe?.(peer, 'snapshot', files);
        for (const f of files) this.offer(f, peer);
      },
      event: (event, file) => {
        this.init.observe?.(peer, event, [file]);
        if (event === 'file-added') this.offer(file, peer);
      },
      closed: (err) => {
        s.sub = null;
        if (!err || this.streams.get(peer.key) !== s) return;
        log.debug({ peer: `${peer.host}:${peer.port}`, err: err.message, retryMs: s.retryMs }, 'watch stream closed; retrying');
        s.timer = setTimeout(() => {
          s.timer = null;
          if (this.streams.get(peer.key) === s) this.connect(s);
        }, s.retryMs);
        s.timer.unref();
        s.retryMs = Math.min(s.retryMs * 2, this.retryMaxMs);
      },
    }, { psk: this.init.psk });
  }

  private reopen(s: Stream): void {
    s.sub?.close();
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    this.connect(s);
  }

  /** A peer known by address told us its id: its stream, if any, now goes by the new key (one stream per peer). */
  private rekey(p: KnownPeer): void {
    for (const [key, s] of this.streams) {
      if (s.peer !== p || key === p.key) continue;
      this.streams.delete(key);
      if (this.streams.has(p.key)) this.close(p.key);
      this.streams.set(p.key, s);
    }
  }

  private close(key: string): void {
    const s = this.streams.get(key);
    if (!s) return;
    this.streams.delete(key);
    if (s.timer) clearTimeout(s.timer);
    s.sub?.close();
  }

  private offer(file: FileEntry, from: KnownPeer): void {
    if (file.complete === false) return; // still downloading there: wait for its file-added
    const pattern = this.match(file.name);
    if (pattern) this.init.fetch(file, from, pattern);
  }
}
