/**
 * A torrent's dial candidates (network/swarm/connections.ts) against real refused ports on
 * 127.0.0.1: made-up peers (forged beacons, a lying tracker or PEX) cost a few dials each and
 * are then forgotten, and a full list makes room for a newcomer by letting go of the
 * candidate that failed most, never one that has not failed.
 */
import { expect } from 'chai';
import { Connections, FORGET_AFTER_FAILURES } from '../../network/swarm/connections.js';
import { DEFAULT_PEER_TIMEOUTS } from '../../network/swarm/peer.js';
import { silentLogger } from '../../network/util/log.js';
import { freePort, waitFor } from '../helpers.js';

function connections(maxCandidates: number): Connections {
  return new Connections({
    infoHash: Buffer.alloc(20, 1),
    handshake: Buffer.alloc(68),
    maxPeers: 50,
    connectTimeoutMs: 2000,
    timeouts: DEFAULT_PEER_TIMEOUTS,
    log: silentLogger(),
    connected: () => 0,
    isConnected: () => false,
    established: () => {},
    retryFirstMs: 1,
    maxCandidates,
  });
}

describe('dial candidates: bounded and pruned', function () {
  it(`forgets a candidate after ${FORGET_AFTER_FAILURES} failed dials in a row`, async function () {
    const c = connections(100);
    const dead = await Promise.all([freePort(), freePort(), freePort()]);
    c.add(dead.map((port) => ({ host: '127.0.0.1', port })));
    expect(c.size).to.equal(3);
    // Each failure backs off 2^n ms here (1 ms first): dial until they are gone.
    await waitFor(() => {
      c.dial();
      return c.size === 0;
    }, 10_000, 'the refused candidates to be forgotten');
  });

  it('a full list makes room for a newcomer by dropping the one that failed most; none gives way that has not failed', async function () {
    const c = connections(2);
    const [bad, good, newcomer, other] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    c.add([{ host: '127.0.0.1', port: bad }]);
    c.dial();
    await new Promise((r) => setTimeout(r, 100)); // the refused dial fails
    c.add([{ host: '127.0.0.2', port: good }]); // not dialled yet: no failure
    expect(c.size).to.equal(2);
    c.add([{ host: '127.0.0.1', port: newcomer }]);
    expect([c.has('127.0.0.1', bad), c.has('127.0.0.2', good), c.has('127.0.0.1', newcomer)], 'the failed one gave way').to.deep.equal([false, true, true]);
    c.add([{ host: '127.0.0.1', port: other }]);
    expect([c.size, c.has('127.0.0.1', other)], 'nobody else has failed: the newcomer is refused').to.deep.equal([2, false]);
  });
});
