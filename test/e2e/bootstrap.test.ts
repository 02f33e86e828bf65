/**
 * The bootstrap server over HTTP on 127.0.0.1 (every bad input gets its status and a JSON
 * error and the server stays up), its tracker, the monitor page and its socket.io feed, and
 * the `bootstrap` command. The registry as pure state is in test/unit/bootstrap-registry,
 * the tracker's wire format in test/unit/tracker-codec.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import bencode from 'bencode';
import { tempDir, cleanup, waitFor, ROOT, Children, captureLog } from '../helpers.js';
import { liveClient } from '../web-http.js';
import { BootstrapServer, WARN_PER_MINUTE, hostMap } from '../../bootstrap/server.js';
import { parseAnnounceResponse, percentEncodeBytes } from '../../network/wire/tracker-codec.js';
import { MAX_BODY_BYTES, MAX_PEERS_IN_ANSWER, type RegisterBody, type RegisterRequest } from '../../network/wire/bootstrap-api.js';
import { idOf, named, nodeApiAuth } from '../identities.js';
import { Identity } from '../../network/security/identity.js';

const hash = (n: number) => n.toString(16).padStart(40, '0');
const file = (name: string, n: number, extra: { complete?: boolean } = {}) => ({ name, size: 1000 + n, infohash: hash(n), ...extra });

// ---- over HTTP ----------------------------------------------------------------------------

interface Reply {
  status: number;
  json: Record<string, unknown>;
  text: string;
}

/**
 * One request; a node API write is signed as the node it names (test/identities.ts) unless
 * `auth` says otherwise: 'none' for unsigned, an identity to sign as, or a swarm's HMAC key.
 */
async function call(url: string, method: string, body?: unknown, headers: Record<string, string> = {}, auth: 'none' | { as?: Identity | null; macKey?: Buffer } = {}): Promise<Reply> {
  const raw = typeof body === 'string' || body === undefined ? body : JSON.stringify(body);
  const u = new URL(url);
  const write = ['POST', 'PUT', 'DELETE'].includes(method) && u.pathname.startsWith('/api/nodes');
  const signed = auth === 'none' ? {} : write || auth.macKey ? nodeApiAuth(method, `${u.pathname}${u.search}`, raw, { as: write ? auth.as : null, macKey: auth.macKey }) : {};
  const all = { ...signed, ...headers };
  const res = await fetch(url, { method, body: raw, headers: raw === undefined ? all : { 'content-type': 'application/json', ...all } });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON: the test looks at text */
  }
  return { status: res.status, json, text };
}

/** A register body for the node called `name` (its id is idOf(name)). */
function body(name: string, extra: Partial<RegisterBody> = {}): RegisterBody {
  return { id: idOf(name), instance: `${name}-i1`, name: `name-${name}`, port: 7000, files: [], downloads: [], ...extra };
}
const nodePath = (name: string, rest = '') => `/api/nodes/${idOf(name)}${rest}`;

describe('bootstrap server: hosts as each asker should dial them', function () {
  it('shows a node registered as loopback at the address a remote asker reached the server on', function () {
    expect(hostMap('10.0.0.9', '10.0.0.1')('127.0.0.1')).to.equal('10.0.0.1');
    expect(hostMap('10.0.0.9', '::ffff:10.0.0.1')('::1')).to.equal('10.0.0.1');
    expect(hostMap('10.0.0.9', '10.0.0.1')('10.0.0.7'), 'other hosts as registered').to.equal('10.0.0.7');
    expect(hostMap('127.0.0.1', '127.0.0.1')('127.0.0.1'), 'a local asker dials loopback').to.equal('127.0.0.1');
  });
});

describe('bootstrap server over HTTP', function () {
  let dir = '';
  let server: BootstrapServer | null = null;
  let base = '';

  async function start(init: ConstructorParameters<typeof BootstrapServer>[0] = {}): Promise<BootstrapServer> {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(dir, 'data'), heartbeatMs: 1000, ...init });
    await server.start();
    base = server.url;
    return server;
  }

  beforeEach(async () => {
    dir = await tempDir('shoal-bootstrap-');
  });
  afterEach(async () => {
    await server?.stop();
    server = null;
    await cleanup(dir);
  });

  it('registers, answers with the other nodes, heartbeats, and unregisters', async function () {
    await start();
    const a = await call(`${base}/api/nodes`, 'POST', body('a', { files: [file('alpha.iso', 1)] }));
    expect(a.status).to.equal(200);
    expect(a.json).to.deep.include({ self: { id: idOf('a'), host: '127.0.0.1', port: 7000 }, nodes: [], truncated: false, heartbeatMs: 1000, ttlMs: 3000 });
    const b = await call(`${base}/api/nodes`, 'POST', body('b', { host: '192.168.1.20' }));
    expect(b.json.nodes).to.deep.equal([{ id: idOf('a'), instance: 'a-i1', name: 'name-a', host: '127.0.0.1', port: 7000 }]);
    const hb = await call(base + nodePath('a'), 'PUT', { instance: 'a-i1', downloads: [{ infohash: hash(5), name: 'five', progress: 0.5 }] });
    expect(hb.status).to.equal(200);
    expect((hb.json.nodes as Array<{ id: string; host: string }>).map((n) => [n.id, n.host])).to.deep.equal([[idOf('b'), '192.168.1.20']]);
    const list = await call(`${base}/api/nodes`, 'GET');
    const views = list.json.nodes as Array<{ id: string; role: string; downloads: unknown[] }>;
    expect(views.map((v) => [v.id, v.role])).to.deep.equal([[idOf('a'), 'LEECHER'], [idOf('b'), 'SEEDER']]);
    expect((await call(base + nodePath('a', '?instance=wrong'), 'DELETE')).status).to.equal(403);
    expect((await call(base + nodePath('a', '?instance=a-i1'), 'DELETE')).status).to.equal(204);
    expect((await call(base + nodePath('a'), 'PUT', { instance: 'a-i1' })).status, 'unknown now: register again').to.equal(404);
  });

  it('expires a node that stops heartbeating', async function () {
    await start({ heartbeatMs: 100, ttlMs: 300 });
    await call(`${base}/api/nodes`, 'POST', body('a'));
    expect(server!.registry.size).to.equal(1);
    await waitFor(async () => ((await call(`${base}/api/nodes`, 'GET')).json.nodes as unknown[]).length === 0, 3000, 'the node to expire');
  });

  it('drops a node reported unreachable', async function () {
    await start();
    await call(`${base}/api/nodes`, 'POST', body('t'));
    await call(`${base}/api/nodes`, 'POST', body('r'));
    const rep = await call(base + nodePath('t', '/reports'), 'POST', { reporter: idOf('r') });
    expect(rep.status).to.equal(202);
    expect(rep.json).to.deep.equal({ dropped: true });
    expect((await call(base + nodePath('r', '/reports'), 'POST', { reporter: idOf('ghost') })).status).to.equal(403);
    expect((await call(`${base}/api/nodes`, 'POST', body('t'))).status, 'quarantined instance').to.equal(409);
  });

  it('searches everything the nodes publish, as text', async function () {
    await start();
    await call(`${base}/api/nodes`, 'POST', body('a', { files: [file('Big Buck Bunny.mkv', 1), file('readme.txt', 2)] }));
    await call(`${base}/api/nodes`, 'POST', body('b', { files: [file('big buck bunny.mkv', 1)] }));
    const r = await call(`${base}/api/search?q=${encodeURIComponent('BUNNY')}`, 'GET');
    expect(r.status).to.equal(200);
    const files = r.json.files as Array<{ infohash: string; nodes: Array<{ id: string }> }>;
    expect(files.map((f) => f.infohash)).to.deep.equal([hash(1)]);
    expect(files[0]!.nodes.map((n) => n.id).sort()).to.deep.equal([idOf('a'), idOf('b')].sort());
    expect((await call(`${base}/api/search?q=${encodeURIComponent('(a+)+$')}`, 'GET')).json).to.deep.equal({ files: [] });
  });

  it('answers every bad request with its status and a JSON error, and stays up', async function () {
    await start();
    await call(`${base}/api/nodes`, 'POST', body('owner'));
    const big = JSON.stringify({ ...body('big'), name: 'x', files: [{ name: 'y'.repeat(5 * 1024 * 1024), size: 1, infohash: hash(1) }] });
    const cases: Array<[string, string, string, unknown, number, RegExp, Record<string, string>?]> = [
      ['wrong type', 'POST', '/api/nodes', { ...body('a'), port: 'seven' }, 400, /field "port"/],
      ['port 0', 'POST', '/api/nodes', body('a', { port: 0 }), 400, /port.*1\.\.65535/],
      ['port 70000', 'POST', '/api/nodes', body('a', { port: 70000 }), 400, /port.*1\.\.65535/],
      ['bad id', 'POST', '/api/nodes', { ...body('a'), id: '../etc' }, 400, /field "id"/],
      ['host not an address', 'POST', '/api/nodes', body('a', { host: 'evil.example' }), 400, /field "host"/],
      ['unspecified host', 'POST', '/api/nodes', body('a', { host: '0.0.0.0' }), 400, /unicast/],
      ['too many files', 'POST', '/api/nodes', body('a', { files: Array.from({ length: 10_001 }, (_, i) => file('f', i)) }), 400, /at most 10000 files/],
      ['too many downloads', 'POST', '/api/nodes', body('a', { downloads: Array.from({ length: 1001 }, (_, i) => ({ infohash: hash(i), name: 'n', progress: 0 })) }), 400, /at most 1000 downloads/],
      ['progress over 1', 'POST', '/api/nodes', body('a', { downloads: [{ infohash: hash(1), name: 'n', progress: 2 }] }), 400, /downloads/],
      ['name over 64 characters', 'POST', '/api/nodes', body('a', { name: 'n'.repeat(65) }), 400, /field "name"/],
      ['malformed JSON', 'POST', '/api/nodes', '{"id": "a",', 400, /not valid JSON/],
      ['unsigned', 'POST', '/api/nodes', body('a'), 401, /sign the request with the node's key/, { unsigned: '1' }],
      ['signed by another key', 'POST', '/api/nodes', body('a'), 403, /not the id of the key that signed this request/, { as: 'mallory' }],
      ['another node\'s heartbeat', 'PUT', nodePath('owner'), { instance: 'owner-i1' }, 403, /not the id of the key/, { as: 'mallory' }],
      ['another node\'s unregister', 'DELETE', nodePath('owner', '?instance=owner-i1'), undefined, 403, /not the id of the key/, { as: 'mallory' }],
      ['a report for another reporter', 'POST', nodePath('owner', '/reports'), { reporter: idOf('a') }, 403, /signed by its reporter's key/, { as: 'mallory' }],
      ['JSON that is not an object', 'POST', '/api/nodes', '[1,2,3]', 400, /expected object/],
      ['oversized body', 'POST', '/api/nodes', big, 413, new RegExp(`body larger than ${MAX_BODY_BYTES} bytes`)],
      ['no content type', 'POST', '/api/nodes', undefined, 415, /Content-Type: application\/json/],
      ['heartbeat of an unknown node', 'PUT', nodePath('nobody'), { instance: 'x' }, 404, /unknown node/],
      ['heartbeat with a bad id', 'PUT', '/api/nodes/a%20b', { instance: 'x' }, 400, /must be 1\.\.64/],
      ['heartbeat of another instance', 'PUT', nodePath('owner'), { instance: 'thief' }, 403, /another instance/],
      ['unregister without instance', 'DELETE', nodePath('owner'), undefined, 400, /expected string/],
      ['report with a bad body', 'POST', nodePath('owner', '/reports'), { reporter: 42 }, 400, /reporter/],
      ['search without q', 'GET', '/api/search', undefined, 400, /q/],
      ['search with q twice', 'GET', '/api/search?q=a&q=b', undefined, 400, /q/],
      ['search too long', 'GET', `/api/search?q=${'x'.repeat(257)}`, undefined, 400, /at most 256/],
      ['unknown route', 'GET', '/api/nope', undefined, 404, /no route/],
      ['unknown method', 'PATCH', nodePath('owner'), {}, 404, /no route/],
    ];
    for (const [what, method, route, payload, status, error, how] of cases) {
      const r = await call(base + route, method, payload, {}, how?.unsigned ? 'none' : how?.as ? { as: named(how.as) } : {});
      expect(r.status, `${what}: ${r.text.slice(0, 200)}`).to.equal(status);
      expect(r.json.error, what).to.be.a('string').and.match(error);
    }
    const after = await call(base + nodePath('owner'), 'PUT', { instance: 'owner-i1' });
    expect(after.status, 'the server still answers, and the owner still heartbeats').to.equal(200);
    expect(server!.registry.size).to.equal(1);
  });

  it(`reads a body of exactly MAX_BODY_BYTES (${MAX_BODY_BYTES}); one byte more is a 413`, async function () {
    await start();
    /** A register body of exactly `bytes` bytes, padded with a field the server drops. */
    const padded = (id: string, bytes: number) => {
      const bare = JSON.stringify({ ...body(id), pad: '' });
      return JSON.stringify({ ...body(id), pad: 'x'.repeat(bytes - bare.length) });
    };
    expect(Buffer.byteLength(padded('edge', MAX_BODY_BYTES))).to.equal(MAX_BODY_BYTES);
    expect((await call(`${base}/api/nodes`, 'POST', padded('edge', MAX_BODY_BYTES))).status).to.equal(200);
    const over = await call(`${base}/api/nodes`, 'POST', padded('over', MAX_BODY_BYTES + 1));
    expect(over.status).to.equal(413);
    expect(over.json.error).to.equal(`body larger than ${MAX_BODY_BYTES} bytes`);
    expect(server!.registry.get(idOf('over'))).to.equal(undefined);
  });

  it(`answers a register with at most MAX_PEERS_IN_ANSWER (${MAX_PEERS_IN_ANSWER}) other nodes, the freshest, and says it left some out`, async function () {
    await start({ maxNodesPerAddress: MAX_PEERS_IN_ANSWER + 10, heartbeatMs: 60_000 });
    // One at a time, so the order of freshness is the order of registration.
    for (let i = 0; i <= MAX_PEERS_IN_ANSWER; i++) expect((await call(`${base}/api/nodes`, 'POST', body(`n${i}`))).status).to.equal(200);
    const me = await call(`${base}/api/nodes`, 'POST', body('me'));
    const nodes = me.json.nodes as Array<{ id: string }>;
    expect(nodes).to.have.length(MAX_PEERS_IN_ANSWER);
    expect(me.json.truncated).to.equal(true);
    expect(nodes[0]!.id, 'freshest first').to.equal(idOf(`n${MAX_PEERS_IN_ANSWER}`));
    expect(nodes.map((n) => n.id)).to.not.include(idOf('n0'));
    expect(((await call(`${base}/api/nodes`, 'GET')).json.nodes as unknown[]).length, 'the monitor lists them all').to.equal(MAX_PEERS_IN_ANSWER + 2);
  });

  it('logs bad requests at warn, at most 20 a minute', async function () {
    const { logger, records } = captureLog('info');
    await start({ logger });
    for (let i = 0; i < 60; i++) await call(`${base}/api/nodes`, 'POST', '{broken');
    for (let i = 0; i < 10; i++) await fetch(`${base}/announce?port=1`);
    expect(records.filter((r) => r.level === 40 && (r.msg === 'bad request' || r.msg === 'bad tracker request'))).to.have.length(WARN_PER_MINUTE);
    expect(records.filter((r) => r.level === 30 && r.msg === 'request'), 'no per-request lines at info').to.have.length(0);
    expect((await call(`${base}/api/nodes`, 'GET')).status).to.equal(200);
  });

  it('holds thousands of registrations from one address to the per-address bound (429)', async function () {
    // A long TTL: on a loaded machine the 2000 requests may take longer than the default
    // 3 s, and expired entries would (rightly) free places under the bound.
    // No rate limit here: this is about the registry's bound (the rate limit has its own test).
    await start({ heartbeatMs: 60_000, requestsPerSecond: 1e6, requestBurst: 1e6 });
    const statuses = new Map<number, number>();
    for (let batch = 0; batch < 20; batch++) {
      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => call(`${base}/api/nodes`, 'POST', body(`flood-${batch}-${i}`))));
      for (const r of replies) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    expect(statuses.get(200)).to.equal(64);
    expect(statuses.get(429)).to.equal(2000 - 64);
    expect(server!.registry.size).to.equal(64);
    const r = await call(`${base}/api/nodes`, 'POST', body('one-more'));
    expect(r.json.error).to.equal('too many nodes from this address');
    expect((await call(`${base}/api/nodes`, 'GET')).status).to.equal(200);
  });

  it('keeps its registry across a restart on the same data dir; nodes heartbeat on', async function () {
    await start();
    await call(`${base}/api/nodes`, 'POST', body('a', { files: [file('kept.bin', 1)] }));
    await call(`${base}/api/nodes`, 'POST', body('b'));
    await server!.stop();
    await start();
    const list = (await call(`${base}/api/nodes`, 'GET')).json.nodes as Array<{ id: string }>;
    expect(list.map((n) => n.id).sort()).to.deep.equal([idOf('a'), idOf('b')].sort());
    expect((await call(base + nodePath('a'), 'PUT', { instance: 'a-i1' })).status).to.equal(200);
    expect(((await call(`${base}/api/search?q=kept`, 'GET')).json.files as unknown[]).length).to.equal(1);
  });

  describe('tracker', function () {
    const INFO = Buffer.from([0xff, 0x80, 0x25, 0x26, 0x3d, 0x2b, 0x20, 0x3f, 0x00, 0xc3, 0x28, 0x41, 0x7e, 0x2e, 0x2d, 0x5f, 0x2f, 0xfe, 0x01, 0x99]);
    const peerId = (n: number) => Buffer.from(`-TT0001-${String(n).padStart(12, '0')}`);
    const announceQuery = (n: number, port: number, extra = '') =>
      `info_hash=${percentEncodeBytes(INFO)}&peer_id=${percentEncodeBytes(peerId(n))}&port=${port}&uploaded=0&downloaded=0&left=100&compact=1${extra}`;
    async function announce(query: string): Promise<{ status: number; body: Buffer }> {
      const res = await fetch(`${base}/announce?${query}`);
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
    }

    it('tracks announced peers with a binary info_hash, compact answers, and stopped', async function () {
      await start();
      const first = await announce(announceQuery(1, 6001, '&event=started'));
      expect(first.status).to.equal(200);
      expect(parseAnnounceResponse(first.body).peers).to.deep.equal([]);
      const second = parseAnnounceResponse((await announce(announceQuery(2, 6002, '&event=started'))).body);
      expect(second.peers).to.deep.equal([{ host: '127.0.0.1', port: 6001 }]);
      expect(second).to.include({ interval: 60, minInterval: 30, complete: 0, incomplete: 2 });
      await announce(announceQuery(1, 6001, '&event=stopped'));
      expect(parseAnnounceResponse((await announce(announceQuery(2, 6002))).body).peers).to.deep.equal([]);
    });

    it('caps the peers it hands out at numwant, 200 at most', async function () {
      await start();
      for (let i = 0; i < 250; i++) await announce(announceQuery(i, 7000, `&ip=127.0.${Math.floor(i / 200)}.${(i % 200) + 1}`));
      expect(parseAnnounceResponse((await announce(announceQuery(999, 9999, '&numwant=10'))).body).peers).to.have.length(10);
      expect(parseAnnounceResponse((await announce(announceQuery(999, 9999, '&numwant=5000'))).body).peers).to.have.length(200);
      expect(parseAnnounceResponse((await announce(announceQuery(999, 9999))).body).peers).to.have.length(50);
    });

    it('scrapes counts, and adds registered nodes that share the file as seeds', async function () {
      await start();
      await announce(announceQuery(1, 6001, '&event=started'));
      await announce(announceQuery(2, 6002, '&left=0&event=completed').replace('&left=100', ''));
      await call(`${base}/api/nodes`, 'POST', body('seed', { port: 7777, files: [{ name: 'x', size: 100, infohash: INFO.toString('hex') }] }));
      const res = await fetch(`${base}/scrape?info_hash=${percentEncodeBytes(INFO)}`);
      expect(res.status).to.equal(200);
      const decoded = bencode.decode(new Uint8Array(await res.arrayBuffer())) as { files: Record<string, Record<string, number>> };
      const entries = Object.values(decoded.files);
      expect(entries).to.deep.equal([{ complete: 2, downloaded: 1, incomplete: 1 }]);
      const peers = parseAnnounceResponse((await announce(announceQuery(3, 6003))).body).peers;
      expect(peers).to.deep.include({ host: '127.0.0.1', port: 7777 });
      expect(peers).to.have.length(3);
    });

    it('answers a left=0 announce (a seed, or a client with only a magnet) with leechers first, then the seeds', async function () {
      await start();
      await announce(announceQuery(1, 6001, '&event=started')); // a leecher
      await announce(announceQuery(2, 6002, '&left=0&event=completed').replace('&left=100', '')); // an announced seed
      await call(`${base}/api/nodes`, 'POST', body('seed', { port: 7777, files: [{ name: 'x', size: 100, infohash: INFO.toString('hex') }] }));
      const asker = parseAnnounceResponse((await announce(announceQuery(3, 6003, '&left=0').replace('&left=100', ''))).body).peers;
      expect(asker[0], 'the leecher first').to.deep.equal({ host: '127.0.0.1', port: 6001 });
      expect(asker.slice(1)).to.have.deep.members([{ host: '127.0.0.1', port: 6002 }, { host: '127.0.0.1', port: 7777 }]);
    });

    it('answers a bad announce with a failure reason and a 4xx', async function () {
      await start();
      const missing = await announce(`peer_id=${percentEncodeBytes(peerId(1))}&port=1`);
      expect(missing.status).to.equal(400);
      expect(Buffer.from((bencode.decode(missing.body) as Record<string, Uint8Array>)['failure reason']!).toString()).to.equal('missing info_hash');
      expect(() => parseAnnounceResponse(missing.body, missing.status)).to.throw(/missing info_hash/);
      const scrape = await fetch(`${base}/scrape`);
      expect(scrape.status).to.equal(400);
      expect((await call(`${base}/api/nodes`, 'GET')).status, 'still up').to.equal(200);
    });
  });

  describe('monitor page', function () {
    it('renders the node table, escaping names', async function () {
      await start();
      await call(`${base}/api/nodes`, 'POST', body('m', { name: 'kitchen <b>pc</b>', files: [file('cats.mp4', 1)], downloads: [{ infohash: hash(2), name: 'dogs.mp4', progress: 0.25 }] }));
      const res = await fetch(`${base}/`);
      expect(res.status).to.equal(200);
      const html = await res.text();
      expect(html).to.include('kitchen &lt;b&gt;pc&lt;/b&gt;');
      expect(html).to.not.include('<b>pc</b>');
      expect(html).to.include('cats.mp4').and.include('25.0%').and.include('LEECHER');
      expect((await fetch(`${base}/static/monitor.css`)).status).to.equal(200);
      expect((await fetch(`${base}/static/monitor.js`)).status).to.equal(200);
      expect((await fetch(`${base}/socket.io/socket.io.js`)).status).to.equal(200);
    });

    it('pushes the node table live over socket.io', async function () {
      await start();
      const feed = await liveClient(base);
      try {
        expect(feed.connect).to.match(/^40/);
        const initial = await feed.waitEvent('nodes');
        expect((initial as { nodes: unknown[] }).nodes).to.deep.equal([]);
        const seen = feed.events.length;
        await call(`${base}/api/nodes`, 'POST', body('live', { name: 'live-node' }));
        const [, update] = await waitFor(() => feed.events.slice(seen).find(([name]) => name === 'nodes'), 5000, 'the next nodes event');
        expect((update as { nodes: Array<{ name: string; role: string }> }).nodes.map((n) => [n.name, n.role])).to.deep.equal([['live-node', 'SEEDER']]);
      } finally {
        await feed.close();
      }
    });
  });
});

describe('bootstrap command', function () {
  const children = new Children();
  let dir = '';
  afterEach(async () => {
    await children.killAll();
    await cleanup(dir);
  });

  it('prints its URL and the node table, and saves the registry on SIGTERM', async function () {
    dir = await tempDir('shoal-bootstrap-cli-');
    const data = path.join(dir, 'data');
    const child = children.track(
      spawn(process.execPath, [path.join(ROOT, 'dist', 'bootstrap', 'main.js'), '--port', '0', '--host', '127.0.0.1', '--data-dir', data, '--heartbeat', '1'], {
        env: { ...process.env, SHOAL_LOG: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const lines: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const url = await waitFor(() => lines.map((l) => /listening on (http:\/\/\S+)/.exec(l)?.[1]).find(Boolean), 10_000, 'the URL');
    const r = await call(`${url}/api/nodes`, 'POST', body('cli', { name: 'console-node', files: [file('a', 1)] }));
    expect(r.status).to.equal(200);
    const short = idOf('cli').slice(0, 8);
    await waitFor(() => lines.some((l) => new RegExp(`^${short}\\s+console-node\\s+127\\.0\\.0\\.1:7000\\s+SEEDER\\s+1\\s+-$`).test(l)), 5000, `the table row (stdout: ${lines.join(' | ')})`);
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    const saved = JSON.parse(await fsp.readFile(path.join(data, 'nodes', `${idOf('cli')}.json`), 'utf8')) as { id: string; files: unknown[] };
    expect([saved.id, saved.files.length]).to.deep.equal([idOf('cli'), 1]);
  });

  it('refuses a bad option with one line and exit status 2', async function () {
    const child = children.track(spawn(process.execPath, [path.join(ROOT, 'dist', 'bootstrap', 'main.js'), '--port', '70000'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).to.equal(2);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.match(/--port must be a number from 0 to 65535/);
  });
});
