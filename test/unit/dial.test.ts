/**
 * Dial's ways on real sockets: the fallback from TCP to uTP when the node's uTP socket closed
 * meanwhile (a node stopping while a dial falls back) ends the dial with a reason, never a throw.
 */
import { expect } from 'chai';
import { Dial, dialWays, PLAIN_TCP, type TransportPolicy } from '../../network/swarm/dial.js';
import { UtpEndpoint } from '../../network/swarm/utp.js';
import { DEFAULT_PEER_TIMEOUTS } from '../../network/swarm/peer.js';
import { encodeHandshake } from '../../network/wire/peer-wire.js';
import { freePort } from '../helpers.js';

describe('dial', function () {
  it('the ways: TCP then uTP when on, uTP first when preferred, plain TCP alone for a private swarm', async function () {
    const ep = await UtpEndpoint.open('127.0.0.1', await freePort(), () => {}).catch(() => null);
    if (!ep) this.skip();
    try {
      const policy = (utp: TransportPolicy['utp'], extra: Partial<TransportPolicy> = {}): TransportPolicy => ({ encryption: 'prefer', utp, utpEndpoint: () => ep, ...extra });
      expect(dialWays(policy('on'), '127.0.0.1').map((w) => `${w.transport}${w.mse ? '+mse' : ''}`)).to.deep.equal(['tcp+mse', 'tcp', 'utp+mse', 'utp']);
      expect(dialWays(policy('prefer'), '127.0.0.1').map((w) => w.transport)).to.deep.equal(['utp', 'utp', 'tcp', 'tcp']);
      expect(dialWays(policy('on'), '::1').map((w) => w.transport), 'libutp here is IPv4 only').to.deep.equal(['tcp', 'tcp']);
      expect(dialWays(policy('on', { psk: Buffer.alloc(32) }), '127.0.0.1')).to.deep.equal([{ transport: 'tcp', mse: false }]);
      expect(dialWays(PLAIN_TCP, '127.0.0.1')).to.deep.equal([{ transport: 'tcp', mse: false }]);
    } finally {
      await ep.close();
    }
  });

  it('a uTP way whose socket closed while TCP failed ends the dial with a reason', async function () {
    let ep: UtpEndpoint | null = await UtpEndpoint.open('127.0.0.1', await freePort(), () => {}).catch(() => null);
    if (!ep) this.skip();
    const closedPort = await freePort(); // nothing listens there: TCP is refused at once
    const infoHash = Buffer.alloc(20, 7);
    const policy: TransportPolicy = { encryption: 'off', utp: 'on', utpEndpoint: () => ep };
    const reason = await new Promise<string>((resolve, reject) => {
      new Dial(
        { host: '127.0.0.1', port: closedPort, infoHash, handshake: encodeHandshake(infoHash, Buffer.alloc(20, 1)), policy, timeouts: DEFAULT_PEER_TIMEOUTS, connectTimeoutMs: 5000 },
        { established: () => reject(new Error('established with nobody')), failed: resolve },
      );
      // The node stops: its uTP socket goes before TCP's refusal comes back.
      const closing = ep!;
      ep = null;
      void closing.close();
    });
    expect(reason).to.equal("utp: the node's uTP socket is closed");
  });
});
