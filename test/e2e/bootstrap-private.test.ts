/**
 * A private swarm's bootstrap server (started with a secret) over HTTP on 127.0.0.1, attacked
 * by clients without the secret, with a wrong one, and with replays: every entry point (the
 * node API, search, the tracker, the monitor) refuses them and says why; its answers prove
 * the secret in turn. Then real nodes: those with the secret meet there and download through
 * its tracker; one with another secret or none is refused; a private node pointed at an open
 * server uses nothing from it and tells it none of its files. Also the per-address request
 * rate limit, which holds in every mode.
 */
import { expect } from 'chai';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import bencode from 'bencode';
import { cleanup, randomFile, sha1File, startNode, tempDir, waitFor } from '../helpers.js';
import { call as httpCall } from '../web-http.js';
import { idOf, named, nodeApiAuth } from '../identities.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { LOGINS_PER_SECOND } from '../../bootstrap/monitor-access.js';
import { SwarmSecret } from '../../network/security/secret.js';
import { AUTH_HEADERS, PROOF_HEADER, checkAnswerProof, authHeaders } from '../../network/wire/request-auth.js';
import { percentEncodeBytes } from '../../network/wire/tracker-codec.js';
import type { Node } from '../../network/index.js';

const SECRET = 'the swarm secret for tests';
const swarm = SwarmSecret.from(SECRET);
const stranger = SwarmSecret.from('not the swarm secret');

interface Reply {
  status: number;
  json: Record<string, unknown>;
  text: string;
  headers: Headers;
}

async function send(url: string, method: string, body: string | undefined, headers: Record<string, string>): Promise<Reply> {
  const res = await fetch(url, { method, body, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text, headers: res.headers };
}

const registerBody = (name: string) => JSON.stringify({ id: idOf(name), instance: `${name}-i1`, name, port: 7000, files: [{ name: `${name}.iso`, size: 10, infohash: 'ab'.repeat(20) }], downloads: [] });

describe('bootstrap server of a private swarm', function () {
  let dir = '';
  let server: BootstrapServer | null = null;
  let base = '';

  async function start(init: ConstructorParameters<typeof BootstrapServer>[0] = {}): Promise<BootstrapServer> {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dir, 'data'), heartbeatMs: 60_000, secret: SECRET, ...init });
    await server.start();
    base = server.url;
    return server;
  }
  /** A register of node `name`: signed by its key, with `macKey`'s HMAC (none: without). */
  const register = (name: string, macKey: Buffer | undefined, extra: Record<string, string> = {}) => {
    const body = registerBody(name);
    return send(`${base}/api/nodes`, 'POST', body, { ...nodeApiAuth('POST', '/api/nodes', body, { macKey }), ...extra });
  };

  beforeEach(async () => {
    dir = await tempDir('shoal-bootstrap-private-');
  });
  afterEach(async () => {
    await server?.stop();
    server = null;
    await cleanup(dir);
  });

  it('registers a node that proves the secret, and its answer proves the secret in turn', async function () {
    await start();
    const body = registerBody('a');
    const headers = nodeApiAuth('POST', '/api/nodes', body, { macKey: swarm.bootstrapKey });
    const r = await send(`${base}/api/nodes`, 'POST', body, headers);
    expect(r.status, r.text).to.equal(200);
    expect(checkAnswerProof(swarm.bootstrapKey, headers[AUTH_HEADERS.nonce]!, 200, r.text, r.headers.get(PROOF_HEADER))).to.equal(true);
    expect(server!.registry.get(idOf('a'))!.files).to.have.length(1);
  });

  it('refuses a node without the secret, with a wrong one, replays and stale copies, each saying why', async function () {
    await start();
    const none = await register('a', undefined);
    expect([none.status, none.json.error]).to.deep.equal([401, "this bootstrap server serves a private swarm: requests need the swarm's secret (start the node with the same --secret or --secret-file)"]);
    expect(none.headers.get(PROOF_HEADER), 'a refusal proves nothing').to.equal(null);
    const wrong = await register('a', stranger.bootstrapKey);
    expect([wrong.status, wrong.json.error]).to.deep.equal([401, "wrong swarm secret: this request's HMAC is not the swarm's"]);
    // A request captured on the way and sent again, as it was or later.
    const body = registerBody('b');
    const captured = nodeApiAuth('POST', '/api/nodes', body, { macKey: swarm.bootstrapKey });
    expect((await send(`${base}/api/nodes`, 'POST', body, captured)).status).to.equal(200);
    const replay = await send(`${base}/api/nodes`, 'POST', body, captured);
    expect([replay.status, replay.json.error]).to.deep.equal([401, 'this request was seen before (same nonce): a replay']);
    const old = authHeaders({ method: 'POST', target: '/api/nodes', body }, { signer: named('b'), macKey: swarm.bootstrapKey, now: Date.now() - 10 * 60_000 });
    const stale = await send(`${base}/api/nodes`, 'POST', body, old);
    expect(stale.status).to.equal(401);
    expect(stale.json.error).to.match(/^request time -600 s off the server's clock \(at most 300 s\)/);
    // The HMAC holds for one body only: a captured request with other files in it does not.
    const moved = await send(`${base}/api/nodes`, 'POST', registerBody('b').replace('b.iso', 'planted.iso'), nodeApiAuth('POST', '/api/nodes', body, { macKey: swarm.bootstrapKey }));
    expect([moved.status, moved.json.error]).to.deep.equal([401, "wrong swarm secret: this request's HMAC is not the swarm's"]);
    // Even with the secret, a node id is acted for by its own key only.
    const hijack = await send(`${base}/api/nodes`, 'POST', registerBody('b'), nodeApiAuth('POST', '/api/nodes', registerBody('b'), { macKey: swarm.bootstrapKey, as: named('mallory') }));
    expect(hijack.status).to.equal(403);
    expect(hijack.json.error).to.match(/is not the id of the key that signed this request/);
    expect(server!.registry.list().map((n) => n.id)).to.deep.equal([idOf('b')]);
    expect(server!.refusals()).to.deep.equal({ 'no-secret': 1, 'wrong-secret': 2, replayed: 1, stale: 1 });
  });

  it('refuses searches without the secret, and tracker announces too (real clients cannot join a private swarm)', async function () {
    await start();
    expect((await register('a', swarm.bootstrapKey)).status).to.equal(200);
    const search = await send(`${base}/api/search?q=iso`, 'GET', undefined, {});
    expect([search.status, search.json.files]).to.deep.equal([401, undefined]);
    expect(search.json.error).to.match(/serves a private swarm/);
    const wrong = await send(`${base}/api/search?q=iso`, 'GET', undefined, authHeaders({ method: 'GET', target: '/api/search?q=iso' }, { macKey: stranger.bootstrapKey }));
    expect(wrong.status).to.equal(401);
    const headers = authHeaders({ method: 'GET', target: '/api/search?q=iso' }, { macKey: swarm.bootstrapKey });
    const right = await send(`${base}/api/search?q=iso`, 'GET', undefined, headers);
    expect(right.status).to.equal(200);
    expect((right.json.files as Array<{ name: string }>).map((f) => f.name)).to.deep.equal(['a.iso']);
    expect(checkAnswerProof(swarm.bootstrapKey, headers[AUTH_HEADERS.nonce]!, 200, right.text, right.headers.get(PROOF_HEADER))).to.equal(true);

    const target = `/announce?info_hash=${percentEncodeBytes(Buffer.alloc(20, 7))}&peer_id=-TT0001-000000000001&port=6881&uploaded=0&downloaded=0&left=1&compact=1`;
    const bare = await fetch(base + target);
    expect(bare.status).to.equal(401);
    const failure = bencode.decode(new Uint8Array(await bare.arrayBuffer())) as Record<string, Uint8Array>;
    expect(Buffer.from(failure['failure reason']!).toString()).to.match(/serves a private swarm/);
    const signed = await fetch(base + target, { headers: authHeaders({ method: 'GET', target }, { macKey: swarm.bootstrapKey }) });
    expect(signed.status).to.equal(200);
    expect(server!.tracker.store.counts(Buffer.alloc(20, 7).toString('hex')).incomplete).to.equal(1);
  });

  it('asks every visitor of the monitor for the secret, on this host too; the right one opens it with a cookie', async function () {
    await start();
    const page = await httpCall(base, 'GET', '/');
    expect(page.status).to.equal(401);
    expect(page.text).to.include('<form method="post" action="/login">');
    expect((await httpCall(base, 'GET', '/api/nodes')).status).to.equal(401);
    const form = (secret: string) => ({ body: `secret=${encodeURIComponent(secret)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const wrong = await httpCall(base, 'POST', '/login', form('not the swarm secret'));
    expect(wrong.status).to.equal(401);
    expect(wrong.text).to.include('That is not the secret of this swarm.');
    const right = await httpCall(base, 'POST', '/login', form(SECRET));
    expect([right.status, right.headers.location]).to.deep.equal([303, '/']);
    const cookie = String(right.headers['set-cookie']).split(';')[0]!;
    expect(cookie, 'the cookie holds a derived key, never the secret').to.not.include(encodeURIComponent(SECRET));
    expect((await httpCall(base, 'GET', '/', { headers: { cookie } })).status).to.equal(200);
    expect((await httpCall(base, 'GET', '/api/nodes', { headers: { cookie } })).status).to.equal(200);
    // The monitor token still opens it (scripts).
    expect((await httpCall(base, 'GET', '/api/nodes', { headers: { authorization: `Bearer ${server!.monitorToken}` } })).status).to.equal(200);
    // Guessing costs a scrypt stretch each: a few tries a second, for everyone together.
    const began = Date.now();
    const tries = await Promise.all(Array.from({ length: 4 * LOGINS_PER_SECOND }, () => httpCall(base, 'POST', '/login', form('guess-guess'))));
    const seconds = Math.ceil((Date.now() - began) / 1000) + 1;
    const tried = tries.filter((t) => t.status === 401).length;
    expect(tries.filter((t) => t.status === 429).length).to.be.at.least(1);
    expect(tried, `${tried} tries in ${seconds} s`).to.be.at.most(LOGINS_PER_SECOND * seconds);
  });

  it('an open server has no login', async function () {
    await start({ secret: undefined });
    expect((await httpCall(base, 'POST', '/login', { body: 'secret=whatever', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status).to.equal(404);
  });

  it('answers more than its rate from one address with 429 and Retry-After, in every mode; other addresses go on', async function () {
    await start({ secret: undefined, requestsPerSecond: 2, requestBurst: 5 });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const r = await send(`${base}/api/search?q=x`, 'GET', undefined, {});
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        expect(r.json.error).to.equal('too many requests from this address (at most 2 a second): slow down');
      }
    }
    expect(statuses.slice(0, 5)).to.deep.equal([200, 200, 200, 200, 200]);
    expect(statuses.slice(5)).to.include(429);
    expect(Number(retryAfter)).to.be.within(1, 2);
    expect(server!.refusals()['rate-limited']).to.be.at.least(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await send(`${base}/api/search?q=x`, 'GET', undefined, {})).status, 'the bucket refills').to.equal(200);
  });
});

describe('nodes of a private swarm and its bootstrap server', function () {
  this.timeout(60_000);
  let dir = '';
  const servers: BootstrapServer[] = [];
  const nodes: Node[] = [];

  beforeEach(async () => {
    dir = await tempDir('shoal-private-nodes-');
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
    await cleanup(dir);
  });

  async function server(secret?: string): Promise<BootstrapServer> {
    const s = new BootstrapServer({ port: 0, host: '127.0.0.1', heartbeatMs: 200, ttlMs: 5000, ...(secret !== undefined && { secret }) });
    await s.start();
    servers.push(s);
    return s;
  }
  async function node(name: string, bootstrap: string, secret?: string, share?: { file: string; size: number }): Promise<Node> {
    if (share) {
      await fsp.mkdir(path.join(dir, name, 'shared'), { recursive: true });
      await randomFile(path.join(dir, name, 'shared', share.file), share.size);
    }
    const n = await startNode(path.join(dir, name), { bootstrap, name, ...(secret !== undefined && { secret }) });
    nodes.push(n);
    return n;
  }
  const health = (n: Node) => n.discovery().find((d) => d.source === 'bootstrap')!.health;

  it('nodes with the secret meet there and download through its tracker; nodes with another secret or none are refused, saying why', async function () {
    const s = await server(SECRET);
    const seed = await node('seed', s.url, SECRET, { file: 'private.bin', size: 300_000 });
    const file = path.join(seed.sharedDir, 'private.bin');
    await waitFor(() => seed.files().length === 1, 10_000, 'the seed to hash its file');
    const leech = await node('leech', s.url, SECRET);
    await waitFor(() => leech.knownPeers('bootstrap').some((p) => p.id === seed.id), 5000, 'the leech to hear of the seed from the server');
    const infohash = await leech.download('private.bin');
    expect(await sha1File(await leech.whenDone(infohash))).to.equal(await sha1File(file));
    await waitFor(() => s.tracker.store.counts(infohash).complete + s.tracker.store.counts(infohash).incomplete > 0, 5000, 'the leech announced to the tracker');
    expect(s.refusals()).to.deep.equal({});

    const other = await node('other', s.url, 'another swarm entirely');
    const open = await node('open', s.url);
    await waitFor(() => health(other).state === 'failing' && health(open).state === 'failing', 5000, 'both refused');
    expect(health(other).detail).to.match(/HTTP 401 wrong swarm secret/);
    expect(health(open).detail).to.match(/HTTP 401 this bootstrap server serves a private swarm/);
    expect(s.registry.get(other.id)).to.equal(undefined);
    expect(s.registry.get(open.id)).to.equal(undefined);
    expect(other.knownPeers()).to.deep.equal([]);
    expect(open.knownPeers()).to.deep.equal([]);
  });

  it('a private node pointed at an open server (or one posing as the swarm’s) uses nothing from it and tells it none of its files', async function () {
    const s = await server();
    const honest = await node('honest', s.url); // an open node there: the private one must not hear of it
    const mine = await node('mine', s.url, SECRET, { file: 'secret-plans.bin', size: 1000 });
    await waitFor(() => mine.files().length === 1, 10_000, 'the private node to hash its file');
    await waitFor(() => health(mine).state === 'failing', 5000, 'the private node to give up on the server');
    expect(health(mine).detail).to.match(/does not prove it holds this swarm's secret/);
    await new Promise((r) => setTimeout(r, 600)); // several retries
    expect(s.registry.get(mine.id)?.files ?? [], 'none of its files').to.deep.equal([]);
    expect(mine.knownPeers().map((p) => p.id)).to.not.include(honest.id);
  });
});
