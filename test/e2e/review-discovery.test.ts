/**
 * Limits of the discovery side that no other test reached: the peer registry's share of
 * second-hand peers as sources come and go, its bound on departed ids, the tracker's
 * swarm store (random answers, per-torrent, per-address and torrent bounds), the
 * bootstrap registry's freshest-first answers, and a subscriber that stops reading.
 */
import { expect } from 'chai';
import net from 'node:net';
import { pino } from 'pino';
import type { Logger } from '../../network/util/log.js';
import { PeerRegistry, UNREACHABLE_AFTER } from '../../network/discovery/peer-registry.js';
import { MemorySwarmStore, TrackerRequestError, type AnnounceParams } from '../../bootstrap/tracker.js';
import { NodeRegistry } from '../../bootstrap/registry.js';
import { serveControl, MAX_SUBSCRIBER_BACKLOG, type Subscriber } from '../../network/control/control-server.js';
import { encodeMessage, type ControlResponse } from '../../network/wire/control-codec.js';
import { waitFor } from '../helpers.js';

function captureLog(): { logger: Logger; warnings(): string[] } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

describe('review: peer registry bounds', () => {
  it('the second-hand share frees up whichever way a learnt peer goes', () => {
    const r = new PeerRegistry({ maxLearnt: 2, learntTtlMs: 1000 });
    const learn = (i: number) => r.see('peer', { id: `p${i}`, host: '10.3.0.1', port: 2000 + i });
    expect(learn(0)).to.not.equal(null);
    expect(learn(1)).to.not.equal(null);
    expect(learn(2), 'share full').to.equal(null);

    r.remove('10.3.0.1', 2000); // by hand
    expect(learn(2)).to.not.equal(null);
    expect(learn(3)).to.equal(null);

    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('10.3.0.1', 2001, false); // never answers
    expect(r.get('p1')).to.equal(undefined);
    expect(learn(3)).to.not.equal(null);
    expect(learn(4)).to.equal(null);

    // A first-hand source saw it leave: its hearsay goes, and so does its place in the share.
    r.see('multicast', { id: 'p2', host: '10.3.0.1', port: 2002 });
    r.lose('multicast', 'p2', 'goodbye');
    expect(r.get('p2')).to.equal(undefined);
    expect(learn(4)).to.not.equal(null);
    expect(learn(5)).to.equal(null);

    // Confirmed first-hand, then the hearsay fades: still listed, but no longer in the share.
    r.see('multicast', { id: 'p3', host: '10.3.0.1', port: 2003 });
    r.expire(Date.now() + 5000);
    expect(r.get('p3')!.sources).to.deep.equal(new Set(['multicast']));
    expect(r.list('peer')).to.deep.equal([]);
    expect(learn(5)).to.not.equal(null);
    expect(learn(6)).to.not.equal(null);
    expect(learn(7)).to.equal(null);
    expect(r.see('peer', { id: 'p3', host: '10.3.0.1', port: 2003 }), 'hearsay of a listed peer always counts').to.not.equal(null);
    expect(r.list('peer')).to.have.length(3);
  });

  it('remembers at most maxPeers departed ids, forgetting the oldest departure first', () => {
    const r = new PeerRegistry({ maxPeers: 3, learntTtlMs: 60_000 });
    const depart = (id: string) => {
      r.see('bootstrap', { id, host: '10.4.0.1', port: 3000 });
      r.lose('bootstrap', id, 'expired');
    };
    for (const id of ['d0', 'd1', 'd2', 'd3']) depart(id);
    depart('d3'); // leaving again moves it last without pushing another one out
    const hearsay = (id: string) => r.see('peer', { id, host: '10.4.0.2', port: 3000 });
    expect(hearsay('d1'), 'still remembered').to.equal(null);
    expect(hearsay('d2')).to.equal(null);
    expect(hearsay('d3')).to.equal(null);
    expect(hearsay('d0'), 'the oldest departure was forgotten').to.not.equal(null);
  });
});

describe('review: tracker swarm store', () => {
  const HASH = 'cd'.repeat(20);
  const announce = (n: number, extra: Partial<AnnounceParams> = {}): AnnounceParams => ({
    infoHash: HASH, peerId: Buffer.alloc(20, n), host: `10.5.${n >> 8}.${n & 255}`, port: 6881, source: `10.5.${n >> 8}.${n & 255}`,
    uploaded: 0, downloaded: 0, left: 1, event: '', numwant: 50, compact: true, noPeerId: false, ...extra,
  });
  const far = Date.now() + 3_600_000;

  it('answers from a random place in a large swarm, never a stopped peer, never the asker', () => {
    const store = new MemorySwarmStore();
    for (let n = 0; n < 1000; n++) store.announce(announce(n), far);
    for (let n = 0; n < 1000; n += 2) store.announce(announce(n, { event: 'stopped' }), far);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const got = store.peers(HASH, 50, '10.5.0.1|6881', false, Date.now());
      expect(got).to.have.length(50);
      expect(new Set(got.map((p) => p.key)).size, 'no peer twice').to.equal(50);
      for (const p of got) {
        expect(Number(p.host.split('.')[3]) % 2, `${p.host} stopped`).to.equal(1);
        expect(p.key).to.not.equal('10.5.0.1|6881');
        seen.add(p.key);
      }
    }
    expect(seen.size, 'over many answers, nearly every live peer comes up').to.be.above(450);
    expect(store.counts(HASH)).to.deep.equal({ complete: 0, incomplete: 500, downloaded: 0 });
  });

  it('keeps each torrent to its peer bound by dropping the stalest, and refuses past the address and torrent bounds', () => {
    const store = new MemorySwarmStore({ maxPeersPerTorrent: 3, maxPeersPerAddress: 4, maxTorrents: 2 });
    for (let n = 0; n < 3; n++) store.announce(announce(n), far);
    store.announce(announce(0), far); // 0 announces again: 1 is now the stalest
    store.announce(announce(3, { left: 0 }), far);
    expect(store.peers(HASH, 10, '', false, Date.now()).map((p) => p.host).sort()).to.deep.equal(['10.5.0.0', '10.5.0.2', '10.5.0.3']);
    expect(store.counts(HASH)).to.include({ complete: 1, incomplete: 2 });

    const fromOne = (port: number, infoHash = HASH) => announce(9, { port, infoHash });
    for (let port = 1; port <= 4; port++) store.announce(fromOne(port, 'ef'.repeat(20)), far);
    expect(() => store.announce(fromOne(5, 'ef'.repeat(20)), far)).to.throw(TrackerRequestError, /too many announces from this address/);
    expect(() => store.announce(announce(7, { infoHash: '01'.repeat(20) }), far)).to.throw(TrackerRequestError, /as many torrents/);
    expect(store.torrents).to.equal(2);
  });
});

describe('review: bootstrap registry answers', () => {
  it('lists the freshest first without sorting, heartbeats move a node up, and the answer stops at its limit', async () => {
    let clock = 1_000_000;
    const r = new NodeRegistry({ now: () => clock });
    for (const id of ['a', 'b', 'c', 'd']) {
      clock += 10;
      r.register({ id, instance: `${id}-1`, name: id, port: 6000, files: [], downloads: [] }, '10.6.0.1');
    }
    clock += 10;
    r.heartbeat('a', { instance: 'a-1' }, '10.6.0.1');
    expect(r.list().map((n) => n.id)).to.deep.equal(['a', 'd', 'c', 'b']);
    expect(r.peersFor('d', 2)).to.deep.include({ truncated: true });
    expect(r.peersFor('d', 2).nodes.map((n) => n.id)).to.deep.equal(['a', 'c']);
    expect(r.peersFor('d', 3)).to.deep.include({ truncated: false });
    r.unregister('c', 'c-1', '10.6.0.1');
    clock += 10;
    r.register({ id: 'b', instance: 'b-2', name: 'b', port: 6001, files: [], downloads: [] }, '10.6.0.1'); // a restart
    expect(r.list().map((n) => n.id)).to.deep.equal(['b', 'a', 'd']);
    clock = 2_000_000;
    expect(r.expire()).to.have.members(['a', 'b', 'd']);
    expect(r.list()).to.deep.equal([]);
    expect(r.peersFor('x', 10)).to.deep.equal({ nodes: [], truncated: false });
  });
});

describe('review: a subscriber that stops reading', () => {
  it('is cut off once MAX_SUBSCRIBER_BACKLOG bytes wait unread, with one warning, and unsubscribed', async () => {
    const log = captureLog();
    let sub: Subscriber | null = null;
    let unsubscribed = 0;
    const server = net.createServer((socket) => {
      socket.once('data', (first: Buffer) =>
        serveControl(socket, first, {
          handle: async () => ({ type: 'ERROR', error: 'not here' }),
          subscribe: (s) => {
            sub = s;
            return { snapshot: { type: 'SUBSCRIBED', files: [] }, unsubscribe: () => unsubscribed++ };
          },
        }, { idleMs: 60_000 }, log.logger),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      await new Promise<void>((resolve) => client.once('connect', resolve));
      client.write(encodeMessage({ type: 'subscribe' }));
      client.pause(); // and never read again
      const s = await waitFor(() => sub, 2000, 'the subscription');
      const event: ControlResponse = { type: 'EVENT', event: 'file-added', file: { name: 'x'.repeat(1000), size: 1, infohash: 'ab'.repeat(20) } };
      const line = encodeMessage(event).length;
      // The kernel's buffers fill first; past them the backlog grows in the process, up to the cap.
      let sent = 0;
      for (; sent < (64 * 1024 * 1024) / line && unsubscribed === 0; sent++) {
        s.send(event);
        if (sent % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await waitFor(() => unsubscribed === 1, 2000, 'the unsubscribe');
      expect(sent * line, 'cut off well before 64 MiB').to.be.below(64 * 1024 * 1024);
      expect(sent * line).to.be.above(MAX_SUBSCRIBER_BACKLOG);
      for (let i = 0; i < 100; i++) s.send(event); // the node may still push a few
      expect(log.warnings().filter((m) => /does not read/.test(m))).to.have.length(1);
    } finally {
      client.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
