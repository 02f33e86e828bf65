/**
 * The live monitor: the page (views/monitor.ejs, rendered from the same payload the feed
 * pushes, plus a search of the index when `?q=` is given, so it works without JavaScript),
 * and the socket.io `nodes` feed that public/monitor.js redraws it from. Who may see either
 * is monitor-access.ts's business; nothing here changes any state.
 *
 * The payload: every node (freshest first), the server's clock (for "last seen … ago") and
 * the totals: nodes, seeders, leechers, and the distinct files shared complete somewhere
 * with their bytes (an infohash counts once, however many nodes share it).
 */
import type http from 'node:http';
import type { Request, Response } from 'express';
import { Server as SocketServer } from 'socket.io';
import type { Logger } from '../network/util/log.js';
import { SearchQuerySchema, describeIssue, type NodeView, type SearchHit } from '../network/wire/bootstrap-api.js';
import type { MonitorAccess } from './monitor-access.js';
import type { NodeRegistry } from './registry.js';

/** Changes are pushed at most this often (a burst of registrations is one redraw). */
const PUSH_MS = 250;
/** Pushed this often even without changes, so "last seen" stays true. */
const REFRESH_MS = 5000;

export interface MonitorTotals {
  nodes: number;
  seeders: number;
  leechers: number;
  /** Distinct infohashes that some node shares complete. */
  files: number;
  /** Their sizes added up, each infohash once. */
  bytes: number;
}

export interface MonitorPayload {
  now: number;
  nodes: NodeView[];
  totals: MonitorTotals;
}

export function monitorPayload(registry: NodeRegistry): MonitorPayload {
  const nodes = registry.list().map((r) => registry.view(r));
  const seeders = nodes.filter((n) => n.role === 'SEEDER').length;
  return { now: Date.now(), nodes, totals: { nodes: nodes.length, seeders, leechers: nodes.length - seeders, ...registry.shareTotals() } };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1.5 GiB`; public/monitor.js has the same function for live redraws. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${UNITS[u]}`;
}

export interface MonitorInit {
  registry: NodeRegistry;
  access: MonitorAccess;
  /** The index search, with hosts as this asker should dial them (the API's own). */
  search: (query: string, req: Request) => SearchHit[];
  /** Rate-limited warnings. */
  warn: (fields: Record<string, unknown>, msg: string) => void;
  log: Logger;
}

export class Monitor {
  private io: SocketServer | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private pushTimer: NodeJS.Timeout | null = null;

  constructor(private readonly init: MonitorInit) {}

  payload(): MonitorPayload {
    return monitorPayload(this.init.registry);
  }

  /** GET /: the page; with `?q=`, the index searched as GET /api/search would (same checks, 400 when refused). */
  readonly page = (req: Request, res: Response): void => {
    const raw = req.query.q;
    let query = typeof raw === 'string' ? raw : '';
    let hits: SearchHit[] | null = null;
    let searchError: string | null = null;
    if (raw !== undefined && raw !== '') {
      const parsed = SearchQuerySchema.safeParse({ q: raw });
      if (parsed.success) hits = this.init.search(parsed.data.q, req);
      else {
        searchError = describeIssue(parsed.error);
        query = query.slice(0, 256);
        res.status(400);
      }
    }
    const nameOf = (id: string) => this.init.registry.get(id)?.name ?? '';
    res.render('monitor', { ...this.payload(), query, hits, searchError, formatBytes, nameOf });
  };

  /** Serve the feed on `server`: pushes on every registry change (debounced) and every few seconds. */
  start(server: http.Server): void {
    const { access, registry } = this.init;
    this.io = new SocketServer(server, {
      serveClient: true,
      maxHttpBufferSize: 10_000,
      // Checked on every engine.io request, the websocket upgrade included (CORS does not cover it).
      allowRequest: (req, cb) => {
        const refusal = access.crossSite(req);
        if (refusal) this.init.warn({ remote: req.socket.remoteAddress, reason: refusal.error }, 'socket.io request refused');
        cb(refusal ? refusal.error : null, refusal === null);
      },
    });
    this.io.use((socket, next) => {
      const given = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
      if (access.allowed(socket.request, given)) return next();
      this.init.warn({ remote: socket.handshake.address }, 'monitor feed refused: no valid token from another machine');
      next(new Error('unauthorized: the monitor needs its access token from another machine'));
      // The refusal is on its way; a client that does not go away by itself is cut off.
      setTimeout(() => socket.conn.close(), 1000).unref();
    });
    this.io.on('connection', (socket) => socket.emit('nodes', this.payload()));
    registry.on('change', this.schedulePush);
    this.refreshTimer = setInterval(() => {
      if (this.io && this.io.of('/').sockets.size > 0) this.io.emit('nodes', this.payload());
    }, REFRESH_MS);
    this.refreshTimer.unref();
  }

  /** Stop pushing and close the feed, and with it the http server; null when never started. */
  stop(): Promise<void> | null {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.pushTimer) clearTimeout(this.pushTimer);
    this.refreshTimer = this.pushTimer = null;
    this.init.registry.off('change', this.schedulePush);
    const io = this.io;
    this.io = null;
    return io ? io.close() : null;
  }

  private readonly schedulePush = (): void => {
    if (this.pushTimer || !this.io) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      this.io?.emit('nodes', this.payload());
    }, PUSH_MS);
    this.pushTimer.unref();
  };
}
