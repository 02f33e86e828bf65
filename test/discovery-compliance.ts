/**
 * One compliance suite for every PeerDiscovery source (multicast beacons, the bootstrap
 * client): what the registry relies on, checked the same way for each. A source's own
 * test file calls `discoveryCompliance(name, makePair, opts)` with a factory for two
 * instances that can see each other.
 */
import { expect } from 'chai';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiscoveredPeer, LostReason, PeerDiscovery } from '../network/discovery/discovery.js';
import { waitFor } from './helpers.js';

export interface DiscoveryPair {
  /** Not started yet; the suite starts and stops them. */
  a: PeerDiscovery;
  b: PeerDiscovery;
  aSelf: { id: string; port: number };
  bSelf: { id: string; port: number };
  /**
   * A new, not started instance standing for b after a restart: same node id and port,
   * new instance id. Without it the restart test skips.
   */
  restartB?: () => PeerDiscovery;
  /** Releases whatever the factory made beyond a and b (servers, folders). */
  cleanup(): Promise<void>;
}

interface Recorder {
  peers: DiscoveredPeer[];
  lost: Array<{ id: string; reason: LostReason; at: number }>;
}

function record(d: PeerDiscovery): Recorder {
  const r: Recorder = { peers: [], lost: [] };
  d.on('peer', (p) => r.peers.push(p));
  d.on('lost', (id, reason) => r.lost.push({ id, reason, at: Date.now() }));
  return r;
}

export function discoveryCompliance(name: string, makePair: () => Promise<DiscoveryPair>, opts: { lostWithinMs: number }): void {
  describe(`${name}: PeerDiscovery compliance`, function () {
    const seeWithinMs = Math.max(5000, opts.lostWithinMs);
    let pair: DiscoveryPair;
    let ra: Recorder;
    let rb: Recorder;
    const extra: PeerDiscovery[] = [];

    beforeEach(async () => {
      pair = await makePair();
      ra = record(pair.a);
      rb = record(pair.b);
    });

    afterEach(async () => {
      await Promise.all([pair.a, pair.b, ...extra.splice(0)].map((d) => d.stop()));
      await pair.cleanup();
    });

    const startBoth = async (): Promise<void> => {
      await Promise.all([pair.a.start(), pair.b.start()]);
    };
    const sawB = (r: Recorder): DiscoveredPeer | undefined => r.peers.find((p) => p.id === pair.bSelf.id);

    it('start() twice is harmless and health becomes ok', async () => {
      expect(pair.a.health().state).to.equal('stopped');
      await Promise.all([pair.a.start(), pair.a.start()]);
      await pair.a.start();
      await pair.b.start();
      await waitFor(() => pair.a.health().state === 'ok' && pair.b.health().state === 'ok', seeWithinMs, 'health ok');
      expect(pair.a.source).to.equal(pair.b.source);
    });

    it('a sees b and b sees a, with id and port', async () => {
      await startBoth();
      const b = await waitFor(() => sawB(ra), seeWithinMs, 'a to see b');
      expect(b.port).to.equal(pair.bSelf.port);
      expect(b.host).to.be.a('string').and.not.equal('');
      const a = await waitFor(() => rb.peers.find((p) => p.id === pair.aSelf.id), seeWithinMs, 'b to see a');
      expect(a.port).to.equal(pair.aSelf.port);
    });

    it('never reports its own id', async () => {
      await startBoth();
      await waitFor(() => sawB(ra) && rb.peers.some((p) => p.id === pair.aSelf.id), seeWithinMs, 'both to see each other');
      // Give echoes of our own announcements time to come back.
      await sleep(300);
      expect(ra.peers.map((p) => p.id)).to.not.include(pair.aSelf.id);
      expect(rb.peers.map((p) => p.id)).to.not.include(pair.bSelf.id);
      expect(ra.lost.map((l) => l.id)).to.not.include(pair.aSelf.id);
    });

    it('stop() twice is harmless and health becomes stopped', async () => {
      await pair.a.stop(); // before any start
      await startBoth();
      await Promise.all([pair.a.stop(), pair.a.stop()]);
      await pair.a.stop();
      expect(pair.a.health().state).to.equal('stopped');
    });

    it(`a reports b lost within ${opts.lostWithinMs} ms of b.stop()`, async () => {
      await startBoth();
      await waitFor(() => sawB(ra), seeWithinMs, 'a to see b');
      const t0 = Date.now();
      await pair.b.stop();
      const lost = await waitFor(() => ra.lost.find((l) => l.id === pair.bSelf.id), opts.lostWithinMs + 1000, 'a to lose b');
      expect(lost.at - t0).to.be.at.most(opts.lostWithinMs);
    });

    it('a restarted b (same id, new instance) is seen again', async function () {
      if (!pair.restartB) this.skip();
      await startBoth();
      const first = await waitFor(() => sawB(ra), seeWithinMs, 'a to see b');
      const lostBefore = ra.lost.length;
      await pair.b.stop();
      // Beacons the old b sent just before it stopped may still be on their way to a: wait
      // until a has heard the end of it, then a moment more, since datagrams can overtake each
      // other (a HELLO arriving after the GOODBYE revives the old run), so what follows can
      // only come from the new run.
      await waitFor(() => ra.lost.slice(lostBefore).some((l) => l.id === pair.bSelf.id), opts.lostWithinMs + 1000, 'a to lose the old b');
      await sleep(200);
      const b2 = pair.restartB!();
      extra.push(b2);
      const since = ra.peers.length;
      await b2.start();
      const again = await waitFor(() => ra.peers.slice(since).find((p) => p.id === pair.bSelf.id), seeWithinMs, 'a to see b again');
      expect(again.port).to.equal(pair.bSelf.port);
      if (first.instance !== undefined && again.instance !== undefined) expect(again.instance).to.not.equal(first.instance);
    });
  });
}
