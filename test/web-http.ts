/**
 * Plain HTTP for the dashboard tests: node:http rather than fetch, so a test controls every
 * header (Host, Origin, Sec-Fetch-Site, Content-Type) and sees exactly what the server sent.
 */
import http from 'node:http';
import type { Readable } from 'node:stream';
import { nodeApiAuth } from './identities.js';

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = unknown>(): T;
}

export interface CallOptions {
  headers?: Record<string, string>;
  /** A JSON value (sent with Content-Type: application/json unless headers say otherwise), bytes or a stream. */
  json?: unknown;
  body?: string | Buffer | Readable;
  timeoutMs?: number;
  /**
   * A bootstrap node API write (POST, PUT, DELETE under /api/nodes) is signed as the node it
   * names (test/identities.ts) unless `unsigned`; `macKey` adds a private swarm's HMAC.
   */
  unsigned?: boolean;
  macKey?: Buffer;
  /** The local address to connect from (127.0.0.2 and so on: another client address on loopback). */
  localAddress?: string;
}

export function call(base: string, method: string, path: string, opts: CallOptions = {}): Promise<Answer> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...opts.headers };
  let body = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  if ((typeof body === 'string' || Buffer.isBuffer(body)) && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length'))
    headers['Content-Length'] = String(Buffer.byteLength(body));
  const nodeApiWrite = ['POST', 'PUT', 'DELETE'].includes(method) && url.pathname.startsWith('/api/nodes');
  if ((nodeApiWrite && !opts.unsigned) || opts.macKey) {
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : undefined;
    Object.assign(headers, nodeApiAuth(method, `${url.pathname}${url.search}`, text, { macKey: opts.macKey, as: nodeApiWrite && !opts.unsigned ? undefined : null }));
  }
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, localAddress: opts.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        const text = buf.toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: buf,
          text,
          json: <T>() => JSON.parse(text) as T,
        });
      });
    });
    req.setTimeout(opts.timeoutMs ?? 20_000, () => req.destroy(new Error(`${method} ${path}: no answer in ${opts.timeoutMs ?? 20_000} ms`)));
    req.on('error', reject);
    if (body === undefined) req.end();
    else if (typeof body === 'string' || Buffer.isBuffer(body)) req.end(body);
    else body.pipe(req);
  });
}

/** A small client bound to one server, optionally with default headers (a token, a cookie). */
export function client(base: string, defaults: Record<string, string> = {}) {
  const go = (method: string, path: string, opts: CallOptions = {}) => call(base, method, path, { ...opts, headers: { ...defaults, ...opts.headers } });
  return {
    get: (path: string, opts?: CallOptions) => go('GET', path, opts),
    head: (path: string, opts?: CallOptions) => go('HEAD', path, opts),
    post: (path: string, opts?: CallOptions) => go('POST', path, opts),
    put: (path: string, opts?: CallOptions) => go('PUT', path, opts),
    patch: (path: string, opts?: CallOptions) => go('PATCH', path, opts),
    del: (path: string, opts?: CallOptions) => go('DELETE', path, opts),
    call: go,
  };
}

export interface LiveClient {
  /** Every event received so far: [name, payload]. */
  events: Array<[string, unknown]>;
  /** The CONNECT answer: `40{...}` accepted, `44{...}` refused. */
  connect: string;
  /** The server ended the session (or it was closed here). */
  readonly closed: boolean;
  waitEvent(name: string, pred?: (payload: unknown) => boolean, ms?: number): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * A socket.io client by hand over engine.io v4 long-polling (socket.io-client is not
 * installed): open, CONNECT with `auth`, then poll in the background, answering pings.
 */
export async function liveClient(base: string, headers: Record<string, string> = {}, auth?: Record<string, unknown>): Promise<LiveClient> {
  const open = await call(base, 'GET', '/socket.io/?EIO=4&transport=polling', { headers });
  if (open.status !== 200) throw new Error(`socket.io open: ${open.status} ${open.text}`);
  const { sid } = JSON.parse(open.text.slice(1)) as { sid: string };
  const q = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  const send = (packet: string) => call(base, 'POST', q, { headers: { ...headers, 'Content-Type': 'text/plain;charset=UTF-8' }, body: packet });
  await send(`40${auth ? JSON.stringify(auth) : ''}`);
  const events: Array<[string, unknown]> = [];
  let connect = '';
  let closed = false;
  const handle = (packet: string) => {
    if (packet === '2') void send('3');
    else if (packet.startsWith('40') || packet.startsWith('44')) connect ||= packet;
    else if (packet.startsWith('42')) {
      const [name, payload] = JSON.parse(packet.slice(2)) as [string, unknown];
      events.push([name, payload]);
    }
  };
  const poll = async (): Promise<void> => {
    const res = await call(base, 'GET', q, { headers, timeoutMs: 60_000 });
    if (res.status !== 200) throw new Error(`poll: ${res.status}`);
    for (const p of res.text.split('\x1e')) handle(p);
  };
  await poll();
  const loop = (async () => {
    while (!closed && !connect.startsWith('44')) await poll().catch(() => void (closed = true));
  })();
  return {
    events,
    get connect() {
      return connect;
    },
    get closed() {
      return closed;
    },
    async waitEvent(name, pred = () => true, ms = 10_000) {
      const end = Date.now() + ms;
      for (;;) {
        const hit = events.find(([n, p]) => n === name && pred(p));
        if (hit) return hit[1];
        if (Date.now() > end) throw new Error(`no ${name} event in ${ms} ms (got ${events.map(([n]) => n).join(', ')})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      closed = true;
      await send('41').catch(() => {});
      await send('1').catch(() => {});
      await loop;
    },
  };
}
