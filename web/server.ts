/**
 * The dashboard's HTTP server: EJS pages, the REST API (/api, see web/api.ts), its
 * OpenAPI document and swagger-ui docs (/api/docs), static files (/static) and socket.io
 * live updates (web/live.ts), all on one port, guarded by web/auth.ts.
 *
 * For the views (web/views/*.ejs, web/public/*):
 * - Every page is `res.render(page, { page, title, status, peers?, files?, downloads?,
 *   query?, results?, seeding?, settings? })` with the contract's shapes (web/contract.ts):
 *   `page` is one of overview, peers, files, search, transfers, seeding, settings.
 * - The Content-Security-Policy allows scripts and style sheets from this origin only: no
 *   inline <script> and no on*= handlers (data for scripts can ride in a
 *   `<script type="application/json">` block, which is never executed). Inline style
 *   *attributes* are allowed (progress bar widths), <style> elements are not. Images from
 *   self and data: URLs; connections (fetch, socket.io) to this origin only.
 * - socket.io needs no token from the page: the HttpOnly cookie set by `/?token=` rides
 *   along with its requests. Scripts outside a browser pass the token with the first
 *   request (the client's `query: { token }` or `extraHeaders: { Authorization }`): no
 *   engine.io session is allocated without it. Live connections are bounded, in all
 *   (MAX_LIVE_CLIENTS) and per address (MAX_LIVE_PER_ADDRESS).
 * - After a (re)connect, pages should reload their lists from the API: events missed while
 *   disconnected are not replayed.
 */
import http, { type IncomingMessage } from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Server as SocketServer } from 'socket.io';
import { silentLogger, WarnLimiter, type Logger, type Node } from '../network/index.js';
import { SearchQuerySchema } from './contract.js';
import { Auth, isLoopbackHost } from './auth.js';
import { apiRouter, describeError, HttpError, type ApiInit } from './api.js';
import { Live } from './live.js';
import { downloadViews, fileViews, machineAddresses, peerViews, searchResultViews, seedingView, settingsView, statusView } from './views-data.js';

export const DEFAULT_HTTP_HOST = '127.0.0.1';
export const WARN_PER_MINUTE = 20;
/** Live (socket.io) connections at once, and from one address: each costs a session and a stream of pushes. */
export const MAX_LIVE_CLIENTS = 64;
export const MAX_LIVE_PER_ADDRESS = 16;

export interface WebServerInit {
  node: Node;
  /** Listen address; 127.0.0.1 by default. Anything but loopback requires a token. */
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** Access token; the node's own (kept in its state folder) when listening beyond loopback and none is given. */
  token?: string;
  /** Require a token (the node's own unless given) even on loopback. */
  requireToken?: boolean;
  logger?: Logger;
  /** Passed to the API (tests shorten them). */
  contentWaitMs?: ApiInit['contentWaitMs'];
  resolveTimeoutMs?: ApiInit['resolveTimeoutMs'];
  maxUploadBytes?: ApiInit['maxUploadBytes'];
}

const PAGES = {
  overview: { path: '/', title: 'Overview' },
  peers: { path: '/peers', title: 'Peers' },
  files: { path: '/files', title: 'Files' },
  search: { path: '/search', title: 'Search' },
  transfers: { path: '/transfers', title: 'Transfers' },
  seeding: { path: '/seeding', title: 'Seeding' },
  settings: { path: '/settings', title: 'Settings' },
} as const;

const ERROR_TITLES: Record<number, string> = { 400: 'Bad request', 404: 'Not found', 500: 'Something went wrong' };

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "style-src-attr 'unsafe-inline'",
  "img-src 'self' data:",
  "media-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');
/** swagger-ui sets inline styles and draws its icons from data: URLs. */
const DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");

/** The few swagger-ui-dist files the docs page uses. */
const SWAGGER_FILES = new Set(['swagger-ui.css', 'swagger-ui-bundle.js', 'swagger-ui-standalone-preset.js', 'favicon-32x32.png', 'favicon-16x16.png']);

const DOCS_HTML = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Shoal API</title>
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/api/docs/assets/init.js"></script>
</body>
</html>
`;
const DOCS_INIT = `window.ui = SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui', deepLinking: true, tryItOutEnabled: false });\n`;

/** Views and static files sit in the source tree: next to this file, or two levels above dist/web/. */
function assetDir(name: 'views' | 'public'): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, name), path.join(here, '..', '..', 'web', name)];
  return candidates.find((d) => fs.existsSync(d)) ?? candidates[1]!;
}

function swaggerDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

export class WebServer {
  readonly node: Node;
  private readonly log: Logger;
  private readonly warnings: WarnLimiter;
  private readonly host: string;
  private readonly auth: Auth;
  private readonly app: express.Express;
  private readonly http: http.Server;
  private io: SocketServer | null = null;
  private live: Live | null = null;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private stopping: Promise<void> | null = null;

  constructor(private readonly init: WebServerInit) {
    this.node = init.node;
    this.log = init.logger ?? silentLogger();
    this.warnings = new WarnLimiter(this.log, WARN_PER_MINUTE);
    this.host = init.host ?? DEFAULT_HTTP_HOST;
    const loopback = isLoopbackHost(this.host);
    // The node keeps its token across restarts: a URL opened once, or a script, keeps working.
    const token = init.token ?? (init.requireToken || !loopback ? init.node.accessToken() : undefined);
    this.auth = new Auth({ token, port: () => this.port, loopbackOnly: loopback });
    this.app = this.buildApp();
    this.http = http.createServer(this.app);
    this.http.keepAliveTimeout = 5000;
    this.http.headersTimeout = 10_000;
    // Uploads and video streams may run for long: no total limit, but an idle socket goes.
    this.http.requestTimeout = 0;
    this.http.timeout = 120_000;
  }

  get port(): number {
    const a = this.http.address() as AddressInfo | null;
    return a?.port ?? this.init.port;
  }

  /** Where to open the dashboard (127.0.0.1 when listening on every interface). */
  get url(): string {
    let host = this.host;
    if (host === '0.0.0.0' || host === '::') host = '127.0.0.1';
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /**
   * What to open in a browser, token included: the listen address, or, when listening on
   * every interface, 127.0.0.1 and each LAN address of this machine.
   */
  get openUrls(): string[] {
    const withToken = (u: string) => (this.token ? `${u}/?token=${encodeURIComponent(this.token)}` : `${u}/`);
    const urls = [this.url];
    if (this.host === '0.0.0.0' || this.host === '::') urls.push(...machineAddresses().map((a) => `http://${a}:${this.port}`));
    return urls.map(withToken);
  }

  /** The access token in use, if any. */
  get token(): string | undefined {
    return this.auth.token;
  }

  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    this.state = 'running';
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.init.port, this.host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.http.on('error', (err) => this.log.error({ err: err.message }, 'dashboard server error'));
    this.io = new SocketServer(this.http, {
      serveClient: true,
      maxHttpBufferSize: 10_000,
      // Host and Origin are checked on every engine.io request (polling and the websocket
      // upgrade): a page of another site must not even read the live stream.
      allowRequest: (req, cb) => {
        const refusal = this.auth.checkHost(req)?.error ?? this.auth.checkOrigin(req)?.error ?? this.liveRefusal(req);
        if (refusal) this.warn({ remote: req.socket.remoteAddress, reason: refusal }, 'socket.io request refused');
        cb(refusal ?? null, refusal === null);
      },
    });
    // engine.io sessions by remote address (the bound above counts them).
    this.io.engine.on('connection', (conn: { request: IncomingMessage; once(e: 'close', f: () => void): void }) => {
      const from = conn.request.socket.remoteAddress ?? '?';
      this.liveSessions.set(from, (this.liveSessions.get(from) ?? 0) + 1);
      conn.once('close', () => {
        const n = (this.liveSessions.get(from) ?? 1) - 1;
        if (n > 0) this.liveSessions.set(from, n);
        else this.liveSessions.delete(from);
      });
    });
    this.io.use((socket, next) => {
      const given = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
      if (this.auth.allowedLive(socket.request) || this.auth.allowed(socket.request, given)) return next();
      this.warn({ remote: socket.handshake.address }, 'socket.io connection without a valid token');
      next(new Error('unauthorized: an access token is required'));
      // The refusal is on its way; a client that does not go away by itself is cut off.
      setTimeout(() => socket.conn.close(), 1000).unref();
    });
    this.live = new Live({ io: this.io, node: this.node, httpUrl: () => this.url, tokenInUse: () => this.token !== undefined, log: this.log });
    this.live.start();
    this.log.info({ url: this.url, token: this.token !== undefined }, 'dashboard listening');
  }

  /**
   * Why a new live connection (an engine.io handshake: no `sid` yet) may not have a session,
   * or null. Nothing is allocated for a client without the token, and the sessions are
   * bounded in all and per address, so a flood of handshakes costs the node nothing lasting.
   */
  private readonly liveSessions = new Map<string, number>();

  private liveRefusal(req: IncomingMessage): string | null {
    if (new URL(req.url ?? '/', 'http://x').searchParams.has('sid')) return null; // a session's later request
    if (!this.auth.allowedLive(req)) return 'unauthorized: an access token is required (the cookie, Authorization: Bearer <token>, or ?token= on the socket.io URL)';
    const from = req.socket.remoteAddress ?? '?';
    const all = [...this.liveSessions.values()].reduce((a, b) => a + b, 0);
    if (all >= MAX_LIVE_CLIENTS) return `too many live connections (${MAX_LIVE_CLIENTS})`;
    if ((this.liveSessions.get(from) ?? 0) >= MAX_LIVE_PER_ADDRESS) return `too many live connections from ${from} (${MAX_LIVE_PER_ADDRESS})`;
    return null;
  }

  /** Close every connection and stop pushing. Idempotent; the node is not stopped. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const wasRunning = this.state === 'running';
      this.state = 'stopped';
      this.live?.stop();
      if (!wasRunning) return;
      const closed = this.io ? this.io.close() : new Promise<void>((resolve) => this.http.close(() => resolve()));
      this.http.closeAllConnections();
      await closed;
    })();
    return this.stopping;
  }

  private buildApp(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('query parser', 'simple');
    app.set('views', assetDir('views'));
    app.set('view engine', 'ejs');
    app.set('etag', false);

    app.use((req, res, next) => {
      res.setHeader('Content-Security-Policy', req.path === '/api/docs' || req.path === '/api/docs/' ? DOCS_CSP : CSP);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('X-Frame-Options', 'DENY');
      res.setHeader('Referrer-Policy', 'no-referrer');
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      if (this.log.isLevelEnabled('debug')) this.log.debug({ remote: req.socket.remoteAddress, method: req.method, url: req.originalUrl.slice(0, 200) }, 'request');
      next();
    });
    // Code and styles (ours and swagger-ui's) are no secret: they load without the token.
    const isPublic = (req: Request) => req.path.startsWith('/static/') || req.path.startsWith('/api/docs/assets/') || req.path === '/favicon.ico';
    app.use(this.auth.middleware(isPublic));

    app.use('/static', express.static(assetDir('public'), { index: false, maxAge: '1h', fallthrough: true }));
    app.get('/favicon.ico', (_req, res) => {
      res.status(204).end();
    });

    const swagger = swaggerDir();
    app.get('/api/docs/assets/init.js', (_req, res) => {
      res.type('application/javascript').send(DOCS_INIT);
    });
    app.get('/api/docs/assets/:file', (req, res, next) => {
      const file = String(req.params.file);
      if (!SWAGGER_FILES.has(file)) return next();
      res.sendFile(path.join(swagger, file), { maxAge: '1d' });
    });
    app.get(['/api/docs', '/api/docs/'], (_req, res) => {
      res.type('html').send(DOCS_HTML);
    });

    app.use(
      '/api',
      apiRouter({
        node: this.node,
        log: this.log,
        httpUrl: () => this.url,
        contentWaitMs: this.init.contentWaitMs,
        resolveTimeoutMs: this.init.resolveTimeoutMs,
        maxUploadBytes: this.init.maxUploadBytes,
        tokenInUse: () => this.token !== undefined,
        rotateToken: (res) => this.rotateToken(res),
      }),
    );

    const render = (res: Response, page: keyof typeof PAGES, extra: Record<string, unknown>) => {
      res.setHeader('Cache-Control', 'no-store');
      res.render(page, { page, title: PAGES[page].title, status: statusView(this.node, this.url), ...extra });
    };
    app.get(PAGES.overview.path, (_req, res) => render(res, 'overview', { downloads: downloadViews(this.node) }));
    app.get(PAGES.peers.path, (_req, res) => render(res, 'peers', { peers: peerViews(this.node) }));
    app.get(PAGES.files.path, (_req, res) => {
      this.node.refreshHolders();
      render(res, 'files', { files: fileViews(this.node) });
    });
    app.get(PAGES.transfers.path, (_req, res) => render(res, 'transfers', { downloads: downloadViews(this.node) }));
    app.get(PAGES.seeding.path, (_req, res) => render(res, 'seeding', { seeding: seedingView(this.node) }));
    app.get(PAGES.settings.path, (_req, res) => render(res, 'settings', { settings: settingsView(this.node.settings(), this.token !== undefined) }));
    app.get(PAGES.search.path, async (req, res) => {
      const raw = typeof req.query.q === 'string' ? req.query.q : '';
      const q = SearchQuerySchema.safeParse({ q: raw });
      if (!q.success) return render(res, 'search', { query: raw.slice(0, 256) });
      const results = await this.node.search(q.data.q);
      render(res, 'search', { query: q.data.q, results: searchResultViews(this.node, results) });
    });

    app.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} ${req.path.slice(0, 200)}`)));
    app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
      const { status, message, headers } = describeError(err);
      if (status >= 500) this.log.error({ err: err instanceof Error ? err.stack : String(err), url: req.originalUrl.slice(0, 200) }, 'request failed');
      else this.warn({ remote: req.socket.remoteAddress, method: req.method, url: req.originalUrl.slice(0, 200), status, error: message }, 'bad request');
      if (res.headersSent) {
        // Mid-stream: the status is gone; cutting the connection is the only honest answer.
        res.destroy();
        return;
      }
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.status(status);
      const json = () => void res.json({ error: message });
      // A person who followed a link gets the error page; the API and scripts get JSON.
      const wantsPage = !req.path.startsWith('/api/') && !req.path.startsWith('/static/') && req.method === 'GET' && req.accepts(['json', 'html']) === 'html';
      if (!wantsPage) return json();
      res.render('error', { page: 'error', title: ERROR_TITLES[status] ?? 'Something went wrong', status, message }, (renderErr: Error | null, html?: string) => {
        if (renderErr) {
          this.log.error({ err: renderErr.message }, 'cannot render the error page');
          return json();
        }
        res.type('html').send(html);
      });
    });
    return app;
  }

  /**
   * A new access token, the only one from now on. The answer sets the asking browser's cookie
   * to it; once it is sent, every live connection ends (they were made with the old token):
   * a page with the new cookie reconnects by itself, anyone else must sign in again.
   */
  private async rotateToken(res: Response): Promise<{ token: string; openUrl: string }> {
    const token = await this.node.rotateAccessToken();
    this.auth.setToken(token);
    res.setHeader('Set-Cookie', this.auth.cookie(token));
    res.once('finish', () => {
      for (const socket of this.io?.of('/').sockets.values() ?? []) socket.conn.close();
    });
    this.log.info('dashboard access token rotated: the old one no longer works');
    return { token, openUrl: this.openUrls[0]! };
  }

  /** At most WARN_PER_MINUTE warnings a minute; the rest are counted and summarised. */
  private warn(fields: Record<string, unknown>, msg: string): void {
    this.warnings.warn(fields, msg);
  }
}
