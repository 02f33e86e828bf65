/**
 * The node's bootstrap client against a real BootstrapServer on 127.0.0.1 (and a fake one
 * for servers that misbehave): the shared PeerDiscovery compliance suite, publishing,
 * search and reports, and what happens when the server goes away and comes back.
 */
import { expect } from 'chai';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { promises as fsp } from 'node:fs';
import { tempDir, cleanup, waitFor, startNode, captureLog, tempDirPerTest } from '../helpers.js';
import { discoveryCompliance } from '../discovery-compliance.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { BootstrapClient, type BootstrapClientInit, type PublishedState } from '../../network/discovery/bootstrap-client.js';
import type { DiscoveredPeer, LostReason } from '../../network/discovery/discovery.js';
import { MAX_ANSWER_BYTES } from '../../network/wire/bootstrap-api.js';
import v8 from 'node:v8';
import { named, idOf } from '../identities.js';
import vm from 'node:vm';

const hash = (n: number) => n.toString(16).padStart(40, '0');

interface Watched {
  client: BootstrapClient;
  peers: DiscoveredPeer[];
  lost: Array<[string, LostReason]>;
  state: PublishedState;
}

function client(url: string, name: string, extra: Partial<BootstrapClientInit> = {}, port = 7000): Watched {
  const state: PublishedState = { files: [], downloads: [] };
  const who = named(name);
  const self = { id: who.id, instance: `${name}-${Math.random().toString(36).slice(2, 8)}`, name: `name-${name}`, port };
  const c = new BootstrapClient({ url, self, signer: who, state: () => state, retryMs: 50, retryMaxMs: 200, ...extra });
  const w: Watched = { client: c, peers: [], lost: [], state };
  c.on('peer', (p) => w.peers.push(p));
  c.on('lost', (i, reason) => w.lost.push([i, reason]));
  return w;
}

discoveryCompliance(
  'BootstrapClient',
  async () => {
    const dir = await tempDir('shoal-bootstrap-compliance-');
    const server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: dir, heartbeatMs: 200, ttlMs: 600 });
    await server.start();
    const make = (name: string, port: number, instance: string) =>
      new BootstrapClient({ url: server.url, self: { id: idOf(name), instance, name, port }, signer: named(name), state: () => ({ files: [], downloads: [] }), retryMs: 50, retryMaxMs: 200 });
    return {
      a: make('node-a', 7001, 'a-1'),
      b: make('node-b', 7002, 'b-1'),
      aSelf: { id: idOf('node-a'), port: 7001 },
      bSelf: { id: idOf('node-b'), port: 7002 },
      restartB: () => make('node-b', 7002, 'b-2'),
      cleanup: async () => {
        await server.stop();
        await cleanup(dir);
      },
    };
  },
  { lostWithinMs: 1000 },
);

describe('BootstrapClient', function () {
  let server: BootstrapServer | null = null;
  const clients: BootstrapClient[] = [];
  const fakes: http.Server[] = [];
  const fx = tempDirPerTest('shoal-bootstrap-client-', async () => {
    await Promise.all(clients.splice(0).map((c) => c.stop()));
    await server?.stop();
    server = null;
    for (const s of fakes.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function startServer(init: ConstructorParameters<typeof BootstrapServer>[0] = {}): Promise<BootstrapServer> {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(fx.dir, 'data'), heartbeatMs: 200, ttlMs: 600, ...init });
    await server.start();
    return server;
  }
  const track = (w: Watched): Watched => (clients.push(w.client), w);

  /** A server, and clients a (port 7000) and b (port 7002) registered with it; `aInit` goes to a. */
  async function serverAndTwoClients(aInit: Partial<BootstrapClientInit> = {}): Promise<{ a: Watched; b: Watched }> {
    await startServer();
    const a = track(client(server!.url, 'a', aInit));
    const b = track(client(server!.url, 'b', {}, 7002));
    await a.client.start();
    await b.client.start();
    return { a, b };
  }

  /** A server answering every request with `answer(req)`; records the bodies it got. */
  async function fakeServer(answer: (req: http.IncomingMessage, body: string) => { status: number; body: string }): Promise<{ url: string; bodies: Array<{ method: string; url: string; body: string }> }> {
    const bodies: Array<{ method: string; url: string; body: string }> = [];
    const s = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        bodies.push({ method: req.method ?? '', url: req.url ?? '', body });
        const a = answer(req, body);
        res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    fakes.push(s);
    return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, bodies };
  }

  it('two clients on one server see each other with name and instance, and stop unregisters', async function () {
    const { a, b } = await serverAndTwoClients();
    expect(a.client.health().state).to.equal('ok');
    const seen = await waitFor(() => a.peers.find((p) => p.id === idOf('b')), 3000, 'a to see b');
    expect(seen).to.deep.include({ host: '127.0.0.1', port: 7002, name: 'name-b' });
    expect(seen.instance).to.be.a('string');
    await waitFor(() => b.peers.find((p) => p.id === idOf('a')), 3000, 'b to see a');
    expect(a.peers.some((p) => p.id === idOf('a'))).to.equal(false);
    expect(a.client.trackerUrl).to.equal(`${server!.url}/announce`);
    await b.client.stop();
    expect(server!.registry.get(idOf('b')), 'unregistered at stop').to.equal(undefined);
    await waitFor(() => a.lost.find(([id]) => id === idOf('b')), 2000, 'a to lose b');
    expect(a.lost).to.deep.equal([[idOf('b'), 'expired']]);
  });

  it('publishes files and downloads, early on publishSoon(), and searches the index', async function () {
    await startServer({ heartbeatMs: 10_000, ttlMs: 30_000 });
    const a = track(client(server!.url, 'a', { publishMinIntervalMs: 50 }));
    a.state.files.push({ name: 'Ocean Waves.flac', size: 1234, infohash: hash(1) });
    await a.client.start();
    expect(server!.registry.get(idOf('a'))!.files).to.have.length(1);
    a.state.files.push({ name: 'forest.flac', size: 99, infohash: hash(2) });
    a.state.downloads.push({ infohash: hash(3), name: 'rain.flac', progress: 0.5 });
    a.client.publishSoon();
    await waitFor(() => server!.registry.get(idOf('a'))!.files.length === 2, 2000, 'the new file to reach the server long before the next heartbeat');
    expect(server!.registry.view(server!.registry.get(idOf('a'))!).role).to.equal('LEECHER');
    const hits = await a.client.search('WAVES');
    expect(hits).to.deep.equal([{ name: 'Ocean Waves.flac', size: 1234, infohash: hash(1), nodes: [{ id: idOf('a'), host: '127.0.0.1', port: 7000 }] }]);
  });

  it('sends its files only when they changed since the last accepted publish', async function () {
    const answer = { self: { id: 'a', host: '127.0.0.1', port: 7000 }, nodes: [], truncated: false, heartbeatMs: 100, ttlMs: 300 };
    const fake = await fakeServer(() => ({ status: 200, body: JSON.stringify(answer) }));
    const a = track(client(fake.url, 'a'));
    a.state.files.push({ name: 'x', size: 1, infohash: hash(1) });
    await a.client.start();
    await waitFor(() => fake.bodies.length >= 3, 3000, 'two heartbeats');
    a.state.files.push({ name: 'y', size: 2, infohash: hash(2) });
    await waitFor(() => fake.bodies.length >= 6, 3000, 'more heartbeats');
    const sent = fake.bodies.map((b) => [b.method, (JSON.parse(b.body) as { files?: unknown[] }).files?.length]);
    expect(sent[0]).to.deep.equal(['POST', 1]);
    expect(sent[1]).to.deep.equal(['PUT', undefined]);
    const withFiles = sent.slice(1).filter(([, n]) => n !== undefined);
    expect(withFiles, 'the changed list, once').to.deep.equal([['PUT', 2]]);
  });

  it('reports an unreachable node, once the server has told it of that node', async function () {
    const { a } = await serverAndTwoClients();
    // The server takes a report only from a node it has told of the target (it could have tried).
    await waitFor(() => a.peers.some((p) => p.id === idOf('b')), 3000, 'a to be told of b');
    expect(await a.client.report(idOf('b'))).to.equal(true);
    expect(server!.registry.get(idOf('b'))).to.equal(undefined);
    expect(await a.client.report(idOf('b')), 'at most once a minute per node').to.equal(false);
  });

  it('server gone: health failing with one warning; back on the same port and data dir: heartbeats again by itself', async function () {
    const { logger, records, warnings } = captureLog();
    const { a } = await serverAndTwoClients({ logger, timeoutMs: 500 });
    const port = server!.port;
    await waitFor(() => a.peers.some((p) => p.id === idOf('b')), 2000, 'a to see b');
    await server!.stop();
    await waitFor(() => a.client.health().state === 'failing', 3000, 'health failing');
    expect(a.client.health().detail).to.match(/^bootstrap server http:\/\/127\.0\.0\.1:\d+ unreachable: ECONNREFUSED$/);
    await new Promise((r) => setTimeout(r, 800)); // several retries
    expect(warnings()).to.deep.equal(['bootstrap server unavailable; working on multicast and retrying']);
    // Gone for longer than the TTL: nobody vouches for b any more.
    await waitFor(() => a.lost.find(([id]) => id === idOf('b')), 3000, 'b to be lost');
    expect(a.lost.find(([id]) => id === idOf('b'))![1]).to.equal('gone');
    server = new BootstrapServer({ port, host: '127.0.0.1', dataDir: path.join(fx.dir, 'data'), heartbeatMs: 200, ttlMs: 600 });
    await server.start();
    await waitFor(() => a.client.health().state === 'ok', 3000, 'health ok again');
    expect(records.some((r) => r.msg === 'bootstrap server reachable again')).to.equal(true);
    expect(server.registry.get(idOf('a'))).to.not.equal(undefined);
    await waitFor(() => a.peers.filter((p) => p.id === idOf('b')).length > 1 && a.client.health().state === 'ok', 3000, 'b seen again');
  });

  it('re-registers by itself when a restarted server has forgotten it', async function () {
    await startServer({ dataDir: undefined });
    const port = server!.port;
    const a = track(client(server!.url, 'a'));
    a.state.files.push({ name: 'kept.txt', size: 5, infohash: hash(7) });
    await a.client.start();
    await server!.stop();
    server = new BootstrapServer({ port, host: '127.0.0.1', heartbeatMs: 200, ttlMs: 600 });
    await server.start();
    const record = await waitFor(() => server!.registry.get(idOf('a')), 3000, 'a to register again');
    expect(record.files.map((f) => f.name), 'with its files').to.deep.equal(['kept.txt']);
    expect(a.client.health().state).to.equal('ok');
  });

  it('warns about a server that answers nonsense, and never crashes or lists itself', async function () {
    const { logger, warnings } = captureLog();
    const liar = await fakeServer(() => ({ status: 200, body: JSON.stringify({ self: 5, nodes: 'everyone' }) }));
    const a = track(client(liar.url, 'a', { logger }));
    await a.client.start();
    expect(a.client.health().state).to.equal('failing');
    expect(a.client.health().detail).to.match(/not a Shoal bootstrap answer/);
    expect(warnings()).to.have.length(1);
    await a.client.stop();

    const html = await fakeServer(() => ({ status: 200, body: '<html>hello</html>' }));
    const b = track(client(html.url, 'b'));
    await b.client.start();
    expect(b.client.health().detail).to.match(/not JSON/);
    await b.client.stop();

    // A server that lists us to ourselves: never our own id.
    const mirror = await fakeServer(() => ({
      status: 200,
      body: JSON.stringify({ self: { id: 'c', host: '127.0.0.1', port: 7000 }, nodes: [{ id: idOf('c'), instance: 'x', name: 'me', host: '127.0.0.1', port: 7000 }], heartbeatMs: 100, ttlMs: 300 }),
    }));
    const c = track(client(mirror.url, 'c'));
    await c.client.start();
    expect(c.client.health().state).to.equal('ok');
    expect(c.peers).to.deep.equal([]);
  });

  it('gives up on an answer larger than MAX_ANSWER_BYTES, declared or streamed, without waiting for its end', async function () {
    this.timeout(90_000);
    // Both answers stay open: only the cap can end the wait before the client's 30 s timeout.
    const declared = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(MAX_ANSWER_BYTES + 1) });
      res.write('{"self":');
    });
    const streamed = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(Buffer.alloc(MAX_ANSWER_BYTES + 64 * 1024, 0x20));
    });
    for (const s of [declared, streamed]) {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      fakes.push(s);
      const w = track(client(`http://127.0.0.1:${(s.address() as AddressInfo).port}`, 'big', { timeoutMs: 30_000, stopTimeoutMs: 100 }));
      const started = Date.now();
      await w.client.start();
      expect(w.client.health().detail).to.equal(`bootstrap answer larger than ${MAX_ANSWER_BYTES} bytes`);
      expect(Date.now() - started).to.be.below(10_000);
      await w.client.stop();
    }
  });

  it('gives up on a server that stalls in the middle of its answer, even when garbage is collected meanwhile', async function () {
    this.timeout(30_000);
    // The timeout must be held by something that outlives a GC: a weakly held timer signal
    // lets the wait hang forever once nothing else refers to it.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const staller = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"self":');
    });
    await new Promise<void>((r) => staller.listen(0, '127.0.0.1', r));
    fakes.push(staller);
    const collect = setInterval(gc, 100);
    try {
      const w = track(client(`http://127.0.0.1:${(staller.address() as AddressInfo).port}`, 'stall', { timeoutMs: 1000, stopTimeoutMs: 100 }));
      const started = Date.now();
      await w.client.start();
      expect(w.client.health().state).to.equal('failing');
      expect(w.client.health().detail).to.match(/did not answer within 1000 ms/);
      expect(Date.now() - started).to.be.below(10_000);
      await w.client.stop();
    } finally {
      clearInterval(collect);
    }
  });

  it('refuses an answer whose heartbeat interval is out of bounds, so a lying server cannot make it hammer', async function () {
    for (const heartbeatMs of [99, 3_600_001]) {
      const liar = await fakeServer(() => ({ status: 200, body: JSON.stringify({ self: { id: 'h', host: '127.0.0.1', port: 7000 }, nodes: [], heartbeatMs, ttlMs: 300 }) }));
      const w = track(client(liar.url, 'h'));
      await w.client.start();
      expect(w.client.health().state, String(heartbeatMs)).to.equal('failing');
      expect(w.client.health().detail).to.match(/not a Shoal bootstrap answer: field "heartbeatMs"/);
      await w.client.stop();
    }
  });

  it('two Shoal nodes started with a bootstrap URL find each other and each other’s files through it', async function () {
    await startServer();
    const n1 = await startNode(path.join(fx.dir, 'n1'), { bootstrap: server!.url, name: 'first' });
    const n2 = await startNode(path.join(fx.dir, 'n2'), { bootstrap: server!.url, name: 'second' });
    try {
      await fsp.writeFile(path.join(n1.sharedDir, 'Lighthouse Map.pdf'), 'a map of the coast');
      await n1.rescan();
      await waitFor(() => n2.knownPeers().find((p) => p.id === n1.id && p.sources.has('bootstrap')), 5000, 'n2 to know n1 through the bootstrap');
      await waitFor(() => server!.registry.search('lighthouse').length === 1, 5000, 'n1 to publish its new file');
      const results = await n2.search('LIGHTHOUSE');
      expect(results.map((r) => r.name)).to.deep.equal(['Lighthouse Map.pdf']);
      expect(results[0]!.via).to.include('bootstrap');
    } finally {
      await n2.stop();
      await n1.stop();
    }
    await waitFor(() => server!.registry.size === 0, 2000, 'both nodes to unregister at stop');
  });

  it('says why the server refuses it', async function () {
    await startServer();
    const a = track(client(server!.url, 'a', {}, 0));
    await a.client.start();
    expect(a.client.health()).to.deep.include({ state: 'failing' });
    expect(a.client.health().detail).to.equal('bootstrap server refused POST /api/nodes: HTTP 400 field "port": must be 1..65535');
  });
});
