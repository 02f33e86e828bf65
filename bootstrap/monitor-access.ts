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
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import os from 'node:os';
import type { NextFunction, Request, Response } from 'express';
import { isLoopbackAddress, localAddresses, normalizeAddress } from '../network/util/addresses.js';

const STATE_CHANGING: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const PROXY_HEADERS = ['forwarded', 'x-forwarded-for', 'x-real-ip'] as const;

/** A refusal: the status to answer and why. */
export interface Refusal {
  status: number;
  error: string;
}

/** Equal strings, in time that does not depend on where they differ (nor on their lengths). */
export function sameToken(given: unknown, expected: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
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
}

export class MonitorAccess {
  constructor(private readonly init: MonitorAccessInit) {}

  private get cookieName(): string {
    return `shoal_monitor_${this.init.port()}`;
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

  /** May `req` see the monitor? `extra` is a token given another way (socket.io `auth.token`). */
  allowed(req: IncomingMessage, extra?: unknown): boolean {
    const token = this.init.token();
    return sameToken(extra, token) || sameToken(this.presented(req), token) || this.isLocal(req);
  }

  /** Why `req` may not see the monitor. */
  private refusal(): Refusal {
    return {
      status: 401,
      error: `the monitor needs its access token from another machine: open the address the server printed at start (…/?token=…) or send Authorization: Bearer <token>; on the server's own host, http://127.0.0.1:${this.init.port()}/ needs none`,
    };
  }

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

