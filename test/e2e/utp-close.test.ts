/**
 * Closing the node's uTP socket: every connection first, the UDP socket after, from our own
 * call. utp-native asked to close with connections still open closes its UDP handle from
 * inside libutp's callback for the last one, and libutp may send one more datagram on it,
 * which makes libuv abort the process (a node-cli that downloaded from Transmission died so,
 * docs/interop.md). Real utp-native sockets on loopback; the native socket's close is watched.
 */
import { expect } from 'chai';
import { UtpEndpoint, utpMissing, type UtpConnection } from '../../network/swarm/utp.js';

interface Watched {
  socket: { connections: UtpConnection[]; close(cb?: () => void): void };
}

describe('uTP endpoint: close', function () {
  this.timeout(15_000);

  before(function () {
    const why = utpMissing();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
  });

  it('closes its connections, then the UDP socket once none is left', async () => {
    const accepted: UtpConnection[] = [];
    const server = await UtpEndpoint.open('127.0.0.1', 0, (c) => void accepted.push(c));
    const client = await UtpEndpoint.open('127.0.0.1', 0, () => {});
    try {
      // Two live connections, with bytes both ways: the ones the close must wait for.
      const conns = [client.connect('127.0.0.1', server.port), client.connect('127.0.0.1', server.port)];
      for (const c of conns) {
        c.on('error', () => {});
        c.write(Buffer.from('hello'));
      }
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (accepted.length === 2) {
            clearInterval(check);
            resolve();
          }
        }, 10);
      });
      for (const c of accepted) c.on('error', () => {});
      const native = (client as unknown as Watched).socket;
      let openAtClose = -1;
      const realClose = native.close.bind(native);
      native.close = (cb) => {
        openAtClose = native.connections.length;
        realClose(cb);
      };
      const closedEach = conns.map((c) => new Promise<void>((r) => c.once('close', () => r())));
      await client.close();
      await Promise.all(closedEach);
      expect(openAtClose, 'connections still open when the UDP socket was closed').to.equal(0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
