/**
 * Dial: a dial that falls back to uTP after the node's uTP socket closed (a node stopping
 * with dials under way) fails cleanly, naming why, instead of throwing in a socket callback.
 */
import { expect } from 'chai';
import { Dial, dialWays, type TransportPolicy } from '../../network/swarm/dial.js';
import type { UtpEndpoint } from '../../network/swarm/utp.js';
import { DEFAULT_PEER_TIMEOUTS } from '../../network/swarm/peer.js';
import { freePort } from '../helpers.js';

describe('dial', function () {
  it('falls back to uTP only while the uTP socket is open: closed meanwhile, the dial fails saying so', async function () {
    let endpoint: UtpEndpoint | null = {} as UtpEndpoint; // open when the dial begins
    const policy: TransportPolicy = { encryption: 'off', utp: 'on', utpEndpoint: () => endpoint };
    expect(dialWays(policy, '127.0.0.1').map((w) => w.transport)).to.deep.equal(['tcp', 'utp']);
    const port = await freePort(); // nobody listens: TCP is refused, then uTP is next
    const reason = await new Promise<string>((resolve, reject) => {
      new Dial(
        { host: '127.0.0.1', port, infoHash: Buffer.alloc(20), handshake: Buffer.alloc(68), policy, timeouts: DEFAULT_PEER_TIMEOUTS, connectTimeoutMs: 5000 },
        { established: () => reject(new Error('established?')), failed: resolve },
      );
      endpoint = null; // the node stopped: its uTP socket is gone
    });
    expect(reason).to.equal('utp: the uTP socket is closed');
  });
});
