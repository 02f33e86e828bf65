/** The peer exchange codec (BEP 11) on its own. */
import { expect } from 'chai';
import bencode from 'bencode';
import { decodePex, encodePex, MAX_PEX_PEERS } from '../../network/wire/pex.js';
import { WireError } from '../../network/wire/peer-wire.js';

describe('peer exchange codec (BEP 11)', () => {
  it('round-trips added and dropped peers, IPv4 and IPv6, with a flags byte per added peer', () => {
    const m = { added: [{ host: '10.0.0.1', port: 6881 }, { host: '::1', port: 7000 }], dropped: [{ host: '192.168.1.9', port: 1 }] };
    const bytes = encodePex(m);
    const d = bencode.decode(bytes) as Record<string, Uint8Array>;
    expect(d['added']!.length).to.equal(6);
    expect(d['added.f']!.length).to.equal(1);
    expect(d['added6']!.length).to.equal(18);
    expect(decodePex(bytes)).to.deep.equal({ added: m.added, dropped: m.dropped });
  });

  it(`sends at most ${MAX_PEX_PEERS} of each, and takes at most 200 from a bigger list`, () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ host: `10.1.${i >> 8}.${i & 255}`, port: 1000 + i }));
    expect(decodePex(encodePex({ added: many, dropped: many })).added).to.have.length(MAX_PEX_PEERS);
    const big = Buffer.alloc(300 * 6, 1);
    expect(decodePex(Buffer.from(bencode.encode({ added: big }))).added).to.have.length(200);
  });

  it('refuses what is not a dictionary, or too large; skips port 0', () => {
    expect(() => decodePex(Buffer.from('le'))).to.throw(WireError, /not a dictionary/);
    expect(() => decodePex(Buffer.from('d5:added'))).to.throw(WireError, /not valid bencode/);
    expect(() => decodePex(Buffer.alloc(5000, 0x64))).to.throw(WireError, /larger than/);
    expect(decodePex(Buffer.from(bencode.encode({ added: Buffer.from([10, 0, 0, 1, 0, 0]) }))).added).to.deep.equal([]);
  });
});
