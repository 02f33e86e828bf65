/**
 * Limits of the discovery side that no other test reached: the tracker's swarm store
 * (random answers, per-torrent, per-address and torrent bounds), the bootstrap registry's
 * freshest-first answers, and the multicast peer table.
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import { pino } from 'pino';
import type { Logger } from '../../network/util/log.js';
import { MemorySwarmStore, TrackerRequestError, type AnnounceParams } from '../../bootstrap/tracker.js';
import { NodeRegistry } from '../../bootstrap/registry.js';
import { MulticastDiscovery } from '../../network/discovery/multicast.js';
import { encodeBeacon } from '../../network/wire/beacon-codec.js';
import { inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { waitFor } from '../helpers.js';

function captureLog(): { logger: Logger; warnings(): string[] } {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg) };
}

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

describe('review: multicast peer table (real sockets)', function () {
  const GROUP_PORT = 21_900;
  let d: MulticastDiscovery | null = null;
  let s: dgram.Socket | null = null;

  before(function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
  });
  after(async () => {
    await d?.stop();
    s?.close();
  });

  it('tracks at most maxPeers nodes: a newcomer past it is ignored (a warning), known ones carry on', async () => {
    const log = captureLog();
    d = new MulticastDiscovery({
      interfaces: ['lo'], port: GROUP_PORT, intervalMs: 200, maxPeers: 2, logger: log.logger,
      self: { id: 'table', instance: 'i1', name: 'table', port: 9500 },
    });
    const seen: string[] = [];
    d.on('peer', (p) => seen.push(p.id));
    await d.start();
    s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s!.bind(0, '127.0.0.1', resolve));
    s.setMulticastInterface('127.0.0.1');
    const beacon = (id: string, type: 'HELLO' | 'GOODBYE' = 'HELLO') =>
      s!.send(encodeBeacon({ type, id, instance: `${id}-1`, name: id, port: 9600, intervalMs: 60_000 }), GROUP_PORT, '224.1.1.1');
    beacon('x1');
    beacon('x2');
    await waitFor(() => seen.includes('x1') && seen.includes('x2'), 2000, 'x1 and x2');
    beacon('x3');
    await waitFor(() => log.warnings().some((m) => /peer table full \(2\), ignoring x3/.test(m)), 2000, 'the warning');
    const before = seen.length;
    beacon('x1');
    await waitFor(() => seen.length > before, 2000, 'x1 again');
    expect(seen).to.not.include('x3');
    beacon('x2', 'GOODBYE');
    beacon('x3');
    await waitFor(() => seen.includes('x3'), 2000, 'x3 once there is room');
  });
});
