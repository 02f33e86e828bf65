import { expect } from 'chai';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import bencode from 'bencode';
import { pino, type DestinationStream } from 'pino';
import { startOpentracker, findExecutable, type Opentracker } from '../opentracker.js';
import type { Logger } from '../../network/util/log.js';
import {
  announce, TrackerClient, TrackerError, MAX_TRACKER_RESPONSE, type AnnounceRequest, type AnnounceResult,
} from '../../network/tracker/announce.js';
import { rejection } from '../helpers.js';
import { TimeoutError } from '../../network/util/errors.js';

/** 20 bytes that are not valid UTF-8 and include every character a query string cares about. */
const INFO_HASH = Buffer.from([0xff, 0x80, 0x00, 0x26, 0x3d, 0x25, 0x20, 0x2b, 0x3f, 0x23, 0xc3, 0x28, 0x41, 0x7e, 0x2e, 0x2d, 0x5f, 0x2f, 0xfe, 0x01]);
const peerIdA = Buffer.from('-SH0100-aaaaaaaaaaaa');
const peerIdB = Buffer.from('-SH0100-bbbbbbbbbbbb');

function base(url: string, peerId: Buffer, port: number, extra: Partial<AnnounceRequest> = {}): AnnounceRequest {
  return { url, infoHash: INFO_HASH, peerId, port, uploaded: 0, downloaded: 0, left: 1000, timeoutMs: 3000, ...extra };
}

/** Percent-decode to raw bytes (what a tracker does with info_hash), not to UTF-8 text. */
function decodeBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i));
  }
  return Buffer.from(out);
}

function rawQuery(url: string): Map<string, string> {
  const q = url.slice(url.indexOf('?') + 1);
  return new Map(q.split('&').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]));
}

function compact(...peers: Array<[string, number]>): Buffer {
  return Buffer.concat(peers.map(([ip, port]) => Buffer.from([...ip.split('.').map(Number), port >> 8, port & 0xff])));
}

async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A pino logger whose records land in an array. */
function captureLogger(): { logger: Logger; records: Array<{ level: number; msg: string; err?: string }> } {
  const records: Array<{ level: number; msg: string; err?: string }> = [];
  const stream: DestinationStream = { write: (s: string) => void records.push(JSON.parse(s)) };
  const logger: Logger = pino({ level: 'debug' }, stream);
  return { logger, records };
}

// ---- a tiny local tracker ----------------------------------------------------------------

interface FakeTracker {
  url: string;
  requests: string[];
  /** When each request arrived (ms since epoch). */
  times: number[];
  close(): Promise<void>;
}

async function fakeTracker(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<FakeTracker> {
  const requests: string[] = [];
  const times: number[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    times.push(Date.now());
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/announce`,
    requests,
    times,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function bencoded(res: http.ServerResponse, value: unknown, status = 200): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(Buffer.from(bencode.encode(value)));
}

describe('tracker: announce against a local HTTP server', function () {
  this.timeout(15_000);
  let tracker: FakeTracker | null = null;
  afterEach(async () => {
    await tracker?.close();
    tracker = null;
  });

  it('percent-encodes info_hash and peer_id byte by byte and asks for compact peers', async () => {
    tracker = await fakeTracker((_req, res) => bencoded(res, { interval: 60, peers: Buffer.alloc(0) }));
    await announce(base(tracker.url, peerIdA, 6881, { event: 'started', uploaded: 5, downloaded: 7, left: 9, numwant: 30 }));
    const q = rawQuery(tracker.requests[0]!);
    expect(decodeBytes(q.get('info_hash')!).equals(INFO_HASH)).to.equal(true);
    expect(q.get('info_hash')).to.match(/^[A-Za-z0-9%._~-]+$/);
    expect(decodeBytes(q.get('peer_id')!).equals(peerIdA)).to.equal(true);
    expect(Object.fromEntries([...q].filter(([k]) => !['info_hash', 'peer_id'].includes(k)))).to.deep.equal({
      port: '6881', uploaded: '5', downloaded: '7', left: '9', compact: '1', numwant: '30', event: 'started',
    });
    expect(tracker.requests[0]!.startsWith('/announce?')).to.equal(true);
  });

  it('rejects with TrackerError carrying the failure reason', async () => {
    tracker = await fakeTracker((_req, res) => bencoded(res, { 'failure reason': 'torrent not registered' }));
    const err = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(err).to.be.instanceOf(TrackerError);
    expect(err.message).to.equal('torrent not registered');
  });

  it('reports the failure reason even with an error status, and the status without one', async () => {
    let status = 403;
    tracker = await fakeTracker((_req, res) => (status === 403 ? bencoded(res, { 'failure reason': 'banned' }, 403) : (res.writeHead(status), res.end())));
    expect((await rejection(announce(base(tracker.url, peerIdA, 1)))).message).to.equal('banned');
    status = 500;
    const err = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(err).to.be.instanceOf(TrackerError);
    expect(err.message).to.match(/HTTP 500/);
  });

  it('rejects a garbage body', async () => {
    tracker = await fakeTracker((_req, res) => res.end('<html>hello</html>'));
    const err = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(err).to.be.instanceOf(TrackerError);
    expect(err.message).to.match(/not a bencoded dictionary/);
  });

  it('rejects an oversized body, declared or streamed', async () => {
    const big = Buffer.alloc(MAX_TRACKER_RESPONSE + 1, 0x61);
    let declared = true;
    tracker = await fakeTracker((_req, res) => {
      if (declared) res.writeHead(200, { 'content-length': big.length });
      res.end(big);
    });
    expect((await rejection(announce(base(tracker.url, peerIdA, 1)))).message).to.match(/larger than/);
    declared = false; // chunked: the cap has to be enforced while reading
    const err = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(err).to.be.instanceOf(TrackerError);
    expect(err.message).to.match(/larger than/);
  });

  it('times out a tracker that never answers, with TimeoutError', async () => {
    tracker = await fakeTracker(() => {});
    const started = Date.now();
    const err = await rejection(announce(base(tracker.url, peerIdA, 1, { timeoutMs: 200 })));
    expect(err).to.be.instanceOf(TimeoutError);
    expect(err.name).to.equal('TimeoutError');
    expect(Date.now() - started).to.be.within(150, 3000);
  });

  it('times out a tracker that stalls half way through its body', async () => {
    tracker = await fakeTracker((_req, res) => {
      res.writeHead(200);
      res.write('d8:interval');
    });
    expect((await rejection(announce(base(tracker.url, peerIdA, 1, { timeoutMs: 200 })))).name).to.equal('TimeoutError');
  });

  it('rejects when the tracker closes before or in the middle of its answer', async () => {
    let midway = false;
    tracker = await fakeTracker((req, res) => {
      if (!midway) return req.socket.destroy();
      res.writeHead(200, { 'content-length': 100 });
      res.write('d8:interval', () => req.socket.destroy());
    });
    const before = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(before.message).to.match(/socket hang up|closed the connection/);
    midway = true;
    const during = await rejection(announce(base(tracker.url, peerIdA, 1)));
    expect(during.message).to.match(/aborted|closed the connection/);
  });

  it('can be aborted', async () => {
    tracker = await fakeTracker(() => {});
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    expect((await rejection(announce(base(tracker.url, peerIdA, 1, { signal: ac.signal })))).name).to.equal('AbortError');
  });

  it('refuses a non-HTTP tracker URL', async () => {
    expect(await rejection(announce(base('udp://127.0.0.1:1/announce', peerIdA, 1)))).to.be.instanceOf(TrackerError);
  });
});

describe('tracker: TrackerClient', function () {
  this.timeout(15_000);
  let tracker: FakeTracker | null = null;
  let client: TrackerClient | null = null;
  afterEach(async () => {
    await client?.stop();
    client = null;
    await tracker?.close();
    tracker = null;
  });

  const events = (t: FakeTracker) => t.requests.map((u) => rawQuery(u).get('event') ?? '');

  it('announces started, re-announces on the interval, sends completed once and stopped on stop', async () => {
    // The tracker lists us (port 6881 here) too; that entry must not come out as a peer.
    tracker = await fakeTracker((_req, res) => bencoded(res, { interval: 1, peers: compact(['127.0.0.1', 6881], ['127.0.0.1', 7001]) }));
    let left = 500;
    client = new TrackerClient({
      urls: [tracker.url, tracker.url, 'udp://ignored.example:1'],
      infoHash: INFO_HASH,
      peerId: peerIdA,
      port: 6881,
      stats: () => ({ uploaded: 1, downloaded: 2, left }),
      minIntervalMs: 100,
    });
    const peers: unknown[] = [];
    client.on('peer', (p) => peers.push(p));
    client.start();
    client.start();
    await waitFor('the re-announce', () => tracker!.requests.length >= 2);
    expect(events(tracker).slice(0, 2)).to.deep.equal(['started', '']);
    expect(peers[0]).to.deep.equal({ host: '127.0.0.1', port: 7001, source: 'tracker' });
    expect(peers).not.to.deep.include({ host: '127.0.0.1', port: 6881, source: 'tracker' });
    left = 0;
    client.complete();
    client.complete();
    await waitFor('completed', () => events(tracker!).includes('completed'));
    expect(rawQuery(tracker.requests.at(-1)!).get('left')).to.equal('0');
    const p = client.stop();
    expect(client.stop()).to.equal(p);
    await p;
    expect(events(tracker).filter((e) => e === 'completed')).to.have.length(1);
    expect(events(tracker).filter((e) => e === 'started')).to.have.length(1);
    expect(events(tracker).at(-1)).to.equal('stopped');
    const count = tracker.requests.length;
    client.start(); // a stopped client stays stopped
    await new Promise((r) => setTimeout(r, 1200));
    expect(tracker.requests.length).to.equal(count);
  });

  it('retries a failing tracker with back-off, still as started, warning once per distinct failure', async () => {
    let reply: 'fail1' | 'fail2' | 'ok' = 'fail1';
    tracker = await fakeTracker((_req, res) => {
      if (reply === 'ok') bencoded(res, { interval: 3600, peers: Buffer.alloc(0) });
      else bencoded(res, { 'failure reason': reply === 'fail1' ? 'go away' : 'still no' });
    });
    const { logger, records } = captureLogger();
    client = new TrackerClient({
      urls: [tracker.url],
      infoHash: INFO_HASH,
      peerId: peerIdA,
      port: 6881,
      stats: () => ({ uploaded: 0, downloaded: 0, left: 1 }),
      logger,
      retryMs: 20,
      retryMaxMs: 80,
    });
    const failures: string[] = [];
    client.on('failure', (f) => failures.push(f.error.message));
    client.start();
    await waitFor('four failures', () => failures.length >= 4);
    reply = 'fail2';
    await waitFor('the second kind of failure', () => failures.includes('still no') && failures.length >= 7);
    reply = 'ok';
    await waitFor('recovery', () => records.some((r) => r.msg === 'tracker reachable again'));
    const warns = records.filter((r) => r.level === 40);
    expect(warns.map((r) => r.err)).to.deep.equal(['go away', 'still no']);
    expect(new Set(events(tracker))).to.deep.equal(new Set(['started']));
    // Back-off: 20, 40, 80 ms, then capped at 80 (timers only ever fire late, never early).
    const gaps = tracker.times.slice(1, 4).map((t, i) => t - tracker!.times[i]!);
    expect(gaps[0]).to.be.at.least(18);
    expect(gaps[1]).to.be.at.least(38);
    expect(gaps[2]).to.be.at.least(78);
  });

  it('bounds stop() when the tracker does not answer the stopped announce', async () => {
    let answer = true;
    tracker = await fakeTracker((_req, res) => (answer ? bencoded(res, { interval: 3600, peers: Buffer.alloc(0) }) : undefined));
    client = new TrackerClient({
      urls: [tracker.url],
      infoHash: INFO_HASH,
      peerId: peerIdA,
      port: 6881,
      stats: () => ({ uploaded: 0, downloaded: 0, left: 1 }),
      stopTimeoutMs: 200,
    });
    const announced = once(client, 'announce');
    client.start();
    await announced;
    answer = false;
    const started = Date.now();
    await client.stop();
    expect(Date.now() - started).to.be.below(2000);
    expect(events(tracker).at(-1)).to.equal('stopped');
  });

  it('stop() before start() sends nothing', async () => {
    tracker = await fakeTracker((_req, res) => bencoded(res, { interval: 60, peers: Buffer.alloc(0) }));
    client = new TrackerClient({ urls: [tracker.url], infoHash: INFO_HASH, peerId: peerIdA, port: 1, stats: () => ({ uploaded: 0, downloaded: 0, left: 0 }) });
    await client.stop();
    client.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.requests).to.deep.equal([]);
  });
});

// ---- the real opentracker ------------------------------------------------------------------

describe('tracker: against a real opentracker', function () {
  this.timeout(30_000);
  let tracker: Opentracker | null = null;
  let url = '';

  before(async function () {
    if (!findExecutable('opentracker')) {
      console.log('    opentracker is not installed (apt-get install opentracker): skipping the real-tracker tests');
      this.skip();
    }
    tracker = await startOpentracker([INFO_HASH.toString('hex')]);
    url = tracker.url;
    // Ready means it answers an announce for our infohash (the whitelist may load a moment later).
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await announce(base(url, Buffer.from('-SH0100-probeprobepr'), 1, { timeoutMs: 500 }));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`opentracker never became ready: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    await announce(base(url, Buffer.from('-SH0100-probeprobepr'), 1, { event: 'stopped' }));
  });

  after(async () => {
    await tracker?.stop();
  });

  const has = (r: AnnounceResult, port: number) => r.peers.some((p) => p.host === '127.0.0.1' && p.port === port);

  it('two peers of one torrent see each other in the compact list; stopped removes one', async () => {
    const a = await announce(base(url, peerIdA, 6001, { event: 'started' }));
    expect(a.interval).to.be.greaterThan(0);
    const b = await announce(base(url, peerIdB, 6002, { event: 'started' }));
    expect(has(b, 6001), 'B sees A').to.equal(true);
    const a2 = await announce(base(url, peerIdA, 6001));
    expect(has(a2, 6002), 'A sees B').to.equal(true);
    expect((a2.complete ?? 0) + (a2.incomplete ?? 0)).to.equal(2);
    await announce(base(url, peerIdB, 6002, { event: 'stopped' }));
    const a3 = await announce(base(url, peerIdA, 6001));
    expect(has(a3, 6002), 'B is gone').to.equal(false);
    await announce(base(url, peerIdA, 6001, { event: 'stopped' }));
  });

  it('refuses an infohash it does not track, as a TrackerError', async () => {
    const err = await rejection(announce({ ...base(url, peerIdA, 6001), infoHash: Buffer.alloc(20, 7) }));
    expect(err).to.be.instanceOf(TrackerError);
  });

  it('TrackerClients find each other through it and leave on stop', async () => {
    const stats = () => ({ uploaded: 0, downloaded: 0, left: 1000 });
    const a = new TrackerClient({ urls: [url], infoHash: INFO_HASH, peerId: peerIdA, port: 7001, stats });
    const b = new TrackerClient({ urls: [url], infoHash: INFO_HASH, peerId: peerIdB, port: 7002, stats });
    try {
      const aDone = once(a, 'announce');
      a.start();
      await aDone;
      const seenByB: Array<{ host: string; port: number; source: string }> = [];
      b.on('peer', (p) => seenByB.push(p));
      const bDone = once(b, 'announce');
      b.start();
      await bDone;
      expect(seenByB).to.deep.include({ host: '127.0.0.1', port: 7001, source: 'tracker' });
      await b.stop();
      const probe = await announce(base(url, Buffer.from('-SH0100-cccccccccccc'), 7003));
      expect(has(probe, 7001)).to.equal(true);
      expect(has(probe, 7002)).to.equal(false);
      await announce(base(url, Buffer.from('-SH0100-cccccccccccc'), 7003, { event: 'stopped' }));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
