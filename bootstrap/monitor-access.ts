/**
 * Who may see the monitor (the page, its socket.io feed, GET /api/nodes), and what a web
 * page may do to the node API: nothing. The same ideas as the dashboard's web/auth.ts,
 * fitted to a server that listens on every interface by design.
 *
 * - **On the server's own host, no token.** A visitor whose address is one of this
 *   machine's (loopback or an interface address), who came straight here (no `Forwarded`,
 *   `X-Forwarded-For` or `X-Real-IP`: behind a reverse proxy on this host every visitor
 *   would look local), and whose `Host` names this machine: `localhost`, an IP literal or
 *   the machine's host name. DNS rebinding (a page of evil.example that resolves to
 *   127.0.0.1) still says `Host: evil.example`, so it needs the token like anyone else.
 * - **From anywhere else, the token.** `?token=` once on a page load (exchanged for an
 *   HttpOnly SameSite=Strict cookie, then redirected to the same address without it), that
 *   cookie, `Authorization: Bearer <token>`, or socket.io's `auth.token`. Constant time.
 * - **Cross-site.** socket.io refuses a request whose `Origin` names another host:port than
 *   `Host`, or that the browser marks as coming from another site (`Sec-Fetch-Site`): a
 *   websocket is not covered by CORS, and a local visitor needs no token.
 * - **The node API is for programs.** A state-changing request (POST, PUT, PATCH, DELETE)
 *   that carries `Origin` or `Sec-Fetch-Site`, which browsers add and nodes (Node's fetch)
 *   do not, is refused: no web page, not even one served to this host's browser by DNS
 *   rebinding (whose requests come from loopback, which may act for any node), can register,
 *   heartbeat, unregister or report a node. The monitor itself changes nothing.
 * - **A private swarm's server** (started with a secret) asks every visitor for the secret,
 *   on this host too: what the monitor shows (names, addresses, files) is the swarm's. The
 *   page offers a form (POST /login); the secret given is stretched and compared like any
 *   other (network/security/secret.ts), and a right one is exchanged for an HttpOnly
 *   SameSite=Strict cookie holding a key derived from it (not the secret). At most
 *   LOGINS_PER_SECOND tries a second (each costs the scrypt stretch). The monitor token
 *   still works, for scripts.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import os from 'node:os';
import type { NextFunction, Request, Response } from 'express';
import { isLoopbackAddress, localAddresses, normalizeAddress } from '../network/util/addresses.js';
import { SwarmSecret } from '../network/security/secret.js';
import { sameToken } from '../network/security/same-token.js';

/** Secrets tried at the login form per second, from everyone together. */
export const LOGINS_PER_SECOND = 5;

const STATE_CHANGING: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/** A refusal: the status to answer and why. */
export interface Refusal {
  status: number;
  error: string;
}


/** `Host` / `Origin` authority split into host and port (80 when absent); null when malformed. */
function authority(text: string): { host: string; port: number } | null {
  try {
    const u = new URL(`http://${text}`);
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return null;
    return { host: u.hostname.toLowerCase().replace(/^\[|\]$/g, ''), port: u.port === '' ? 80 : Number(u.port) };
  } catch {
    return null;
  }
}

function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0 || part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/** A name under which only this machine can be reached: no DNS answer of someone else's can change it. */
function namesThisMachine(host: string): boolean {
  return host === 'localhost' || isIP(host) !== 0 || host === os.hostname().toLowerCase();
}

export interface MonitorAccessInit {
  /** The token in use (known once the server has started). */
  token: () => string;
  /** The port we listen on: one cookie name per port, since cookies ignore ports. */
  port: () => number;
  /** Told of every refusal (the server logs them, a few a minute). */
  onRefused?: (req: IncomingMessage, refusal: Refusal) => void;
  /** A private swarm's secret: every visitor needs it (or the token). */
  secret?: SwarmSecret | null;
}

export class MonitorAccess {
  private logins = { second: 0, count: 0 };

  constructor(private readonly init: MonitorAccessInit) {}

  private get cookieName(): string {
    return `shoal_monitor_${this.init.port()}`;
  }

  private get swarmCookieName(): string {
    return `shoal_swarm_${this.init.port()}`;
  }

  /** What the swarm cookie holds: a key derived from the secret, never the secret. */
  private get swarmSession(): string | null {
    return this.init.secret ? this.init.secret.monitorKey.toString('base64url') : null;
  }

  /** On this machine, straight to us, by a name only this machine answers to. */
  isLocal(req: IncomingMessage): boolean {
    if (PROXY_HEADERS.some((h) => req.headers[h] !== undefined)) return false;
    const remote = normalizeAddress(req.socket.remoteAddress ?? '');
    if (!remote || !(isLoopbackAddress(remote) || localAddresses().has(remote))) return false;
    const host = authority(req.headers.host ?? '');
    return host !== null && namesThisMachine(host.host);
  }

  /** The token a request carries: Bearer header first, then our cookie. */
  private presented(req: IncomingMessage): string | undefined {
    const auth = req.headers.authorization;
    const bearer = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1] : undefined;
    return bearer ?? cookie(req.headers.cookie, this.cookieName);
  }

  /**
   * May `req` see the monitor? `extra` is a token given another way (socket.io `auth.token`).
   * In a private swarm being on this host is not enough: the secret (its cookie) or the token.
   */
  allowed(req: IncomingMessage, extra?: unknown): boolean {
    const token = this.init.token();
    if (sameToken(extra, token) || sameToken(this.presented(req), token)) return true;
    const session = this.swarmSession;
    if (session !== null) return sameToken(cookie(req.headers.cookie, this.swarmCookieName), session);
    return this.isLocal(req);
  }

  /** Why `req` may not see the monitor. */
  private refusal(): Refusal {
    if (this.init.secret) return { status: 401, error: "this bootstrap server serves a private swarm: the monitor needs the swarm's secret (or the monitor token)" };
    return {
      status: 401,
      error: `the monitor needs its access token from another machine: open the address the server printed at start (…/?token=…) or send Authorization: Bearer <token>; on the server's own host, http://127.0.0.1:${this.init.port()}/ needs none`,
    };
  }

  /**
   * POST /login {secret}: the swarm's secret, exchanged for the swarm cookie and a redirect
   * to the monitor; a wrong one gets the form again (401). 404 on an open server.
   */
  readonly login = (req: Request, res: Response): void => {
    const secret = this.init.secret;
    if (!secret) {
      res.status(404).type('text/plain; charset=utf-8').send('404 no login here: this bootstrap server serves an open swarm\n');
      return;
    }
    const second = Math.floor(Date.now() / 1000);
    if (this.logins.second !== second) this.logins = { second, count: 0 };
    if (++this.logins.count > LOGINS_PER_SECOND) {
      res.setHeader('Retry-After', '1');
      this.refuse(req, res, { status: 429, error: 'too many tries at the secret: wait a second' });
      return;
    }
    const given = (req.body as Record<string, unknown> | undefined)?.secret;
    let ok = false;
    if (typeof given === 'string' && given.length <= 1024) {
      try {
        ok = sameToken(SwarmSecret.from(given).monitorKey.toString('base64url'), this.swarmSession!);
      } catch {
        ok = false; // too short or otherwise unusable: wrong
      }
    }
    if (!ok) {
      this.init.onRefused?.(req, { status: 401, error: 'wrong swarm secret at the monitor login' });
      res.status(401).type('text/html; charset=utf-8').setHeader('Cache-Control', 'no-store');
      res.send(loginPage('That is not the secret of this swarm.'));
      return;
    }
    res.setHeader('Set-Cookie', `${this.swarmCookieName}=${encodeURIComponent(this.swarmSession!)}; Path=/; HttpOnly; SameSite=Strict`);
    res.setHeader('Cache-Control', 'no-store');
    res.redirect(303, '/');
  };

  /** socket.io: refuse a page of another site (Origin other than Host, or Sec-Fetch-Site cross-site / same-site). */
  crossSite(req: IncomingMessage): Refusal | null {
    const site = req.headers['sec-fetch-site'];
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return { status: 403, error: `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)})` };
    const origin = req.headers.origin;
    if (typeof origin !== 'string') return null;
    let o: { host: string; port: number } | null = null;
    try {
      const u = new URL(origin);
      if (u.protocol === 'http:' || u.protocol === 'https:') o = authority(u.host);
    } catch {
      /* "null" or garbage: refused below */
    }
    const h = authority(req.headers.host ?? '');
    if (!o || !h || o.host !== h.host || o.port !== h.port) return { status: 403, error: `cross-site request refused (Origin: ${origin.slice(0, 100)})` };
    return null;
  }

  /** Express middleware for what only the monitor's visitors may see: the `?token=` exchange, then the check. */
  readonly guard = (req: Request, res: Response, next: NextFunction): void => {
    const q = new URL(req.originalUrl, 'http://x').searchParams;
    const offered = q.get('token');
    if (offered !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!sameToken(offered, this.init.token())) return this.refuse(req, res, { status: 401, error: 'wrong access token' });
      // Exchange it for a cookie and drop it from the address bar (and from history).
      q.delete('token');
      const rest = q.toString();
      res.setHeader('Set-Cookie', `${this.cookieName}=${encodeURIComponent(this.init.token())}; Path=/; HttpOnly; SameSite=Strict`);
      res.setHeader('Cache-Control', 'no-store');
      return res.redirect(303, `${req.baseUrl}${req.path}${rest ? `?${rest}` : ''}`);
    }
    if (this.allowed(req)) return next();
    if (this.init.secret && !`${req.baseUrl}${req.path}`.startsWith('/api/')) {
      // A person at a browser: ask for the secret.
      this.init.onRefused?.(req, this.refusal());
      res.status(401).type('text/html; charset=utf-8').setHeader('Cache-Control', 'no-store');
      res.send(loginPage());
      return;
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="shoal-bootstrap"');
    this.refuse(req, res, this.refusal());
  };

  /** JSON for the API, a short plain page for anything a browser opens. */
  private refuse(req: Request, res: Response, r: Refusal): void {
    this.init.onRefused?.(req, r);
    if (`${req.baseUrl}${req.path}`.startsWith('/api/')) {
      res.status(r.status).json({ error: r.error });
      return;
    }
    res.status(r.status).type('text/plain; charset=utf-8').send(`${r.status} ${r.error}\n`);
  }

  /** Express middleware for the node API: a state-changing request from a browser is refused. */
  readonly notFromBrowsers = (req: Request, res: Response, next: NextFunction): void => {
    if (!STATE_CHANGING.has(req.method) || (req.headers.origin === undefined && req.headers['sec-fetch-site'] === undefined)) return next();
    this.refuse(req, res, { status: 403, error: 'the node API is for Shoal nodes, not web pages: a request from a browser (Origin or Sec-Fetch-Site) cannot change the registry' });
  };
}


/** The page that asks for the swarm's secret: a plain form, no script (the page's CSP allows none inline). */
function loginPage(problem?: string): string {
  const note = problem ? `<p class="problem">${problem.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shoal bootstrap: private swarm</title>
<link rel="stylesheet" href="/static/monitor.css"></head>
<body><main>
<h1>Private swarm</h1>
<p>This bootstrap server serves a private swarm. Enter the swarm's secret (the one its nodes were started with) to see its monitor.</p>
${note}
<form method="post" action="/login">
<label>Secret <input type="password" name="secret" autocomplete="current-password" required minlength="8" maxlength="1024" autofocus></label>
<button type="submit">Open the monitor</button>
</form>
</main></body></html>
`;
}
