/**
 * The bootstrap server: one HTTP port serving the node registry API, the BitTorrent
 * tracker and the live monitor page (see network/wire/bootstrap-api.ts for the routes).
 *
 * The node API (register, heartbeat, unregister, reports, search) and the tracker are open to
 * every address: nodes are remote by design. The monitor (page, feed, GET /api/nodes) is open
 * on the server's own host and needs the monitor token from anywhere else; a browser cannot
 * change the registry at all (monitor-access.ts).
 *
 * /announce and /scrape skip Express: the http server hands them straight to the tracker's
 * handler, because a tracker answers far more requests than anything else here and
 * Express's routing would dominate their cost. Everything else goes through Express, and
 * /socket.io/ through socket.io.
 *
 * What a client does wrong is answered with a 4xx and a JSON error, and logged at warn at
 * most WARN_PER_MINUTE times a minute, so a flood of bad requests cannot flood the log.
 *
 * Register, heartbeat, unregister and reports must be signed by the key their node id derives
 * from (request-check.ts): nobody registers, evicts or reports for another node's id, from
 * loopback neither. Given a secret (`--secret`, `--secret-file`), the server serves a
 * private swarm: every node API request and tracker announce must carry the swarm's HMAC
 * (real BitTorrent clients cannot, and are refused), and the monitor asks for the secret.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { z } from 'zod';
import { silentLogger, WarnLimiter, type Logger } from '../network/util/log.js';
import { isLoopbackAddress, normalizeAddress } from '../network/util/addresses.js';
import { HttpError } from '../network/util/http-error.js';
import {
  HeartbeatRequestSchema, InstanceSchema, NodeIdSchema, RegisterRequestSchema, ReportRequestSchema, SearchQuerySchema,
  MAX_BODY_BYTES, MAX_PEERS_IN_ANSWER, describeIssue,
  type RegisterResponse, type SearchHit,
} from '../network/wire/bootstrap-api.js';
import { NodeRegistry, RegistryError, DEFAULT_REPORT_THRESHOLD, type HostMap, type NodeRecord } from './registry.js';
import { RequestAuthError, RequestCheck } from './request-check.js';
import { AddressRateLimit } from './rate-limit.js';
import { addressBucket } from './address-bucket.js';
import { SwarmSecret } from '../network/security/secret.js';
import { AUTH_HEADERS, PROOF_HEADER, answerProof } from '../network/wire/request-auth.js';
import { encodeFailure } from '../network/wire/tracker-codec.js';
import { Tracker, DEFAULT_ANNOUNCE_INTERVAL_S } from './tracker.js';
import { Monitor, type MonitorPayload } from './monitor.js';
import { MonitorAccess } from './monitor-access.js';
import { generateMonitorToken, loadMonitorToken } from './monitor-token.js';

export const DEFAULT_PORT = 8000;
export const DEFAULT_HEARTBEAT_MS = 30_000;
export const WARN_PER_MINUTE = 20;
/** The monitor page's policy: our own scripts, styles and feed only; never framed. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "style-src-attr 'unsafe-inline'", // progress bar widths
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export interface BootstrapServerInit {
  /** 8000 by default; 0 picks a free port. */
  port?: number;
  /** Listen address; every interface by default. */
  host?: string;
  /** Where the registry (nodes/, a file per node) and monitor-token live; none = nothing is persisted. */
  dataDir?: string;
  /**
   * What a visitor from another machine needs to see the monitor. None given: the one kept
   * in `<dataDir>/monitor-token` (created at the first start), or a fresh one per start
   * without a data dir.
   */
  monitorToken?: string;
  heartbeatMs?: number;
  /** A node that has not heartbeaten for this long expires; 3 heartbeats by default. */
  ttlMs?: number;
  reportThreshold?: number;
  announceIntervalS?: number;
  maxNodes?: number;
  maxNodesPerAddress?: number;
  maxFiles?: number;
  maxBytes?: number;
  /**
   * A private swarm's secret: requests and tracker announces need its HMAC, the monitor asks
   * for it. At least 8 characters (network/security/secret.ts).
   */
  secret?: string;
  /** Node API requests per second per address share, and how many at once (rate-limit.ts). */
  requestsPerSecond?: number;
  requestBurst?: number;
  logger?: Logger;
}

/** A request whose raw body bytes were kept by the JSON parser (for the signature's digest). */
interface RawBodyRequest extends http.IncomingMessage {
  rawBody?: Buffer;
  /** In a private swarm: the nonce of a request that carried the swarm's HMAC (its answer proves ours). */
  provenNonce?: string;
}

/** Views and static files sit in the source tree, next to this file or two levels above dist/bootstrap/. */
function assetDir(name: 'views' | 'public'): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, name), path.join(here, '..', '..', 'bootstrap', name)];
  return candidates.find((d) => fs.existsSync(d)) ?? candidates[1]!;
}

export class BootstrapServer {
  readonly registry: NodeRegistry;
  readonly tracker: Tracker;
  readonly heartbeatMs: number;
  private readonly log: Logger;
  private readonly warnings: WarnLimiter;
  private readonly access: MonitorAccess;
  private readonly app: express.Express;
  private readonly http: http.Server;
  private readonly monitor: Monitor;
  private readonly auth: RequestCheck;
  private readonly rate: AddressRateLimit;
  private readonly secret: SwarmSecret | null;
  private token = '';
  private timers: NodeJS.Timeout[] = [];
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private stopping: Promise<void> | null = null;

  constructor(private readonly init: BootstrapServerInit = {}) {
    this.log = init.logger ?? silentLogger();
    this.warnings = new WarnLimiter(this.log, WARN_PER_MINUTE);
    this.heartbeatMs = init.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.secret = init.secret === undefined ? null : SwarmSecret.from(init.secret);
    this.auth = new RequestCheck({ macKey: this.secret?.bootstrapKey });
    this.rate = new AddressRateLimit({ perSecond: init.requestsPerSecond, burst: init.requestBurst });
    this.registry = new NodeRegistry({
      ttlMs: init.ttlMs ?? 3 * this.heartbeatMs,
      dir: init.dataDir ? path.join(init.dataDir, 'nodes') : undefined,
      reportThreshold: init.reportThreshold ?? DEFAULT_REPORT_THRESHOLD,
      maxNodes: init.maxNodes,
      maxNodesPerAddress: init.maxNodesPerAddress,
      maxFiles: init.maxFiles,
      maxBytes: init.maxBytes,
      logger: this.log,
    });
    this.tracker = new Tracker({
      intervalS: init.announceIntervalS ?? DEFAULT_ANNOUNCE_INTERVAL_S,
      extraPeers: (infoHash, limit, via) => {
        const seeds = this.registry.seedsOf(infoHash, limit);
        if (seeds.length === 0) return []; // most announces: no host mapping to work out
        const hostFor = hostMap(via.remote, via.local);
        return seeds.map((r) => ({ host: hostFor(r.host), port: r.port }));
      },
      onBadRequest: (remote, reason) => this.warn({ remote, reason }, 'bad tracker request'),
    });
    this.access = new MonitorAccess({
      token: () => this.token,
      port: () => this.port,
      secret: this.secret,
      onRefused: (req, r) => this.warn({ remote: req.socket.remoteAddress, url: (req.url ?? '').slice(0, 200), status: r.status }, 'monitor access refused'),
    });
    this.monitor = new Monitor({
      registry: this.registry,
      access: this.access,
      search: (q, req) => this.search(q, req),
      warn: (fields, msg) => this.warn(fields, msg),
      log: this.log,
    });
    this.app = this.buildApp();
    const isTracker = (url: string, p: string) => url.startsWith(p) && (url.length === p.length || url[p.length] === '?');
    this.http = http.createServer((req, res) => {
      const url = req.url ?? '/';
      if (isTracker(url, '/announce') || isTracker(url, '/scrape')) this.trackerGate(req, res);
      else this.app(req, res);
    });
    this.http.keepAliveTimeout = 5000;
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 30_000;
  }

  get port(): number {
    const a = this.http.address() as AddressInfo | null;
    return a?.port ?? 0;
  }

  /** A URL for this machine: the listen address, or 127.0.0.1 when listening on every interface. */
  get url(): string {
    const a = this.http.address() as AddressInfo | null;
    let host = a?.address ?? this.init.host ?? '127.0.0.1';
    if (host === '0.0.0.0' || host === '::') host = '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /** What a visitor from another machine needs to see the monitor (known once started). */
  get monitorToken(): string {
    return this.token;
  }

  /** Does this server serve a private swarm (started with a secret)? */
  get isPrivate(): boolean {
    return this.secret !== null;
  }

  /** Requests refused for their authentication since the start, by reason; and those refused for their rate. */
  refusals(): Partial<Record<string, number>> {
    return { ...this.auth.counts(), ...(this.rate.refused > 0 && { 'rate-limited': this.rate.refused }) };
  }

  /** In a private swarm, a tracker request needs the swarm's HMAC like any other; then the tracker answers. */
  private readonly trackerGate = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (this.secret) {
      try {
        this.auth.check({ method: req.method ?? 'GET', target: req.url ?? '/', headers: req.headers }, { signature: false });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.warn({ remote: req.socket.remoteAddress, url: (req.url ?? '').slice(0, 200), reason: message }, 'tracker request refused');
        const body = encodeFailure(message);
        res.writeHead(401, { 'content-type': 'text/plain', 'content-length': body.length, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
    }
    this.tracker.handler(req, res);
  };

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    const { monitorToken, dataDir } = this.init;
    this.token = monitorToken ?? (dataDir ? await loadMonitorToken(dataDir) : generateMonitorToken());
    if (dataDir) await noteLegacyRegistry(dataDir, this.log);
    await this.registry.load();
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.init.port ?? DEFAULT_PORT, this.init.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.monitor.start(this.http);
    const every = (ms: number, f: () => void) => {
      const t = setInterval(f, ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.max(50, Math.min(this.registry.ttlMs / 4, 5000)), () => this.registry.expire());
    every(this.tracker.intervalS * 1000, () => this.tracker.store.expire(Date.now()));
    this.log.info({ url: this.url, nodes: this.registry.size }, 'bootstrap server listening');
  }

  /** Stop listening, close every connection, save the registry. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const feedClosed = this.monitor.stop();
    if (wasRunning) {
      // socket.io closes its sockets and engine, then the http server; idle keep-alive
      // connections would hold that close open, so they go at once.
      const closed = feedClosed ?? new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeAllConnections();
      await closed;
    }
    await this.registry.close();
  }

  /** The monitor's data: every node, freshest first, the totals, and the server's clock for "ago". */
  monitorPayload(): MonitorPayload {
    return this.monitor.payload();
  }

  /** The index, with hosts as this asker should dial them. */
  private search(q: string, req: Request): SearchHit[] {
    return this.registry.search(q, hostMap(remoteOf(req), req.socket.localAddress ?? ''));
  }

  private buildApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('query parser', 'simple');
    app.set('views', assetDir('views'));
    app.set('view engine', 'ejs');
    app.use((req, res, next) => {
      res.setHeader('Content-Security-Policy', CSP);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('X-Frame-Options', 'DENY');
      res.setHeader('Referrer-Policy', 'no-referrer');
      if (this.log.isLevelEnabled('debug')) this.log.debug({ remote: req.socket.remoteAddress, method: req.method, url: req.originalUrl.slice(0, 200) }, 'request');
      next();
    });
    // Also mounted here so the app alone is a complete server (the http fast path normally wins).
    app.get(['/announce', '/scrape'], this.trackerGate);
    app.use('/static', express.static(assetDir('public'), { index: false, maxAge: '1h' }));
    app.get('/', this.access.guard, this.monitor.page);
    app.post('/login', express.urlencoded({ extended: false, limit: 8192, parameterLimit: 4 }), this.access.login);
    app.get('/favicon.ico', (_req, res) => res.status(204).end()); // browsers ask; not worth a warning

    const api = express.Router();
    api.use(this.access.notFromBrowsers);
    api.use((req, res, next) => {
      const wait = this.rate.take(addressBucket(remoteOf(req)));
      if (wait === 0) return next();
      res.setHeader('Retry-After', String(Math.ceil(wait / 1000)));
      next(new HttpError(429, `too many requests from this address (at most ${this.rate.perSecond} a second): slow down`));
    });
    // Our clock on every answer: a node whose clock is off signs with ours (bootstrap-client.ts).
    api.use((_req, res, next) => {
      res.setHeader(AUTH_HEADERS.time, String(Date.now()));
      next();
    });
    // A private swarm's server proves the secret in turn on every answer to a request that
    // carried it (request-auth.ts): its nodes use no server that cannot.
    if (this.secret) {
      const key = this.secret.bootstrapKey;
      api.use((req, res, next) => {
        const send = res.send.bind(res);
        res.send = (body?: unknown) => {
          const nonce = (req as RawBodyRequest).provenNonce;
          if (nonce !== undefined && (typeof body === 'string' || Buffer.isBuffer(body))) res.setHeader(PROOF_HEADER, answerProof(key, nonce, res.statusCode, body));
          return send(body);
        };
        next();
      });
    }
    api.use(express.json({ limit: MAX_BODY_BYTES, strict: true, verify: (req: RawBodyRequest, _res, buf) => void (req.rawBody = buf) }));
    /** The node id whose key signed `req` (the signature checked, and the swarm's HMAC in a private swarm). */
    const signer = (req: Request): string => this.check(req, true)!;
    api.post('/nodes', (req, res) => {
      const by = signer(req);
      const body = parse(RegisterRequestSchema, jsonBody(req));
      const record = this.registry.register(body, remoteOf(req), by);
      this.log.debug({ node: record.id, host: `${record.host}:${record.port}`, files: record.files.length }, 'node registered');
      res.json(this.answer(record, req));
    });
    api.put('/nodes/:id', (req, res) => {
      const by = signer(req);
      const id = parse(NodeIdSchema, req.params.id, 'node id in the path');
      const body = parse(HeartbeatRequestSchema, jsonBody(req));
      res.json(this.answer(this.registry.heartbeat(id, body, remoteOf(req), by), req));
    });
    api.delete('/nodes/:id', (req, res) => {
      const by = signer(req);
      const id = parse(NodeIdSchema, req.params.id, 'node id in the path');
      const instance = parse(InstanceSchema, req.query.instance, 'query parameter "instance"');
      this.registry.unregister(id, instance, by);
      this.log.debug({ node: id }, 'node unregistered');
      res.status(204).end();
    });
    api.post('/nodes/:id/reports', (req, res) => {
      const by = signer(req);
      const id = parse(NodeIdSchema, req.params.id, 'node id in the path');
      const body = parse(ReportRequestSchema, jsonBody(req));
      res.status(202).json(this.registry.report(id, body.reporter, by));
    });
    api.get('/nodes', this.access.guard, (_req, res) => {
      const { nodes, totals } = this.monitorPayload();
      res.json({ nodes, totals });
    });
    api.get('/search', (req, res) => {
      this.check(req, false);
      const { q } = parse(SearchQuerySchema, { q: req.query.q });
      res.json({ files: this.search(q, req) });
    });
    app.use('/api', api);

    app.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.path.slice(0, 200)}`)));
    app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) return next(err);
      const { status, message } = describeError(err);
      if (status >= 500) this.log.error({ err: err instanceof Error ? err.stack : String(err), url: req.originalUrl.slice(0, 200) }, 'request failed');
      else this.warn({ remote: req.socket.remoteAddress, method: req.method, url: req.originalUrl.slice(0, 200), status, error: message }, 'bad request');
      res.status(status).json({ error: message });
    });
    return app;
  }

  /**
   * Check a request's authentication (request-check.ts): signed by a node's key when
   * `signed`, with the swarm's HMAC on a private server. Returns the signer's node id.
   */
  private check(req: Request, signed: boolean): string | null {
    const { signer } = this.auth.check({ method: req.method, target: req.originalUrl, headers: req.headers, body: (req as RawBodyRequest).rawBody }, { signature: signed });
    if (this.secret) (req as RawBodyRequest).provenNonce = String(req.headers[AUTH_HEADERS.nonce]);
    return signer;
  }

  private answer(r: NodeRecord, req: Request): RegisterResponse {
    const hostFor = hostMap(remoteOf(req), req.socket.localAddress ?? '');
    const { nodes, truncated } = this.registry.peersFor(r.id, MAX_PEERS_IN_ANSWER, hostFor);
    return { self: { id: r.id, host: hostFor(r.host), port: r.port }, nodes, truncated, heartbeatMs: this.heartbeatMs, ttlMs: this.registry.ttlMs };
  }

  /** At most WARN_PER_MINUTE warnings a minute; the rest are counted and summarised. */
  private warn(fields: Record<string, unknown>, msg: string): void {
    this.warnings.warn(fields, msg);
  }
}

/**
 * A registry.json of an earlier version holds node ids that no key proves: such nodes could
 * never heartbeat again, so the file is left as it is (they register anew within a heartbeat).
 */
async function noteLegacyRegistry(dataDir: string, log: Logger): Promise<void> {
  const legacy = path.join(dataDir, 'registry.json');
  if (await fs.promises.stat(legacy).then(() => true, () => false)) {
    log.info({ file: legacy }, 'an earlier version\'s registry.json is not read: its node ids are not proven by keys (nodes register again by themselves; the file may be deleted)');
  }
}

function remoteOf(req: Request): string {
  return normalizeAddress(req.socket.remoteAddress ?? '');
}

/**
 * A node registered from the server's own machine as 127.0.0.1 is reachable from elsewhere
 * at the address the asker used to reach this server; everyone else is shown as registered.
 */
export function hostMap(remote: string, local: string): HostMap {
  if (!local || isLoopbackAddress(remote) || isLoopbackAddress(local)) return (h) => h;
  const here = normalizeAddress(local);
  return (h) => (isLoopbackAddress(h) ? here : h);
}

function jsonBody(req: Request): unknown {
  if (req.body === undefined) throw new HttpError(415, 'send a JSON body with Content-Type: application/json');
  return req.body as unknown;
}

/** Check `value`; `what` names it when it is not a body (a path or query parameter). */
function parse<S extends z.ZodType>(schema: S, value: unknown, what?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new HttpError(400, what ? `${what}: ${result.error.issues[0]?.message ?? 'invalid'}` : describeIssue(result.error));
  return result.data;
}

/** Body-parser errors carry `type` and `status`; ours carry `status`; anything else is ours to fix. */
function describeError(err: unknown): { status: number; message: string } {
  if (err instanceof HttpError || err instanceof RegistryError || err instanceof RequestAuthError) return { status: err.status, message: err.message };
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.too.large':
      return { status: 413, message: `body larger than ${MAX_BODY_BYTES} bytes` };
    case 'entity.parse.failed':
      return { status: 400, message: 'body is not valid JSON' };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: e.message ?? 'unsupported body encoding' };
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return { status: e.status, message: e.message ?? 'bad request' };
  return { status: 500, message: 'internal error' };
}
