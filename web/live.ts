/**
 * Live updates over socket.io: the LiveEvents of web/contract.ts, pushed from the node's
 * events to every connected page.
 *
 * - `status` at once on connect, then every second while anyone is connected (volatile:
 *   a client that cannot keep up skips ticks instead of queueing them).
 * - Peer and file events are coalesced per key over COALESCE_MS, so a burst (a bootstrap
 *   answer naming hundreds of peers) becomes one event per peer with its last state.
 *   `peer-changed` also comes from a once-a-second diff of sources, reachability, address
 *   and name, which the registry does not announce by itself.
 * - `download` at most 4 a second per download (volatile, the last one always follows),
 *   at once and reliably when its state changes.
 * - A client whose unsent backlog passes MAX_BACKLOG packets is disconnected: it reconnects,
 *   gets a fresh status and reloads its lists, and the server's memory stays bounded.
 */
import type { Server as SocketServer, Socket } from 'socket.io';
import type { DownloadInfo, KnownPeer, Logger, Node, NodeEvents } from '../network/index.js';
import type { LiveEvents } from './contract.js';
import { discoveryView, downloadView, fileView, peerView, settingsView, statusView } from './views-data.js';
import type { PeerView } from './contract.js';

export const STATUS_INTERVAL_MS = 1000;
export const COALESCE_MS = 250;
export const DOWNLOAD_MIN_INTERVAL_MS = 250;
export const MAX_BACKLOG = 1000;

type EventName = keyof LiveEvents;
type Payload<E extends EventName> = Parameters<LiveEvents[E]>[0];

export interface LiveInit {
  io: SocketServer;
  node: Node;
  httpUrl: () => string;
  /** Whether the dashboard asks for an access token (shown with the settings). */
  tokenInUse: () => boolean;
  log: Logger;
}

interface Throttle {
  /** The state last sent, the time it was sent, and the newest info not yet sent. */
  state: DownloadInfo['state'];
  last: number;
  latest: DownloadInfo;
  timer: NodeJS.Timeout | null;
}

/** What a page shows of a peer, besides times: a change of it is a `peer-changed`. */
const peerSignature = (p: KnownPeer) => `${p.host}|${p.port}|${p.name ?? ''}|${[...p.sources].sort().join(',')}|${p.reachable}`;

export class Live {
  private readonly io: SocketServer;
  private readonly node: Node;
  private ticker: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly pending = new Map<string, { event: EventName; payload: unknown }>();
  private readonly throttles = new Map<string, Throttle>();
  /** What the pages were last told of each peer, by key: to tell changes, and to name a peer that is gone. */
  private shown = new Map<string, { sig: string; view: PeerView }>();
  private readonly unhook: Array<() => void> = [];
  private running = false;

  constructor(private readonly init: LiveInit) {
    this.io = init.io;
    this.node = init.node;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const node = this.node;
    // TypeScript cannot match a listener to a generic event name; each call below is checked against NodeEvents.
    type Listen = <E extends keyof NodeEvents>(event: E, f: (...args: NodeEvents[E]) => void) => unknown;
    const on = <E extends keyof NodeEvents>(event: E, f: (...args: NodeEvents[E]) => void): void => {
      (node.on.bind(node) as Listen)(event, f);
      this.unhook.push(() => (node.off.bind(node) as Listen)(event, f));
    };
    on('peer-up', (p) => this.peer('peer-up', p));
    on('peer-down', (p) => this.peer('peer-down', p));
    on('peer-changed', (p, what) => {
      // Its key changed (addr: to id:): the row under the old key must go, at once.
      if (what === 'id') this.diffPeers();
      else this.peer('peer-changed', p);
    });
    on('file-added', (f) => this.queue(`file:${f.metainfo.infoHashHex}`, 'file-added', () => fileView(node, f)));
    on('file-removed', (f) => this.queue(`file:${f.metainfo.infoHashHex}`, 'file-removed', () => ({ infohash: f.metainfo.infoHashHex, name: f.name })));
    on('holders', (h) => {
      const f = node.file(h);
      if (f) this.queue(`file:${h}`, 'file-changed', () => fileView(node, f));
    });
    on('progress', (d) => this.download(d));
    on('done', (d) => this.download(d));
    on('download-state', (d) => this.download(d));
    // A failure needs no listener of its own: the node announces it as a download-state first.
    on('download-removed', (h) => {
      const t = this.throttles.get(h);
      if (t?.timer) clearTimeout(t.timer);
      this.throttles.delete(h);
      this.send('download-removed', { infohash: h });
    });
    on('discovery-health', (source, h) => {
      if (source === 'multicast' || source === 'bootstrap') this.send('discovery', discoveryView(source, h));
    });
    on('settings', (s) => this.send('settings', settingsView(s, this.init.tokenInUse())));

    this.io.on('connection', this.onConnection);
  }

  stop(): void {
    this.running = false;
    for (const f of this.unhook.splice(0)) f();
    this.io.off('connection', this.onConnection);
    if (this.ticker) clearInterval(this.ticker);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const t of this.throttles.values()) if (t.timer) clearTimeout(t.timer);
    this.ticker = this.flushTimer = null;
    this.throttles.clear();
    this.pending.clear();
  }

  private get clients(): number {
    return this.io.engine?.clientsCount ?? 0;
  }

  private readonly onConnection = (socket: Socket): void => {
    socket.emit('status', statusView(this.node, this.init.httpUrl()));
    if (!this.ticker) {
      this.shown = new Map(this.node.knownPeers().map((p) => [p.key, { sig: peerSignature(p), view: peerView(p) }]));
      this.ticker = setInterval(() => this.tick(), STATUS_INTERVAL_MS);
      this.ticker.unref();
    }
  };

  private tick(): void {
    if (this.io.of('/').sockets.size === 0) {
      if (this.ticker) clearInterval(this.ticker);
      this.ticker = null;
      return;
    }
    this.io.volatile.emit('status', statusView(this.node, this.init.httpUrl()));
    this.diffPeers();
  }

  /**
   * Compare the registry with what the pages were told: a new key is a `peer-up`, a changed
   * one a `peer-changed`, a key that is gone a `peer-down` (sources, reachability and a
   * peer's key change without an event of their own on every path).
   */
  private diffPeers(): void {
    if (this.clients === 0) return;
    const now = new Map<string, { sig: string; view: PeerView }>();
    for (const p of this.node.knownPeers()) {
      const sig = peerSignature(p);
      const before = this.shown.get(p.key);
      const view = before?.sig === sig ? before.view : peerView(p);
      now.set(p.key, { sig, view });
      if (before === undefined) this.queue(`peer:${p.key}`, 'peer-up', () => view);
      else if (before.sig !== sig) this.queue(`peer:${p.key}`, 'peer-changed', () => view);
    }
    for (const [key, { view }] of this.shown) if (!now.has(key)) this.queue(`peer:${key}`, 'peer-down', () => view);
    this.shown = now;
  }

  private peer(event: 'peer-up' | 'peer-down' | 'peer-changed', p: KnownPeer): void {
    if (this.clients === 0) return;
    const view = peerView(p);
    if (event === 'peer-down') this.shown.delete(p.key);
    else this.shown.set(p.key, { sig: peerSignature(p), view });
    this.queue(`peer:${p.key}`, event, () => view);
  }

  /**
   * Keep the last event per key until the next flush. A change of something the page has
   * not been told about yet stays an addition; anything else replaces what was pending.
   */
  private queue<E extends EventName>(key: string, event: E, payload: () => Payload<E>): void {
    if (this.clients === 0) return;
    const before = this.pending.get(key);
    const kept: EventName = before && (before.event === 'peer-up' || before.event === 'file-added') && (event === 'peer-changed' || event === 'file-changed') ? before.event : event;
    this.pending.delete(key); // re-inserted last: events flush in the order they last changed
    this.pending.set(key, { event: kept, payload: payload() });
    this.flushTimer ??= setTimeout(() => this.flush(), COALESCE_MS);
  }

  private flush(): void {
    this.flushTimer = null;
    const batch = [...this.pending.values()];
    this.pending.clear();
    for (const { event, payload } of batch) this.send(event, payload as never);
  }

  private download(d: DownloadInfo): void {
    const t = this.throttles.get(d.infohash) ?? { state: d.state, last: 0, latest: d, timer: null };
    this.throttles.set(d.infohash, t);
    t.latest = d;
    if (this.clients === 0) {
      t.state = d.state;
      t.last = 0;
      return;
    }
    const now = Date.now();
    if (t.state !== d.state) {
      t.state = d.state;
      t.last = now;
      if (t.timer) clearTimeout(t.timer);
      t.timer = null;
      this.send('download', downloadView(d));
      return;
    }
    if (now - t.last >= DOWNLOAD_MIN_INTERVAL_MS) {
      t.last = now;
      this.send('download', downloadView(d), true);
      return;
    }
    // Too soon: the latest info goes out when the interval is up.
    t.timer ??= setTimeout(() => {
      t.timer = null;
      if (this.throttles.get(d.infohash) !== t) return; // cancelled meanwhile
      t.last = Date.now();
      t.state = t.latest.state;
      this.send('download', downloadView(t.latest), true);
    }, DOWNLOAD_MIN_INTERVAL_MS - (now - t.last));
  }

  private send<E extends EventName>(event: E, payload: Payload<E>, volatile = false): void {
    if (this.clients === 0) return;
    if (volatile) {
      this.io.volatile.emit(event, payload);
      return;
    }
    for (const socket of this.io.of('/').sockets.values()) {
      const backlog = (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0;
      if (backlog > MAX_BACKLOG) {
        this.init.log.warn({ client: socket.handshake.address, backlog }, 'dashboard client too slow: disconnected');
        socket.disconnect(true);
        continue;
      }
      socket.emit(event, payload);
    }
  }
}
