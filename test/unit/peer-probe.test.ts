/**
 * PeerProbe: a peer added by hand is tried until it answers, so one that never answers is
 * known as such without a user's action. A real registry, and a contact that the test
 * answers (or not) itself: the contacts over real sockets are test/e2e/bad-config.test.ts.
 */
import { expect } from 'chai';
import { PeerRegistry, UNREACHABLE_AFTER, type KnownPeer } from '../../network/discovery/peer-registry.js';
import { PeerProbe } from '../../network/catalog/peer-probe.js';
import { waitFor } from '../helpers.js';

describe('PeerProbe', function () {
  let probe: PeerProbe | undefined;
  afterEach(() => probe?.stop());

  /** A probe whose contacts answer while `up` says so, recorded in the registry as real ones are. */
  function setup(up: (p: KnownPeer) => boolean) {
    const registry = new PeerRegistry();
    const asked: Array<{ addr: string }> = [];
    probe = new PeerProbe({
      registry,
      firstDelayMs: 10,
      maxDelayMs: 80,
      ask: async (p) => {
        asked.push({ addr: `${p.host}:${p.port}` });
        const ok = up(p);
        registry.contact(p.host, p.port, ok);
        return ok;
      },
    });
    return { registry, asked, probe };
  }

  it('a peer that never answers is tried until it counts as unreachable, then still now and then', async () => {
    const { registry, asked, probe } = setup(() => false);
    probe.watch(registry.add('10.0.0.1', 9000, 'manual')!);
    await waitFor(() => registry.get('10.0.0.1:9000')!.reachable === 'no', 2000, 'unreachable');
    expect(asked.length).to.be.at.least(UNREACHABLE_AFTER);
    await waitFor(() => asked.length >= UNREACHABLE_AFTER + 3, 2000, 'more tries after that');
    expect(registry.count()).to.deep.equal({ peers: 0, unreachable: 1 });
  });

  it('one that comes up later is seen without any action, and then left to the ordinary traffic', async () => {
    let alive = false;
    const { registry, asked, probe } = setup(() => alive);
    probe.watch(registry.add('10.0.0.2', 9000, 'manual')!);
    await waitFor(() => registry.get('10.0.0.2:9000')!.reachable === 'no', 2000, 'unreachable');
    alive = true;
    await waitFor(() => registry.get('10.0.0.2:9000')!.reachable === 'yes', 2000, 'answering');
    const tries = asked.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.length, 'no more tries once it answers').to.equal(tries);
  });

  it('a peer removed by hand is not tried again; a peer only others vouch for is never probed', async () => {
    const { registry, asked, probe } = setup(() => false);
    probe.watch(registry.add('10.0.0.3', 9000, 'manual')!);
    await waitFor(() => asked.length >= 1, 2000, 'a first try');
    registry.remove('10.0.0.3', 9000);
    probe.watch(registry.see('peer', { id: 'x', host: '10.0.0.4', port: 9000 })!);
    const tries = asked.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(asked.map((a) => a.addr).slice(tries)).to.deep.equal([]);
  });
});
