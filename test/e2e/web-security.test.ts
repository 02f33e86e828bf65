/**
 * Who may use the dashboard: the access token (Bearer, the ?token= cookie exchange, the
 * socket.io handshake), cross-site protection of state-changing requests, DNS-rebinding
 * protection by Host, and the security headers of pages. Everything on 127.0.0.1: a token
 * is tested by giving one explicitly (or `requireToken`), which is enforced exactly as the
 * generated one of a non-loopback address. Then what any client runs into, each hit at its
 * edge: the JSON body cap, the upload cap, the lengths the contract allows, and the backlog
 * after which a live client that does not read is cut off.
 */
import path from 'node:path';
import { expect } from 'chai';
import type { Node } from '../../network/index.js';
import { WebServer, MAX_LIVE_CLIENTS, MAX_LIVE_PER_ADDRESS } from '../../web/server.js';
import { promises as fsp } from 'node:fs';
import { isLoopbackHost, sameToken } from '../../web/auth.js';
import { MAX_BACKLOG } from '../../web/live.js';
import { ErrorResponseSchema, FileViewSchema, MAX_JSON_BYTES, StatusSchema } from '../../web/contract.js';
import { parseWebCli, UsageError } from '../../cli/options.js';
import { cleanup, startNode, tempDir, waitFor } from '../helpers.js';
import { call, client, liveClient, type Answer } from '../web-http.js';

const TOKEN = 'test-token-0123456789abcdef';

function expectError(res: Answer, status: number, match?: RegExp): void {
  expect(res.status, res.text.slice(0, 300)).to.equal(status);
  const { error } = ErrorResponseSchema.parse(res.json());
  if (match) expect(error).to.match(match);
}

/** socket.io by hand (engine.io v4 long-polling): open, CONNECT with `auth`, read the answer. */
async function socketConnect(base: string, headers: Record<string, string> = {}, auth?: Record<string, unknown>, query = ''): Promise<{ open: Answer; answer?: string; poll?: () => Promise<Answer> }> {
  const open = await call(base, 'GET', `/socket.io/?EIO=4&transport=polling${query}`, { headers });
  if (open.status !== 200) return { open };
  const { sid } = JSON.parse(open.text.slice(1)) as { sid: string };
  const q = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  const sent = await call(base, 'POST', q, { headers: { ...headers, 'Content-Type': 'text/plain;charset=UTF-8' }, body: `40${auth ? JSON.stringify(auth) : ''}` });
  expect(sent.status, sent.text).to.equal(200);
  const answer = await call(base, 'GET', q, { headers });
  return { open, answer: answer.text, poll: () => call(base, 'GET', q, { headers }) };
}

describe('web security', function () {
  this.timeout(30_000);
  let dir = '';
  let node: Node;
  const servers: WebServer[] = [];
  const serve = async (init: Partial<ConstructorParameters<typeof WebServer>[0]> = {}) => {
    const s = new WebServer({ node, port: 0, ...init });
    servers.push(s);
    await s.start();
    return s;
  };

  before(async function () {
    dir = await tempDir('shoal-web-sec-');
    node = await startNode(path.join(dir, 'n'));
  });

  after(async function () {
    await Promise.all(servers.map((s) => s.stop()));
    await node?.stop();
    if (dir) await cleanup(dir);
  });

  describe('tokens', function () {
    let web: WebServer;
    before(async function () {
      web = await serve({ token: TOKEN });
    });

    it('a non-loopback address gets a generated token; loopback none unless asked', async function () {
      expect(new WebServer({ node, port: 0, host: '192.0.2.10' }).token).to.match(/^[A-Za-z0-9_-]{32}$/);
      expect(new WebServer({ node, port: 0, host: '0.0.0.0' }).token).to.have.length(32);
      expect(new WebServer({ node, port: 0, host: '0.0.0.0', token: 'mine-mine-mine' }).token).to.equal('mine-mine-mine');
      expect(new WebServer({ node, port: 0 }).token).to.equal(undefined);
      expect(new WebServer({ node, port: 0, host: 'localhost' }).token).to.equal(undefined);
      expect(new WebServer({ node, port: 0, requireToken: true }).token).to.have.length(32);
      for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).to.equal(true);
      for (const h of ['0.0.0.0', '::', '192.168.1.2', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).to.equal(false);
      expect(sameToken('abc', 'abc')).to.equal(true);
      expect(sameToken('abd', 'abc')).to.equal(false);
      expect(sameToken('ab', 'abc')).to.equal(false);
      expect(sameToken(undefined, 'abc')).to.equal(false);
    });

    it('the API, pages and docs answer 401 without the token', async function () {
      const res = await call(web.url, 'GET', '/api/status');
      expectError(res, 401, /token/);
      expect(res.headers['www-authenticate']).to.match(/^Bearer/);
      expectError(await call(web.url, 'POST', '/api/downloads', { json: { target: 'x' } }), 401);
      expect((await call(web.url, 'GET', '/')).status).to.equal(401);
      expect((await call(web.url, 'GET', '/api/docs')).status).to.equal(401);
      expectError(await call(web.url, 'GET', '/api/status', { headers: { Authorization: 'Bearer wrong-token' } }), 401);
      expectError(await call(web.url, 'GET', '/api/status', { headers: { Authorization: `Basic ${TOKEN}` } }), 401);
      expectError(await call(web.url, 'GET', '/api/status', { headers: { Cookie: `shoal_token_${web.port}=nope` } }), 401);
      // Static code and styles are no secret.
      expect((await call(web.url, 'GET', '/api/docs/assets/swagger-ui.css')).status).to.equal(200);
    });

    it('--http-token takes 8 to 256 printable characters, no spaces', function () {
      const token = (t: string) => () => parseWebCli(['--peer-port', '0', '--http-token', t]);
      for (const ok of ['a'.repeat(8), 'b'.repeat(256), '!~#$%&*+']) expect(token(ok)().http.token).to.equal(ok);
      for (const bad of ['a'.repeat(7), 'b'.repeat(257), 'has space1', 'tab\there1', 'é'.repeat(8)]) expect(token(bad), JSON.stringify(bad)).to.throw(UsageError, /--http-token/);
    });

    it('Authorization: Bearer opens the API', async function () {
      const api = client(web.url, { Authorization: `Bearer ${TOKEN}` });
      StatusSchema.parse((await api.get('/api/status')).json());
      expect((await api.get('/api/docs')).status).to.equal(200);
      expect((await api.get('/')).status).to.equal(200);
    });

    it('?token= on a page load sets an HttpOnly SameSite=Strict cookie and redirects without it', async function () {
      expect((await call(web.url, 'GET', '/?token=wrong')).status).to.equal(401);
      const res = await call(web.url, 'GET', `/transfers?x=1&token=${TOKEN}`);
      expect(res.status).to.equal(303);
      expect(res.headers.location).to.equal('/transfers?x=1');
      const cookie = res.headers['set-cookie']?.[0] ?? '';
      expect(cookie).to.match(new RegExp(`^shoal_token_${web.port}=`));
      expect(cookie).to.match(/HttpOnly/i);
      expect(cookie).to.match(/SameSite=Strict/i);
      const jar = cookie.split(';')[0]!;
      const page = await call(web.url, 'GET', '/transfers?x=1', { headers: { Cookie: jar } });
      expect(page.status).to.equal(200);
      expect(page.headers['content-type']).to.match(/^text\/html/);
      expect((await call(web.url, 'GET', '/api/status', { headers: { Cookie: `other=1; ${jar}` } })).status).to.equal(200);
      expect((await call(web.url, 'GET', '/api/docs', { headers: { Cookie: jar } })).status).to.equal(200);
    });

    it('socket.io allocates no session without the token, and accepts the cookie, a bearer header or ?token=', async function () {
      for (const [what, q, headers] of [
        ['no token', '', {}],
        ['a wrong token', '&token=nope', {}],
        ['a wrong cookie', '', { Cookie: `shoal_token_${web.port}=nope` }],
      ] as const) {
        const open = await call(web.url, 'GET', `/socket.io/?EIO=4&transport=polling${q}`, { headers });
        expect(open.status, what).to.equal(403);
        expect(open.text, what).to.include('unauthorized: an access token is required');
      }
      const byQuery = await socketConnect(web.url, {}, undefined, `&token=${TOKEN}`);
      expect(byQuery.answer).to.match(/^40\{"sid":/);
      const byBearer = await socketConnect(web.url, { Authorization: `Bearer ${TOKEN}` });
      expect(byBearer.answer).to.match(/^40\{"sid":/);
      const byCookie = await socketConnect(web.url, { Cookie: `shoal_token_${web.port}=${TOKEN}` });
      expect(byCookie.answer).to.match(/^40\{"sid":/);
      // The status event follows at once (in the same poll or the next).
      const withStatus = byCookie.answer!.includes('42["status"') ? byCookie.answer! : (await byCookie.poll!()).text;
      expect(withStatus).to.include('42["status"');
    });

    it(`socket.io sessions are bounded: ${MAX_LIVE_PER_ADDRESS} per address, ${MAX_LIVE_CLIENTS} in all`, async function () {
      const s = await serve();
      const open = (from: string) => call(s.url, 'GET', '/socket.io/?EIO=4&transport=polling', { localAddress: from });
      const held = await Promise.all(Array.from({ length: MAX_LIVE_PER_ADDRESS }, () => open('127.0.0.1')));
      expect(held.map((r) => r.status)).to.deep.equal(new Array(MAX_LIVE_PER_ADDRESS).fill(200));
      const over = await open('127.0.0.1');
      expect(over.status).to.equal(403);
      expect(over.text).to.include(`too many live connections from 127.0.0.1 (${MAX_LIVE_PER_ADDRESS})`);
      for (let a = 2; a <= MAX_LIVE_CLIENTS / MAX_LIVE_PER_ADDRESS; a++)
        for (let i = 0; i < MAX_LIVE_PER_ADDRESS; i++) expect((await open(`127.0.0.${a}`)).status).to.equal(200);
      const full = await open('127.0.0.99');
      expect(full.status).to.equal(403);
      expect(full.text).to.include(`too many live connections (${MAX_LIVE_CLIENTS})`);
      // Pages and the API are not live connections: they still answer.
      expect((await call(s.url, 'GET', '/api/status')).status).to.equal(200);
    });

    it('a generated token (requireToken) is enforced the same way', async function () {
      const s = await serve({ requireToken: true });
      expect((await call(s.url, 'GET', '/api/status')).status).to.equal(401);
      expect((await call(s.url, 'GET', '/api/status', { headers: { Authorization: `Bearer ${s.token!}` } })).status).to.equal(200);
    });
  });

  describe('cross-site requests', function () {
    let web: WebServer;
    let host: string;
    before(async function () {
      web = await serve();
      host = new URL(web.url).host;
    });

    const add = (headers: Record<string, string>) => call(web.url, 'POST', '/api/peers', { json: { host: '127.0.0.4', port: 5555 }, headers });

    it('POST from another origin or another site is a 403', async function () {
      expectError(await add({ Origin: 'http://evil.example' }), 403, /cross-site/);
      expectError(await add({ Origin: `http://evil.example:${web.port}` }), 403);
      expectError(await add({ Origin: `http://127.0.0.1:${web.port + 1}` }), 403);
      expectError(await add({ Origin: 'null' }), 403);
      expectError(await add({ 'Sec-Fetch-Site': 'cross-site' }), 403, /Sec-Fetch-Site/);
      expectError(await add({ 'Sec-Fetch-Site': 'same-site' }), 403);
      expectError(await call(web.url, 'DELETE', `/api/downloads/${'a'.repeat(40)}`, { headers: { Origin: 'http://evil.example' } }), 403);
      expectError(await call(web.url, 'PUT', '/api/files?name=evil.txt', { body: 'x', headers: { Origin: 'http://evil.example' } }), 403);
      expect(node.knownPeers().some((p) => p.port === 5555)).to.equal(false);
    });

    it('a form post (not JSON) is a 415 even without Origin', async function () {
      const form = await call(web.url, 'POST', '/api/peers', { body: 'host=127.0.0.4&port=5555', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      expectError(form, 415);
      const text = await call(web.url, 'POST', '/api/downloads', { body: '{"target":"x"}', headers: { 'Content-Type': 'text/plain' } });
      expectError(text, 415);
    });

    it('same-origin requests and scripts without Origin pass', async function () {
      expect((await add({ Origin: `http://${host}`, 'Sec-Fetch-Site': 'same-origin' })).status).to.equal(201);
      expect((await add({ 'Sec-Fetch-Site': 'none' })).status).to.equal(201);
      expect((await add({})).status).to.equal(201);
      node.removePeer('127.0.0.4', 5555);
      // GET is never blocked by Origin (a page may link here), only state changes are.
      expect((await call(web.url, 'GET', '/api/status', { headers: { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' } })).status).to.equal(200);
    });

    it('socket.io refuses another origin', async function () {
      const res = await call(web.url, 'GET', '/socket.io/?EIO=4&transport=polling', { headers: { Origin: 'http://evil.example' } });
      expect(res.status).to.be.within(400, 499);
      const ok = await socketConnect(web.url, { Origin: `http://${host}` });
      expect(ok.answer).to.match(/^40/);
    });
  });

  describe('DNS rebinding and headers', function () {
    let web: WebServer;
    before(async function () {
      web = await serve();
    });
    const withHost = (h: string, p = '/api/status') => call(web.url, 'GET', p, { headers: { Host: h } });

    it('a Host that is not this machine on our port is refused', async function () {
      expectError(await withHost(`evil.example:${web.port}`), 421, /localhost/);
      expectError(await withHost('evil.example'), 421);
      expectError(await withHost(`127.0.0.1:${web.port + 1}`), 421);
      expectError(await withHost(`192.168.1.1:${web.port}`), 421);
      expect((await withHost(`evil.example:${web.port}`, '/')).status).to.equal(421);
      const io = await withHost(`evil.example:${web.port}`, '/socket.io/?EIO=4&transport=polling');
      expect(io.status).to.be.within(400, 499);
    });

    it('localhost, 127.x and [::1] on our port pass', async function () {
      for (const h of [`localhost:${web.port}`, `127.0.0.1:${web.port}`, `LOCALHOST:${web.port}`, `[::1]:${web.port}`])
        expect((await withHost(h)).status, h).to.equal(200);
    });

    it('pages carry a strict CSP, no framing, no referrer, nosniff', async function () {
      const res = await call(web.url, 'GET', '/', { headers: { Accept: 'text/html' } });
      expect(res.status).to.equal(200);
      const csp = String(res.headers['content-security-policy']);
      for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "connect-src 'self'"]) expect(csp).to.include(d);
      expect(csp).to.not.match(/script-src[^;]*unsafe/);
      expect(res.headers['referrer-policy']).to.equal('no-referrer');
      expect(res.headers['x-frame-options']).to.equal('DENY');
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      // The page's scripts are all external (a CSP without 'unsafe-inline' would block the rest).
      const inline = [...res.text.matchAll(/<script(?![^>]*\bsrc=)(?![^>]*type="application\/json")[^>]*>/g)];
      expect(inline.map((m) => m[0])).to.deep.equal([]);
      expect(res.text).to.not.match(/\son[a-z]+=/i);
    });

    it('a bad request never takes the node down', async function () {
      await call(web.url, 'POST', '/api/downloads', { body: '{"target":', headers: { 'Content-Type': 'application/json' } });
      await call(web.url, 'GET', '/api/files/%ZZ/content');
      await call(web.url, 'GET', `/api/files/${'a'.repeat(40)}/content`, { headers: { Range: 'bytes=99999999999999999999-' } });
      expect((await call(web.url, 'GET', '/api/status')).status).to.equal(200);
    });
  });

  describe('limits a client runs into', function () {
    this.timeout(60_000);
    const MAX_UPLOAD = 1000;
    let web: WebServer;
    let api: ReturnType<typeof client>;
    before(async function () {
      web = await serve({ maxUploadBytes: MAX_UPLOAD });
      api = client(web.url);
    });

    /** A JSON body of exactly `bytes` bytes: `{ host: '', port: 1, pad: 'xxx…' }`. */
    const paddedBody = (bytes: number) => {
      const bare = JSON.stringify({ host: '', port: 1, pad: '' });
      return JSON.stringify({ host: '', port: 1, pad: 'x'.repeat(bytes - bare.length) });
    };

    it(`a JSON body of exactly MAX_JSON_BYTES (${MAX_JSON_BYTES}) bytes is read; one byte more is a 413`, async function () {
      const atLimit = paddedBody(MAX_JSON_BYTES);
      expect(Buffer.byteLength(atLimit)).to.equal(MAX_JSON_BYTES);
      // Read and checked: the empty host is what is wrong with it, not its size.
      expectError(await api.post('/api/peers', { body: atLimit, headers: { 'Content-Type': 'application/json' } }), 400);
      expectError(await api.post('/api/peers', { body: paddedBody(MAX_JSON_BYTES + 1), headers: { 'Content-Type': 'application/json' } }), 413, /larger/);
    });

    it('maxUploadBytes: an upload of exactly the cap is stored, one byte more is a 413 that writes nothing', async function () {
      const ok = await api.put('/api/files?name=at-cap.bin', { body: Buffer.alloc(MAX_UPLOAD, 7) });
      expect(ok.status, ok.text).to.equal(201);
      expect(FileViewSchema.parse(ok.json()).size).to.equal(MAX_UPLOAD);
      expectError(await api.put('/api/files?name=over-cap.bin', { body: Buffer.alloc(MAX_UPLOAD + 1, 7) }), 413);
      const names = await fsp.readdir(node.sharedDir);
      expect(names).to.include('at-cap.bin');
      expect(names.filter((n) => n.includes('over-cap'))).to.deep.equal([]);
    });

    it('the contract lengths: search query 256, upload name 1024, peer host 255, download target 8192', async function () {
      expect((await api.get(`/api/search?q=${'q'.repeat(256)}`)).status).to.equal(200);
      expectError(await api.get(`/api/search?q=${'q'.repeat(257)}`), 400, /query parameter "q"/);
      expectError(await api.get('/api/search?q=%20%20'), 400, /give a query/);
      expectError(await api.put(`/api/files?name=${'n'.repeat(1025)}`, { body: 'x' }), 400, /query parameter "name"/);
      expectError(await api.post('/api/peers', { json: { host: 'h'.repeat(256), port: 9 } }), 400);
      expectError(await api.post('/api/downloads', { json: { target: 't'.repeat(8193) } }), 400);
    });

    it(`a live client that stops reading is disconnected once MAX_BACKLOG (${MAX_BACKLOG}) packets wait for it; one that reads stays`, async function () {
      // The reader: polls all the time, so its backlog never builds up.
      const reader = await liveClient(web.url);
      // The stalled one: connects, reads its first answer, then never polls again.
      const open = await call(web.url, 'GET', '/socket.io/?EIO=4&transport=polling');
      const { sid } = JSON.parse(open.text.slice(1)) as { sid: string };
      const q = `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
      expect((await call(web.url, 'POST', q, { headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: '40' })).status).to.equal(200);
      expect((await call(web.url, 'GET', q)).text).to.match(/^40/);
      try {
        // download-removed goes to every client reliably and is never coalesced: one packet each.
        const total = MAX_BACKLOG + 50;
        const removed = () => reader.events.filter(([n]) => n === 'download-removed').length;
        for (let sent = 0; sent < total; ) {
          for (const end = Math.min(total, sent + 50); sent < end; sent++) node.emit('download-removed', sent.toString(16).padStart(40, '0'));
          await waitFor(() => removed() === sent, 10_000, `the reader to get ${sent} events`);
        }
        // What was queued for the stalled client ends with the disconnect; nothing past the cap.
        const backlog = await call(web.url, 'GET', q);
        const packets = backlog.status === 200 ? backlog.text.split('\x1e') : [];
        expect(packets, `${backlog.status} ${backlog.text.slice(-200)}`).to.include('41');
        expect(packets.filter((p) => p.startsWith('42')).length).to.be.at.most(MAX_BACKLOG + 1);
        const after = await call(web.url, 'GET', q);
        expect(after.status === 400 || after.text.split('\x1e').includes('1'), `${after.status} ${after.text.slice(0, 100)}`).to.equal(true);
        // The reader is still connected and still served.
        node.emit('download-removed', 'f'.repeat(40));
        await reader.waitEvent('download-removed', (d) => (d as { infohash: string }).infohash === 'f'.repeat(40));
      } finally {
        await reader.close();
      }
    });
  });
});
