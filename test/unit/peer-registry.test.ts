import { expect } from 'chai';
import { PeerRegistry, UNREACHABLE_AFTER, MAX_UNVERIFIED_PER_HOST, type KnownPeer } from '../../network/discovery/peer-registry.js';

function recorder(r: PeerRegistry) {
  const ev: string[] = [];
  r.on('peer-up', (p) => ev.push(`up ${p.key}`));
  r.on('peer-down', (p) => ev.push(`down ${p.key}`));
  r.on('peer-changed', (p, what) => ev.push(`changed ${p.key} ${what}`));
  r.on('peer-unreachable', (p) => ev.push(`unreachable ${p.key}`));
  return ev;
}

describe('peer registry: one list merged from every source', () => {
  it('keys a node by id: seen by multicast and bootstrap it is one peer with both sources', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.see('multicast', { id: 'node-a', host: '10.0.0.2', port: 9000, name: 'alpha', instance: 'i1' });
    r.see('bootstrap', { id: 'node-a', host: '10.0.0.2', port: 9000 });
    r.see('multicast', { id: 'node-a', host: '10.0.0.2', port: 9000, instance: 'i1' });
    expect(r.list()).to.have.length(1);
    const p = r.get('node-a')!;
    expect([...p.sources].sort()).to.deep.equal(['bootstrap', 'multicast']);
    expect(p.name).to.equal('alpha');
    expect(p.seen.multicast).to.be.a('number');
    expect(ev).to.deep.equal(['up id:node-a']);
  });

  it('a peer heard from two addresses (two interfaces) stays at the first, moves only when that one stops answering, and does not flap back', () => {
    // Multicast reports each beacon's address as heard: this is the one rule against flapping.
    const r = new PeerRegistry();
    const ev = recorder(r);
    for (let i = 0; i < 5; i++) {
      r.see('multicast', { id: 'n', host: '192.168.1.5', port: 9000, instance: 'x' });
      r.see('multicast', { id: 'n', host: '10.8.0.5', port: 9000, instance: 'x' });
    }
    expect(r.list()).to.have.length(1);
    expect(r.get('n')!.host).to.equal('192.168.1.5');
    expect(r.get('10.8.0.5:9000'), 'the second address names nothing').to.equal(undefined);
    expect(ev).to.deep.equal(['up id:n']);

    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('192.168.1.5', 9000, false);
    r.see('multicast', { id: 'n', host: '10.8.0.5', port: 9000, instance: 'x' });
    expect(r.get('n')!.host).to.equal('10.8.0.5');
    expect(r.get('192.168.1.5:9000')).to.equal(undefined);
    for (let i = 0; i < 5; i++) {
      r.see('multicast', { id: 'n', host: '192.168.1.5', port: 9000, instance: 'x' });
      r.see('multicast', { id: 'n', host: '10.8.0.5', port: 9000, instance: 'x' });
    }
    expect(r.get('n')!.host, 'the new address is not yet known to fail: it stays').to.equal('10.8.0.5');
    expect(ev).to.deep.equal(['up id:n', 'unreachable id:n', 'changed id:n address']);
  });

  it('a peer added by hand gains its id when a sighting with an id comes from the same address', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.add('10.0.0.3', 9001, 'manual');
    r.see('multicast', { id: 'node-b', host: '10.0.0.3', port: 9001 });
    expect(r.list()).to.have.length(1);
    const p = r.get('node-b')!;
    expect(p.key).to.equal('id:node-b');
    expect([...p.sources].sort()).to.deep.equal(['manual', 'multicast']);
    expect(r.get('10.0.0.3:9001')).to.equal(p);
    // Its key changed: lists keyed by it hear of it (the dashboard drops the old row).
    expect(ev).to.deep.equal(['up addr:10.0.0.3:9001', 'changed id:node-b id']);
  });

  it('lives while one source vouches for it: losing multicast keeps a bootstrap peer, losing both drops it', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.see('multicast', { id: 'c', host: '10.0.0.4', port: 9000 });
    r.see('bootstrap', { id: 'c', host: '10.0.0.4', port: 9000 });
    r.lose('multicast', 'c');
    expect(r.get('c')!.sources).to.deep.equal(new Set(['bootstrap']));
    r.lose('multicast', 'c'); // twice: harmless
    r.lose('bootstrap', 'c');
    expect(r.get('c')).to.equal(undefined);
    expect(ev).to.deep.equal(['up id:c', 'down id:c']);
  });

  it('a peer that said GOODBYE or went quiet takes its hearsay with it, and echoes of it are ignored until seen again', () => {
    const r = new PeerRegistry({ learntTtlMs: 60_000 });
    const ev = recorder(r);
    r.see('multicast', { id: 'g', host: '10.0.0.8', port: 9000 });
    r.see('peer', { id: 'g', host: '10.0.0.8', port: 9000 }); // another node passed it on
    r.see('manual', { host: '10.0.0.9', port: 9000 });
    r.see('multicast', { id: 'h', host: '10.0.0.9', port: 9000 });
    r.see('peer', { id: 'h', host: '10.0.0.9', port: 9000 });

    r.lose('multicast', 'g', 'goodbye');
    expect(r.get('g'), 'gone at once, hearsay or not').to.equal(undefined);
    expect(r.see('peer', { id: 'g', host: '10.0.0.8', port: 9000 }), 'a late echo from gossip').to.equal(null);
    expect(r.get('g')).to.equal(undefined);

    r.lose('multicast', 'h', 'expired');
    expect(r.get('h')!.sources, 'what the user added stays').to.deep.equal(new Set(['manual']));

    r.see('multicast', { id: 'g', host: '10.0.0.8', port: 9000, instance: 'again' });
    r.see('peer', { id: 'g', host: '10.0.0.8', port: 9000 });
    expect(r.get('g')!.sources, 'seen first-hand again: hearsay counts again').to.deep.equal(new Set(['multicast', 'peer']));

    // Our own source stopping says nothing about the peer: its hearsay stays.
    r.lose('multicast', 'g', 'gone');
    expect(r.get('g')!.sources).to.deep.equal(new Set(['peer']));
    expect(ev).to.deep.equal(['up id:g', 'up addr:10.0.0.9:9000', 'changed id:h id', 'down id:g', 'up id:g']);
  });

  it('ignores hearsay of a departed node only for the TTL', () => {
    const r = new PeerRegistry({ learntTtlMs: 1000 });
    r.see('bootstrap', { id: 'k', host: '10.0.0.10', port: 9000 });
    r.lose('bootstrap', 'k', 'expired');
    expect(r.see('peer', { id: 'k', host: '10.0.0.10', port: 9000 })).to.equal(null);
    r.expire(Date.now() + 2000);
    expect(r.see('peer', { id: 'k', host: '10.0.0.10', port: 9000 })).to.not.equal(null);
  });

  it('notices a restart (new instance, maybe at a new address) and a move once the old address stops answering', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.see('multicast', { id: 'd', host: '10.0.0.5', port: 9000, instance: 'one' });
    r.see('multicast', { id: 'd', host: '10.0.0.5', port: 9000, instance: 'two' });
    r.see('multicast', { id: 'd', host: '10.0.0.6', port: 9000, instance: 'three' });
    expect(r.get('d')!.host).to.equal('10.0.0.6');
    r.see('bootstrap', { id: 'd', host: '10.0.0.7', port: 9100, instance: 'three' });
    expect(r.get('d')!.host, 'same instance, old address still fine').to.equal('10.0.0.6');
    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('10.0.0.6', 9000, false);
    r.see('bootstrap', { id: 'd', host: '10.0.0.7', port: 9100, instance: 'three' });
    expect(ev).to.deep.equal(['up id:d', 'changed id:d instance', 'changed id:d instance', 'unreachable id:d', 'changed id:d address']);
    expect(r.get('10.0.0.7:9100')?.id).to.equal('d');
    expect(r.get('10.0.0.6:9000')).to.equal(undefined);
    expect(r.get('d')!.reachable).to.equal('unknown');
  });

  it('a second-hand sighting does not move a peer that answers at its address', () => {
    const r = new PeerRegistry();
    r.see('multicast', { id: 'e', host: '10.0.0.7', port: 9000 });
    r.contact('10.0.0.7', 9000, true);
    r.see('peer', { id: 'e', host: '10.9.9.9', port: 1 });
    expect(r.get('e')!.host).to.equal('10.0.0.7');
    expect(r.get('e')!.sources.has('peer')).to.equal(true);
  });

  it('never lists this node, by id or by its own address and port', () => {
    const r = new PeerRegistry({ self: { id: 'me', port: 9000, hosts: ['10.0.0.1'] } });
    expect(r.see('multicast', { id: 'me', host: '10.0.0.99', port: 9999 })).to.equal(null);
    expect(r.see('peer', { host: '10.0.0.1', port: 9000 })).to.equal(null);
    expect(r.see('peer', { host: '127.0.0.1', port: 9000 })).to.equal(null);
    expect(r.see('peer', { host: '10.0.0.1', port: 9001 })).to.not.equal(null);
  });

  it('refuses bad endpoints', () => {
    const r = new PeerRegistry();
    for (const [host, port] of [['10.0.0.1', 0], ['10.0.0.1', 65536], ['10.0.0.1', 1.5], ['', 80], ['a b', 80], ['x'.repeat(256), 80], ['../etc', 80]] as const) {
      expect(r.see('peer', { host, port }), `${host}:${port}`).to.equal(null);
    }
    expect(r.size).to.equal(0);
  });

  it('filters by source', () => {
    const r = new PeerRegistry();
    r.see('multicast', { id: 'm1', host: '10.0.0.2', port: 1 });
    r.see('bootstrap', { id: 'b1', host: '10.0.0.3', port: 1 });
    r.see('multicast', { id: 'mb', host: '10.0.0.4', port: 1 });
    r.see('bootstrap', { id: 'mb', host: '10.0.0.4', port: 1 });
    r.add('10.0.0.5', 1, 'manual');
    const ids = (ps: KnownPeer[]) => ps.map((p) => p.id ?? p.key).sort();
    expect(ids(r.list('multicast'))).to.deep.equal(['m1', 'mb']);
    expect(ids(r.list('bootstrap'))).to.deep.equal(['b1', 'mb']);
    expect(ids(r.list('manual'))).to.deep.equal(['addr:10.0.0.5:1']);
    expect(r.list()).to.have.length(4);
  });

  it('a peer that fails UNREACHABLE_AFTER contacts in a row is marked, and dropped when only hearsay vouched for it', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.see('bootstrap', { id: 'f', host: '10.0.0.8', port: 9000 });
    r.see('peer', { id: 'g', host: '10.0.0.9', port: 9000 });
    for (let i = 0; i < UNREACHABLE_AFTER - 1; i++) {
      r.contact('10.0.0.8', 9000, false);
      r.contact('10.0.0.9', 9000, false);
    }
    r.contact('10.0.0.8', 9000, true); // one answer resets the count
    r.contact('10.0.0.8', 9000, false);
    expect(r.get('f')!.reachable).to.equal('yes');
    expect(r.contact('10.0.0.9', 9000, false)?.id).to.equal('g');
    expect(r.get('g')).to.equal(undefined);
    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('10.0.0.8', 9000, false);
    expect(r.get('f')!.reachable).to.equal('no');
    expect(ev).to.deep.equal(['up id:f', 'up id:g', 'unreachable id:g', 'down id:g', 'unreachable id:f']);
  });

  it('count(): a peer that does not answer is listed but not counted, and counts again once it answers', () => {
    const r = new PeerRegistry();
    r.add('10.0.0.20', 9000, 'manual');
    r.see('multicast', { id: 'm', host: '10.0.0.21', port: 9000 });
    expect(r.count()).to.deep.equal({ peers: 2, unreachable: 0 });
    for (let i = 0; i < UNREACHABLE_AFTER; i++) r.contact('10.0.0.20', 9000, false);
    expect(r.count()).to.deep.equal({ peers: 1, unreachable: 1 });
    expect(r.list().map((p) => `${p.host} ${p.reachable}`).sort()).to.deep.equal(['10.0.0.20 no', '10.0.0.21 unknown']);
    r.contact('10.0.0.20', 9000, true);
    expect(r.count()).to.deep.equal({ peers: 2, unreachable: 0 });
  });

  it('second-hand sightings fade after the TTL; manual ones never do', () => {
    const r = new PeerRegistry({ learntTtlMs: 1000 });
    r.see('peer', { id: 'h', host: '10.0.0.10', port: 1 });
    r.add('10.0.0.11', 1, 'manual');
    r.see('multicast', { id: 'k', host: '10.0.0.12', port: 1 });
    r.see('peer', { id: 'k', host: '10.0.0.12', port: 1 });
    r.expire(Date.now() + 500);
    expect(r.size).to.equal(3);
    r.expire(Date.now() + 5000);
    expect(r.list().map((p) => p.key).sort()).to.deep.equal(['addr:10.0.0.11:1', 'id:k']);
    expect([...r.get('k')!.sources]).to.deep.equal(['multicast']);
  });

  it('bounds: the registry and the share of second-hand peers cannot grow past their limits', () => {
    const r = new PeerRegistry({ maxPeers: 50, maxLearnt: 10 });
    for (let i = 0; i < 100; i++) r.see('peer', { id: `p${i}`, host: '10.1.0.1', port: 1000 + i });
    expect(r.list('peer')).to.have.length(10);
    for (let i = 0; i < 100; i++) r.see('multicast', { id: `m${i}`, host: `10.2.0.${i + 1}`, port: 1000 });
    expect(r.size).to.equal(50);
  });

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

  it(`at most MAX_UNVERIFIED_PER_HOST (${MAX_UNVERIFIED_PER_HOST}) peers at one host wait for their first answer: forged sightings cannot point us at an address by the thousand`, () => {
    const r = new PeerRegistry();
    const victim = '10.9.9.9';
    for (let i = 0; i < 2000; i++) r.see('multicast', { id: `fake${i}`, host: victim, port: 1 + i });
    expect(r.size).to.equal(MAX_UNVERIFIED_PER_HOST);
    expect(r.crowded).to.equal(2000 - MAX_UNVERIFIED_PER_HOST);
    expect(r.see('bootstrap', { id: 'one-more', host: victim, port: 5000 }), 'from any source').to.equal(null);
    expect(r.add(victim, 5001, 'manual'), 'but a peer given by hand').to.not.equal(null);
    // Other hosts are not affected; and a peer there that answers makes room for another.
    expect(r.see('multicast', { id: 'elsewhere', host: '10.9.9.10', port: 1 })).to.not.equal(null);
    r.contact(victim, 1, true); // (the peer given by hand waits for its first answer too)
    r.contact(victim, 2, true);
    expect(r.see('multicast', { id: 'real', host: victim, port: 9000 })?.id).to.equal('real');
    expect(r.see('multicast', { id: 'again', host: victim, port: 9001 })).to.equal(null);
    // One that goes makes room too.
    r.lose('multicast', 'fake2', 'expired');
    expect(r.see('multicast', { id: 'again', host: victim, port: 9001 })?.id).to.equal('again');
  });

  it('a peer whose address answers as another node is not who it claims: marked at once; the node that answered is the one at that address', () => {
    const r = new PeerRegistry();
    const ev = recorder(r);
    r.see('multicast', { id: 'real', host: '10.0.0.30', port: 9000 });
    r.contact('10.0.0.30', 9000, true, 'real');
    // A forged sighting of another id at the real node's address.
    r.see('multicast', { id: 'forged', host: '10.0.0.30', port: 9000 });
    expect(r.get('10.0.0.30:9000')!.id, 'the address still leads to the node that answered there').to.equal('real');
    expect(r.contact('10.0.0.30', 9000, true, 'real')?.id).to.equal('forged');
    expect([r.get('real')!.reachable, r.get('forged')!.reachable]).to.deep.equal(['yes', 'no']);
    expect(ev).to.deep.equal(['up id:real', 'up id:forged', 'unreachable id:forged']);
    // Hearsay only: dropped.
    r.see('peer', { id: 'heard', host: '10.0.0.30', port: 9000 });
    r.contact('10.0.0.30', 9000, true, 'real');
    expect(r.get('heard')).to.equal(undefined);
  });
});
