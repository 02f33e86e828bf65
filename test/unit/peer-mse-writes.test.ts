/**
 * How a Peer answering an MSE handshake lays its bytes on the stream: when the initiator's
 * BitTorrent handshake came in its IA, our last MSE bytes (VC, crypto_select, PadD) leave
 * in the same write as our BitTorrent handshake, and what follows in writes of its own.
 * Transmission 3.00 over uTP otherwise read our handshake and left the messages behind it
 * unread for a minute (docs/interop.md). No sockets: a Duplex that records each write.
 */
import { expect } from 'chai';
import { Duplex } from 'node:stream';
import { Peer, DEFAULT_PEER_TIMEOUTS } from '../../network/swarm/peer.js';
import { MseHandshake, CRYPTO_RC4, req2Of } from '../../network/wire/mse.js';
import { encodeHandshake, type WireMessage } from '../../network/wire/peer-wire.js';

const IH = Buffer.alloc(20, 0x5a);
const THEIRS = encodeHandshake(IH, Buffer.alloc(20, 0x01));
const OURS = encodeHandshake(IH, Buffer.alloc(20, 0x02));
const HAVE_ALL = Buffer.from([0, 0, 0, 1, 0x0e]);

function recording(): { socket: Duplex; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      writes.push(Buffer.from(chunk));
      cb();
    },
  });
  return { socket, writes };
}

/** A responding Peer (an incoming uTP connection) and an initiator whose IA is `payload`. */
function answering(payload: Buffer) {
  const { socket, writes } = recording();
  const peer = new Peer(socket, '10.0.0.2', 51413, false, DEFAULT_PEER_TIMEOUTS, { transport: 'utp', fed: true });
  const got: WireMessage[] = [];
  peer.events = { message: (_p, m) => void got.push(m), close: () => {} };
  peer.startMse(MseHandshake.responder({ lookup: (r) => (r.equals(req2Of(IH)) ? IH : undefined), select: [CRYPTO_RC4] }));
  const them = MseHandshake.initiator({ infoHash: IH, provide: CRYPTO_RC4, payload });
  peer.feed(them.start());
  expect(writes).to.have.length(1); // Yb and PadB
  peer.feed(Buffer.concat(them.push(writes[0]!).out));
  return { peer, them, writes, got };
}

describe('Peer: the MSE responder sends its last handshake bytes with its BitTorrent handshake', () => {
  it('holds VC and crypto_select until our handshake, then writes both at once, and the rest apart', () => {
    const { peer, them, writes, got } = answering(THEIRS);
    expect(got.map((m) => m.type)).to.deep.equal(['handshake']);
    expect(writes, 'nothing more before our handshake').to.have.length(1);

    peer.send(OURS);
    expect(writes).to.have.length(2);
    const done = them.push(writes[1]!).done!;
    expect(done.method).to.equal('rc4');
    // The initiator finds the end of the MSE handshake and exactly our handshake behind it, nothing more.
    expect(done.rest.equals(OURS)).to.equal(true);

    peer.send(HAVE_ALL);
    expect(writes).to.have.length(3);
    expect(Buffer.from(done.decrypt!.process(writes[2]!)).equals(HAVE_ALL)).to.equal(true);
    peer.close('test over');
  });

  it('answers at once when the initiator sent no handshake in its IA (it waits for our answer first)', () => {
    const { peer, them, writes, got } = answering(Buffer.alloc(0));
    expect(got).to.have.length(0);
    expect(writes, 'VC and crypto_select sent without waiting').to.have.length(2);
    const done = them.push(writes[1]!).done!;
    expect(done.rest.length).to.equal(0);
    peer.close('test over');
  });
});
