/** The tracker's in-memory swarm store: random answers, the per-torrent, per-address and torrent bounds. */
import { expect } from 'chai';
import { MemorySwarmStore, DEFAULT_MAX_PEERS_PER_ADDRESS_PER_TORRENT } from '../../bootstrap/swarm-store.js';
import { TrackerRequestError, type AnnounceParams } from '../../network/wire/tracker-codec.js';

describe('tracker swarm store (in memory)', () => {
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
    const store = new MemorySwarmStore({ maxPeersPerTorrent: 3, maxPeersPerAddress: 4, maxTorrents: 3 });
    for (let n = 0; n < 3; n++) store.announce(announce(n), far);
    store.announce(announce(0), far); // 0 announces again: 1 is now the stalest
    store.announce(announce(3, { left: 0 }), far);
    expect(store.peers(HASH, 10, '', false, Date.now()).map((p) => p.host).sort()).to.deep.equal(['10.5.0.0', '10.5.0.2', '10.5.0.3']);
    expect(store.counts(HASH)).to.include({ complete: 1, incomplete: 2 });

    const fromOne = (port: number, infoHash = HASH) => announce(9, { port, infoHash });
    for (let port = 1; port <= 3; port++) store.announce(fromOne(port, 'ef'.repeat(20)), far);
    store.announce(fromOne(4, '02'.repeat(20)), far);
    expect(() => store.announce(fromOne(5, '02'.repeat(20)), far)).to.throw(TrackerRequestError, /too many announces from this address/);
    expect(() => store.announce(announce(7, { infoHash: '01'.repeat(20) }), far)).to.throw(TrackerRequestError, /as many torrents/);
    expect(store.torrents).to.equal(3);
  });

  it('one address announcing a thousand ports fills only its own share of a full torrent: no honest peer of another address gives way', () => {
    const store = new MemorySwarmStore({ maxPeersPerTorrent: 100, maxPeersPerAddressPerTorrent: 1000 });
    for (let n = 0; n < 60; n++) store.announce(announce(n), far);
    const attacker = (port: number) => announce(0, { host: '203.0.113.66', source: '203.0.113.66', port: 10_000 + port });
    let refused = 0;
    for (let port = 0; port < 1000; port++) {
      try {
        store.announce(attacker(port), far);
      } catch (err) {
        expect(err).to.be.instanceOf(TrackerRequestError);
        expect((err as Error).message).to.equal('this torrent has as many peers as the tracker keeps');
        refused++;
      }
    }
    const hosts = store.peers(HASH, 1000, '', false, Date.now()).map((p) => p.host);
    expect(hosts.filter((h) => h.startsWith('10.5.')), 'every honest peer is still there').to.have.length(60);
    expect(hosts.filter((h) => h === '203.0.113.66')).to.have.length(40);
    expect(refused).to.equal(960);
    // An honest newcomer still gets in: the attacker's stalest gives way.
    store.announce(announce(500), far);
    expect(store.has(HASH, '10.5.1.244|6881')).to.equal(true);
    expect(store.has(HASH, '203.0.113.66|10000')).to.equal(false);
  });

  it(`keeps at most ${DEFAULT_MAX_PEERS_PER_ADDRESS_PER_TORRENT} peers of one torrent from one address (an IPv6 /64 is one address)`, () => {
    const store = new MemorySwarmStore();
    const v6 = (port: number) => announce(0, { host: `2001:db8:7:7::${port.toString(16)}`, source: `2001:db8:7:7::${port.toString(16)}`, port: 7000 + port });
    for (let port = 0; port < DEFAULT_MAX_PEERS_PER_ADDRESS_PER_TORRENT; port++) store.announce(v6(port), far);
    expect(() => store.announce(v6(999), far)).to.throw(TrackerRequestError, 'too many peers of this torrent from this address');
    store.announce(v6(0), far); // a peer already in announces again
    store.announce({ ...v6(999), infoHash: 'ab'.repeat(20) }, far); // another torrent is another share
    expect(store.counts('ab'.repeat(20)).incomplete).to.equal(1);
  });
});
