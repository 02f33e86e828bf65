/**
 * Who may use the dashboard, and from where.
 *
 * - **Token.** Listening on anything but loopback requires an access token (given, or the
 *   node's own, kept in its state folder across restarts, printed with the URL to open;
 *   rotated from the Settings page, which ends every live connection made with the old
 *   one). It is accepted as
 *   `Authorization: Bearer <token>`, as the HttpOnly SameSite=Strict cookie that a page
 *   load with `?token=<token>` sets (then redirected to the same URL without it), and by
 *   socket.io as that cookie, the header or `?token=` on the engine.io handshake
 *   (checked before a session is allocated). Compared in constant time.
 * - **Cross-site requests.** A state-changing request (POST, PUT, PATCH, DELETE) is
 *   refused when the browser says it comes from another site (`Sec-Fetch-Site`) or its
 *   `Origin` names another host:port than `Host`; JSON routes also insist on
 *   `Content-Type: application/json`, which a cross-site form cannot send. Requests with
 *   neither header (curl, scripts) pass.
 * - **DNS rebinding.** On loopback a page from evil.example that resolves to 127.0.0.1
 *   still says `Host: evil.example`: only localhost, 127.x and [::1] on our port pass.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { isLoopbackAddress, sameToken } from '../network/index.js';

export { sameToken };

/** Methods that change state: checked for cross-site origin, and for a JSON type by the API. */
export const STATE_CHANGING: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A listen address that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || (isIP(h) !== 0 && isLoopbackAddress(h));
}


/** `Host` / `Origin` authority split into host and port (port 80 when absent). */
function authority(text: string): { host: string; port: number } | null {
  try {
    const u = new URL(`http://${text}`);
    if (u.username || u.password || u.pathname !== '/' || u.search || u.hash) return null;
    return { host: u.hostname.toLowerCase(), port: u.port === '' ? 80 : Number(u.port) };
  } catch {
    return null;
  }
}

function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    let value = part.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    try {
      out.set(name, decodeURIComponent(value));
    } catch {
      out.set(name, value);
    }
  }
  return out;
}

export interface AuthInit {
  /** Required when set; no token means anyone who can reach the port may use it. */
  token?: string;
  /** The port we listen on, for the Host and Origin checks (known after listen). */
  port: () => number;
  /** Check `Host` against loopback names (set when listening on loopback). */
  loopbackOnly: boolean;
}

/** A refusal: the status to answer and why. */
export interface Refusal {
  status: number;
  error: string;
}

export class Auth {
  private current: string | undefined;

  constructor(private readonly init: AuthInit) {
    this.current = init.token;
  }

  /** Cookies are per host, not per port: one name per dashboard port. */
  private get cookieName(): string {
    return `shoal_token_${this.init.port()}`;
  }

  get token(): string | undefined {
    return this.current;
  }

  /** From now on only `token` is accepted (a rotation: the old one stops working at once). */
  setToken(token: string): void {
    this.current = token;
  }

  /** The Set-Cookie header that signs a browser in with `token`. */
  cookie(token: string): string {
    return `${this.cookieName}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
  }

  /** DNS rebinding: on loopback, `Host` must name this machine and our port. */
  checkHost(req: IncomingMessage): Refusal | null {
    if (!this.init.loopbackOnly) return null;
    const a = authority(req.headers.host ?? '');
    if (!a || !isLoopbackHost(a.host) || a.port !== this.init.port())
      return { status: 421, error: `this dashboard answers only to localhost, 127.0.0.1 or [::1] on port ${this.init.port()}` };
    return null;
  }

  /** Cross-site: `Sec-Fetch-Site` other than same-origin/none, or an `Origin` that is not us. */
  checkOrigin(req: IncomingMessage): Refusal | null {
    const site = req.headers['sec-fetch-site'];
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return { status: 403, error: `cross-site request refused (Sec-Fetch-Site: ${site.slice(0, 40)})` };
    const origin = req.headers.origin;
    if (typeof origin === 'string') {
      let o: { host: string; port: number } | null = null;
      try {
        const u = new URL(origin);
        if (u.protocol === 'http:' || u.protocol === 'https:') o = authority(u.host);
      } catch {
        /* "null" or garbage: refused below */
      }
      const h = authority(req.headers.host ?? '');
      if (!o || !h || o.host !== h.host || o.port !== h.port) return { status: 403, error: `cross-site request refused (Origin: ${origin.slice(0, 100)})` };
    }
    return null;
  }

  /** The token a request carries: Bearer header first, then our cookie. */
  private presented(req: IncomingMessage): string | undefined {
    const auth = req.headers.authorization;
    if (typeof auth === 'string') {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      if (m) return m[1];
    }
    return parseCookies(req.headers.cookie).get(this.cookieName);
  }

  /**
   * May this engine.io handshake (the request that would allocate a live-connection session)
   * go ahead? The token must come with it: the cookie, `Authorization: Bearer`, or `?token=`
   * on the socket.io URL (the client's `query` option). Checked before anything is allocated.
   */
  allowedLive(req: IncomingMessage): boolean {
    if (this.allowed(req)) return true;
    const token = this.current;
    const offered = new URL(req.url ?? '/', 'http://x').searchParams.get('token');
    return token !== undefined && offered !== null && sameToken(offered, token);
  }

  /** Authenticated (or no token in use)? `extra` is a token given another way (socket.io `auth.token`). */
  allowed(req: IncomingMessage, extra?: unknown): boolean {
    const token = this.current;
    if (token === undefined) return true;
    if (typeof extra === 'string' && sameToken(extra, token)) return true;
    return sameToken(this.presented(req), token);
  }

  /** Express middleware: Host, then token (with the ?token= cookie exchange), then cross-site. */
  middleware(isPublic: (req: Request) => boolean): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const host = this.checkHost(req);
      if (host) return refuse(req, res, host);
      const token = this.current;
      if (token !== undefined && !isPublic(req)) {
        const q = new URL(req.originalUrl, 'http://x').searchParams;
        const offered = q.get('token');
        if (offered !== null && (req.method === 'GET' || req.method === 'HEAD')) {
          if (!sameToken(offered, token)) return refuse(req, res, { status: 401, error: 'wrong access token' });
          // Exchange it for a cookie and drop it from the address bar (and from history).
          q.delete('token');
          const rest = q.toString();
          res.setHeader('Set-Cookie', this.cookie(token));
          res.setHeader('Cache-Control', 'no-store');
          return res.redirect(303, `${req.path}${rest ? `?${rest}` : ''}`);
        }
        if (!this.allowed(req)) {
          res.setHeader('WWW-Authenticate', 'Bearer realm="shoal"');
          return refuse(req, res, { status: 401, error: 'an access token is required: open the URL printed at start (…/?token=…) or send Authorization: Bearer <token>' });
        }
      }
      if (STATE_CHANGING.has(req.method)) {
        const cross = this.checkOrigin(req);
        if (cross) return refuse(req, res, cross);
      }
      next();
    };
  }
}

/** JSON for the API, a short plain page for anything a browser opens. */
function refuse(req: Request, res: Response, r: Refusal): void {
  if (req.path.startsWith('/api/') && req.path !== '/api/docs' && !req.path.startsWith('/api/docs/')) {
    res.status(r.status).json({ error: r.error });
    return;
  }
  res.status(r.status).type('text/plain; charset=utf-8').send(`${r.status} ${r.error}\n`);
}
