/** The extension protocol (BEP 10) and metadata exchange (BEP 9) codecs on their own. */
import { expect } from 'chai';
import bencode from 'bencode';
import { WireDecoder, WireError, DEFAULT_MAX_FRAME, encodeHandshake, type WireMessage } from '../../network/wire/peer-wire.js';
import {
  decodeExtendedHandshake, decodeMetadataMessage, encodeExtendedHandshake, encodeMetadataData, encodeMetadataReject, encodeMetadataRequest,
  featuresOf, metadataPieces, reservedBytes, MAX_METADATA_SIZE, MAX_REQQ, METADATA_PIECE, LOCAL_EXTENSIONS,
} from '../../network/wire/extension.js';

/** Decode whole frames with the peer wire decoder: what a connection would see. */
function frames(bytes: Buffer): WireMessage[] {
  const out: WireMessage[] = [];
  new WireDecoder((m) => out.push(m.type === 'extended' ? { ...m, payload: Buffer.from(m.payload) } : m), DEFAULT_MAX_FRAME, false).push(bytes);
  return out;
}

const payload = (m: WireMessage | undefined): Buffer => (m?.type === 'extended' ? m.payload : Buffer.alloc(0));
const dict = (v: unknown): Buffer => Buffer.from(bencode.encode(v));

describe('extension protocol codec (BEP 10)', () => {
  it('sets and reads the reserved bits: extension protocol, fast extension, DHT', () => {
    const r = reservedBytes();
    expect([r[5], r[7]]).to.deep.equal([0x10, 0x04]);
    expect(featuresOf(r)).to.deep.equal({ extensions: true, fast: true, dht: false });
    expect(featuresOf(Buffer.alloc(8))).to.deep.equal({ extensions: false, fast: false, dht: false });
    expect(featuresOf(reservedBytes({ dht: true }))).to.deep.equal({ extensions: false, fast: false, dht: true });
    // The handshake carries them.
    const got: WireMessage[] = [];
    new WireDecoder((m) => got.push(m), DEFAULT_MAX_FRAME, true).push(encodeHandshake(Buffer.alloc(20, 1), Buffer.alloc(20, 2), r));
    const [hs] = got;
    expect(hs?.type === 'handshake' && featuresOf(hs.reserved)).to.deep.equal({ extensions: true, fast: true, dht: false });
  });

  it('round-trips an extended handshake as a framed message with id 0', () => {
    const [m] = frames(encodeExtendedHandshake({ v: 'Shoal 0.1.0', reqq: 512, metadataSize: 1234, port: 6881 }));
    expect(m?.type === 'extended' && m.id).to.equal(0);
    const h = decodeExtendedHandshake(payload(m));
    expect([...h.m]).to.deep.equal(Object.entries(LOCAL_EXTENSIONS));
    expect(h).to.deep.include({ v: 'Shoal 0.1.0', reqq: 512, metadataSize: 1234, port: 6881 });
  });

  it('reads what real clients send and bounds it: reqq capped, control characters blanked, id 0 kept (extension off)', () => {
    const h = decodeExtendedHandshake(dict({ m: { ut_metadata: 3, ut_pex: 0, lt_donthave: 7 }, v: Buffer.from('libtorrent\x1b[31m'), reqq: 10 ** 9, yourip: Buffer.from([127, 0, 0, 1]) }));
    expect(h.m.get('ut_metadata')).to.equal(3);
    expect(h.m.get('ut_pex')).to.equal(0);
    expect(h.reqq).to.equal(MAX_REQQ);
    expect(h.v).to.equal('libtorrent?[31m');
  });

  it('refuses what is not an extended handshake, with the reason', () => {
    const bad: Array<[Buffer, RegExp]> = [
      [Buffer.from('le'), /not a bencoded dictionary/],
      [Buffer.from('d1:m'), /not valid bencode/],
      [dict({ m: 5 }), /m is not a dictionary/],
      [dict({ m: { ut_metadata: 300 } }), /bad id for ut_metadata/],
      [dict({ m: { ['x'.repeat(65)]: 1 } }), /extension name too long/],
      [dict({ m: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`e${i}`, 1])) }), /more than 64 extensions/],
      [dict({ m: {}, metadata_size: MAX_METADATA_SIZE + 1 }), /metadata_size .* out of bounds/],
      [dict({ m: {}, metadata_size: 0 }), /metadata_size .* out of bounds/],
    ];
    for (const [bytes, reason] of bad) expect(() => decodeExtendedHandshake(bytes), bytes.toString('latin1').slice(0, 40)).to.throw(WireError, reason);
  });
});

describe('metadata exchange codec (BEP 9)', () => {
  it('round-trips request, data (the raw piece after the dictionary) and reject', () => {
    expect(decodeMetadataMessage(payload(frames(encodeMetadataRequest(3, 7))[0]))).to.deep.equal({ type: 'request', piece: 7 });
    expect(decodeMetadataMessage(payload(frames(encodeMetadataReject(3, 7))[0]))).to.deep.equal({ type: 'reject', piece: 7 });
    const data = Buffer.alloc(METADATA_PIECE, 0x64); // 'd' bytes: the data must not be read as bencode
    const [m] = frames(encodeMetadataData(3, 1, METADATA_PIECE + 100, data));
    expect(m?.type === 'extended' && m.id).to.equal(3);
    const got = decodeMetadataMessage(payload(m));
    expect(got.type === 'data' && [got.piece, got.totalSize, got.data.equals(data)]).to.deep.equal([1, METADATA_PIECE + 100, true]);
  });

  it('a full metadata piece with its header fits the smallest frame limit', () => {
    const msg = encodeMetadataData(3, metadataPieces(MAX_METADATA_SIZE) - 1, MAX_METADATA_SIZE, Buffer.alloc(METADATA_PIECE));
    expect(msg.length - 4).to.be.at.most(DEFAULT_MAX_FRAME);
  });

  it('refuses malformed messages: unknown type, bad piece, bad size, an oversized piece', () => {
    const bad: Array<[Buffer, RegExp]> = [
      [dict({ msg_type: 9, piece: 0 }), /unknown msg_type 9/],
      [dict({ msg_type: 0, piece: -1 }), /bad piece/],
      [dict({ msg_type: 0 }), /bad piece/],
      [dict({ msg_type: 0, piece: metadataPieces(MAX_METADATA_SIZE) }), /bad piece/],
      [dict({ msg_type: 1, piece: 0 }), /bad total_size/],
      [dict({ msg_type: 1, piece: 0, total_size: MAX_METADATA_SIZE + 1 }), /bad total_size/],
      [Buffer.concat([dict({ msg_type: 1, piece: 0, total_size: 40000 }), Buffer.alloc(METADATA_PIECE + 1)]), /larger than 16 KiB/],
      [Buffer.from('xx'), /not a bencoded dictionary/],
    ];
    for (const [bytes, reason] of bad) expect(() => decodeMetadataMessage(bytes), bytes.toString('latin1').slice(0, 40)).to.throw(WireError, reason);
  });

  it('counts metadata pieces of 16 KiB', () => {
    expect([metadataPieces(1), metadataPieces(METADATA_PIECE), metadataPieces(METADATA_PIECE + 1)]).to.deep.equal([1, 1, 2]);
  });
});
