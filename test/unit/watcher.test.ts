/**
 * The watcher's own rules, with a real PeerRegistry and, in place of the TCP subscription,
 * streams the test opens, feeds and breaks by hand (test/e2e/network.test.ts runs the
 * watcher over real sockets).
 */
import { expect } from 'chai';
import { PeerRegistry, type KnownPeer } from '../../network/discovery/peer-registry.js';
import { MAX_SUBSCRIPTIONS, MAX_WATCH_PATTERNS, RETRY_FIRST_MS, RETRY_MAX_MS, Watcher, type WatcherInit } from '../../network/catalog/watcher.js';
import { PatternError } from '../../network/catalog/glob.js';
import type { SubscriptionHandlers } from '../../network/control/subscription.js';
import type { FileEntry } from '../../network/wire/control-codec.js';
import { captureLog, waitFor } from '../helpers.js';

/** One stream the watcher opened. */
interface Stream {
  addr: string;
  h: SubscriptionHandlers;
  open: boolean;
  openedAt: number;
}

/** Stands in for `subscribe`: records each stream; `close()` ends it as the real one does (closed(null) at once). */
function streams() {
  const all: Stream[] = [];
  const subscribe: NonNullable<WatcherInit['subscribe']> = (host, port, h) => {
    const s: Stream = { addr: `${host}:${port}`, h, open: true, openedAt: Date.now() };
    all.push(s);
    return {
      close: () => {
        if (!s.open) return;
        s.open = false;
        h.closed(null);
      },
    };
  };
  return {
    subscribe,
    all,
    /** Open streams, by address, sorted. */
    open: () => all.filter((s) => s.open).map((s) => s.addr).sort(),
    /** The latest stream to `addr`. */
    to: (addr: string) => all.filter((s) => s.addr === addr).at(-1)!,
    /** The link fails: the real subscription reports an error and is done. */
    fail(s: Stream) {
      s.open = false;
      s.h.closed(new Error('connection refused'));
    },
  };
}

const file = (name: string, complete?: boolean): FileEntry => ({ name, size: 10, infohash: 'ab'.repeat(20), ...(complete === undefined ? {} : { complete }) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('watcher', function () {
  let registry: PeerRegistry;
  let s: ReturnType<typeof streams>;
  let log: ReturnType<typeof captureLog>;
  let fetched: Array<{ name: string; from: string; pattern: string }>;
  let observed: string[];
  let watcher: Watcher;

  function make(over: Partial<WatcherInit> = {}): Watcher {
    watcher = new Watcher({
      registry,
      logger: log.logger,
      subscribe: s.subscribe,
      fetch: (f, from, pattern) => fetched.push({ name: f.name, from: `${from.host}:${from.port}`, pattern }),
      observe: (from, what, files) => observed.push(`${from.port} ${what} ${files.map((f) => f.name).join(',')}`),
      ...over,
    });
    return watcher;
  }

  /** The delays the watcher chose for its retries, from its debug log. */
  const retries = (): number[] => log.records.filter((r) => r.msg === 'watch stream closed; retrying').map((r) => r.retryMs as number);

  const peer = (n: number, instance = 'i1'): KnownPeer | null => registry.see('multicast', { id: `node-${n}`, host: '10.0.0.1', port: 9000 + n, instance });

  beforeEach(function () {
    registry = new PeerRegistry();
    s = streams();
    log = captureLog();
    fetched = [];
    observed = [];
  });
  afterEach(function () {
    watcher?.stop();
  });

  describe('streams follow the registry', function () {
    it('none before a pattern; then one to every known peer, and one to each new peer', function () {
      peer(1);
      peer(2);
      make();
      expect(s.all).to.deep.equal([]);
      watcher.add('*.mp3');
      expect(s.open()).to.deep.equal(['10.0.0.1:9001', '10.0.0.1:9002']);
      peer(3);
      expect(s.open()).to.deep.equal(['10.0.0.1:9001', '10.0.0.1:9002', '10.0.0.1:9003']);
      peer(3); // seen again: no second stream
      expect(s.all).to.have.length(3);
      expect(watcher.subscriptions).to.equal(3);
    });

    it('closes the stream of a peer that went down', function () {
      peer(1);
      peer(2);
      make().add('*');
      registry.lose('multicast', 'node-1', 'goodbye');
      expect(s.open()).to.deep.equal(['10.0.0.1:9002']);
      expect(watcher.subscriptions).to.equal(1);
    });

    it('reopens the stream of a peer that restarted', function () {
      peer(1);
      make().add('*');
      const first = s.to('10.0.0.1:9001');
      peer(1, 'i2'); // a new instance: peer-changed
      expect(first.open).to.equal(false);
      expect(s.all).to.have.length(2);
      expect(s.open()).to.deep.equal(['10.0.0.1:9001']);
    });

    it('a new pattern reopens every stream (the snapshots are read again for it); closing the old ones is no failure to retry', async function () {
      peer(1);
      peer(2);
      make({ retry: { firstMs: 10, maxMs: 40 } }).add('*.mp3');
      const before = [...s.all];
      watcher.add('*.flac');
      expect(before.every((x) => !x.open)).to.equal(true);
      expect(s.all).to.have.length(4);
      expect(s.open()).to.deep.equal(['10.0.0.1:9001', '10.0.0.1:9002']);
      await sleep(60);
      expect(s.all, 'no retry').to.have.length(4);
      expect(retries()).to.deep.equal([]);
      s.fail(s.to('10.0.0.1:9001'));
      expect(retries(), 'the back-off did not grow either').to.deep.equal([10]);
    });

    it(`holds at most maxSubscriptions streams (${MAX_SUBSCRIPTIONS} by default); one going frees a place`, function () {
      for (let n = 1; n <= 4; n++) peer(n);
      make({ maxSubscriptions: 2 }).add('*');
      expect(s.open()).to.have.length(2);
      peer(5);
      expect(s.open(), 'no room for a new peer').to.have.length(2);
      const watched = s.open()[0]!;
      registry.lose('multicast', `node-${Number(watched.split(':')[1]) - 9000}`, 'goodbye');
      peer(6);
      expect(s.open()).to.have.length(2);
      expect(s.open()).to.include('10.0.0.1:9006');
    });
  });

  describe('a broken stream is retried with back-off', function () {
    it(`by default the first retry waits ${RETRY_FIRST_MS} ms, doubling to at most ${RETRY_MAX_MS} ms`, async function () {
      expect([RETRY_FIRST_MS, RETRY_MAX_MS]).to.deep.equal([1000, 30_000]);
      peer(1);
      make().add('*');
      s.fail(s.to('10.0.0.1:9001'));
      expect(retries()).to.deep.equal([1000]);
      await sleep(50);
      expect(s.all, 'no retry before its time').to.have.length(1);
    });

    it('doubles after each failure up to the cap, waits that long, and starts over once a snapshot arrives', async function () {
      peer(1);
      make({ retry: { firstMs: 10, maxMs: 40 } }).add('*');
      for (let k = 1; k <= 5; k++) {
        const stream = s.to('10.0.0.1:9001');
        const failedAt = Date.now();
        s.fail(stream);
        expect(watcher.subscriptions).to.equal(0);
        const next = await waitFor(() => (s.all.length === k + 1 ? s.all[k] : undefined), 5000, `retry ${k}`);
        expect(next.openedAt - failedAt, 'not before its delay').to.be.at.least(retries()[k - 1]! - 2);
      }
      expect(retries()).to.deep.equal([10, 20, 40, 40, 40]);
      s.to('10.0.0.1:9001').h.snapshot([], undefined);
      s.fail(s.to('10.0.0.1:9001'));
      expect(retries().at(-1), 'a working stream resets the back-off').to.equal(10);
    });

    it('no retry once the peer went down, nor after the stream was closed on purpose', async function () {
      peer(1);
      peer(2);
      make({ retry: { firstMs: 20, maxMs: 100 } }).add('*');
      s.fail(s.to('10.0.0.1:9001'));
      registry.lose('multicast', 'node-1', 'goodbye');
      watcher.remove('*'); // closes 9002's stream without an error
      await sleep(80);
      expect(s.all).to.have.length(2);
      expect(retries()).to.deep.equal([20]);
    });
  });

  describe('what is offered to fetch', function () {
    it('complete files whose name matches a pattern, from the snapshot and from file-added events', function () {
      peer(1);
      make().add('*.mp3');
      watcher.add('talks/*');
      const h = s.to('10.0.0.1:9001').h;
      h.snapshot([file('a.mp3', true), file('b.txt'), file('c.mp3', false), file('d.MP3'), file('talks/e.txt')], undefined);
      h.event('file-added', file('f.mp3'));
      h.event('file-added', file('g.txt'));
      h.event('file-added', file('h.mp3', false));
      h.event('file-removed', file('a.mp3'));
      expect(fetched).to.deep.equal([
        { name: 'a.mp3', from: '10.0.0.1:9001', pattern: '*.mp3' },
        { name: 'd.MP3', from: '10.0.0.1:9001', pattern: '*.mp3' },
        { name: 'talks/e.txt', from: '10.0.0.1:9001', pattern: 'talks/*' },
        { name: 'f.mp3', from: '10.0.0.1:9001', pattern: '*.mp3' },
      ]);
      // observe hears everything, matching or not.
      expect(observed).to.deep.equal([
        '9001 snapshot a.mp3,b.txt,c.mp3,d.MP3,talks/e.txt',
        '9001 file-added f.mp3',
        '9001 file-added g.txt',
        '9001 file-added h.mp3',
        '9001 file-removed a.mp3',
      ]);
    });
  });

  describe('patterns', function () {
    it('are checked, kept once each, and bounded', function () {
      make();
      expect(() => watcher.add('')).to.throw(PatternError);
      expect(() => watcher.add('a\nb')).to.throw(PatternError);
      for (let i = 0; i < MAX_WATCH_PATTERNS; i++) watcher.add(`*.${i}`);
      watcher.add('*.0'); // already there: no error, no second copy
      expect(watcher.patterns()).to.have.length(MAX_WATCH_PATTERNS);
      expect(() => watcher.add('*.more')).to.throw(PatternError, `at most ${MAX_WATCH_PATTERNS} watch patterns`);
      expect(watcher.patterns()).to.not.include('*.more');
      watcher.patterns().pop(); // a copy
      expect(watcher.patterns()).to.have.length(MAX_WATCH_PATTERNS);
      expect(watcher.match('x.7')).to.equal('*.7');
      expect(watcher.match('x.none')).to.equal(undefined);
    });

    it('the last unwatch stops every stream, and new peers get none', function () {
      peer(1);
      peer(2);
      make().add('*.mp3');
      watcher.add('*.txt');
      expect(watcher.remove('*.nothing')).to.equal(false);
      expect(watcher.remove('*.mp3')).to.equal(true);
      expect(s.open(), 'one pattern left: the streams stay').to.have.length(2);
      expect(watcher.remove('*.txt')).to.equal(true);
      expect(s.open()).to.deep.equal([]);
      expect(watcher.subscriptions).to.equal(0);
      peer(3);
      expect(s.open()).to.deep.equal([]);
      // Watching again starts over, one stream per peer.
      watcher.add('*');
      expect(s.open()).to.deep.equal(['10.0.0.1:9001', '10.0.0.1:9002', '10.0.0.1:9003']);
    });
  });
});
