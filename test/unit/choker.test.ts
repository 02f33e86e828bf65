/** The choker on its own: who gets an upload slot, and when that changes. */
import { expect } from 'chai';
import { Choker, RECHOKE_MS, OPTIMISTIC_MS, type ChokerPeer } from '../../network/swarm/choker.js';

class FakePeer implements ChokerPeer {
  amChoking = true;
  constructor(
    readonly name: string,
    public peerInterested: boolean,
    public down = 0,
    public up = 0,
  ) {}
  downloadRate(): number {
    return this.down;
  }
  uploadRate(): number {
    return this.up;
  }
}

const T0 = 1_000_000;
const unchoke = (p: FakePeer) => void (p.amChoking = false);
const choke = (p: FakePeer) => void (p.amChoking = true);
const unchoked = (peers: Iterable<FakePeer>) => [...peers].filter((p) => !p.amChoking).map((p) => p.name).sort();

describe('choker', () => {
  it('unchokes interested peers first come while slots are free, and fills a freed slot', () => {
    const c = new Choker<FakePeer>(2, () => false, T0);
    const peers = new Set([new FakePeer('a', true), new FakePeer('b', true), new FakePeer('c', true), new FakePeer('d', false)]);
    for (const p of peers) if (p.peerInterested && c.hasSlot(peers)) unchoke(p);
    expect(unchoked(peers)).to.deep.equal(['a', 'b']);
    expect(c.hasSlot(peers)).to.equal(false);
    choke([...peers][0]!); // a went away or lost interest
    [...peers][0]!.peerInterested = false;
    c.freed(peers, unchoke);
    expect(unchoked(peers), 'the waiting interested peer, never the uninterested one').to.deep.equal(['b', 'c']);
  });

  it('changes nothing before the re-choke interval, then serves every interested peer when they fit the slots', () => {
    const c = new Choker<FakePeer>(3, () => false, T0);
    const peers = new Set([new FakePeer('a', true), new FakePeer('b', true), new FakePeer('c', false)]);
    c.tick(T0 + RECHOKE_MS - 1, peers, unchoke, choke);
    expect(unchoked(peers)).to.deep.equal([]);
    c.tick(T0 + RECHOKE_MS, peers, unchoke, choke);
    expect(unchoked(peers)).to.deep.equal(['a', 'b']);
  });

  it('while downloading keeps the peers that give us most, plus one optimistic unchoke among the rest', () => {
    const c = new Choker<FakePeer>(3, () => false, T0);
    const list = [new FakePeer('slow', true, 10), new FakePeer('fast', true, 900), new FakePeer('mid', true, 500), new FakePeer('idle', true, 0), new FakePeer('none', true, 1)];
    const peers = new Set(list);
    for (const p of list) unchoke(p);
    c.tick(T0 + RECHOKE_MS, peers, unchoke, choke);
    const on = unchoked(peers);
    expect(on).to.have.length(3);
    expect(on).to.include.members(['fast', 'mid']);
    const optimistic = on.find((n) => n !== 'fast' && n !== 'mid')!;
    expect(['slow', 'idle', 'none']).to.include(optimistic);
  });

  it('with no slots unchokes nobody, ever (allowed-fast pieces are all such a node serves)', () => {
    const c = new Choker<FakePeer>(0, () => true, T0);
    const list = [new FakePeer('a', true, 0, 800), new FakePeer('b', true), new FakePeer('c', false)];
    const peers = new Set(list);
    expect(c.hasSlot(peers)).to.equal(false);
    c.freed(peers, unchoke);
    for (let k = 1; k <= 6; k++) c.tick(T0 + k * RECHOKE_MS, peers, unchoke, choke);
    expect(unchoked(peers)).to.deep.equal([]);
  });

  it('while seeding ranks by how fast each peer takes from us', () => {
    const c = new Choker<FakePeer>(3, () => true, T0);
    const list = [new FakePeer('taker', true, 0, 800), new FakePeer('taker2', true, 0, 600), new FakePeer('giver', true, 999, 1), new FakePeer('giver2', true, 998, 0)];
    const peers = new Set(list);
    c.tick(T0 + RECHOKE_MS, peers, unchoke, choke);
    expect(unchoked(peers)).to.include.members(['taker', 'taker2']);
  });

  it('keeps the optimistic unchoke for 30 s, then rotates it', () => {
    let seen = new Set<string>();
    for (let run = 0; run < 20 && seen.size < 2; run++) {
      const c = new Choker<FakePeer>(2, () => false, T0);
      const list = [new FakePeer('best', true, 1000), ...Array.from({ length: 6 }, (_, i) => new FakePeer(`w${i}`, true, 0))];
      const peers = new Set(list);
      c.tick(T0 + RECHOKE_MS, peers, unchoke, choke);
      const first = unchoked(peers).find((n) => n !== 'best')!;
      c.tick(T0 + 2 * RECHOKE_MS, peers, unchoke, choke);
      expect(unchoked(peers).find((n) => n !== 'best'), 'same optimistic peer within 30 s').to.equal(first);
      seen = new Set([first]);
      for (let k = 1; k <= 10 && seen.size < 2; k++) {
        c.tick(T0 + RECHOKE_MS + k * OPTIMISTIC_MS, peers, unchoke, choke);
        seen.add(unchoked(peers).find((n) => n !== 'best')!);
      }
    }
    expect(seen.size, 'another waiting peer gets the optimistic slot after 30 s').to.equal(2);
  });
});
