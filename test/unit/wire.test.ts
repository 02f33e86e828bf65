import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  WireDecoder, WireError, type WireMessage, encodeHandshake, encodeHave, encodeBitfield, encodeRequest,
  encodeCancel, encodeReject, encodeRequests, encodePiece, encodePort, encodeExtended, KEEP_ALIVE, CHOKE, UNCHOKE, INTERESTED,
  NOT_INTERESTED, HAVE_ALL, HAVE_NONE, maxFrameFor, DEFAULT_MAX_FRAME,
} from '../../network/wire/peer-wire.js';
import { Bitfield } from '../../network/wire/bitfield.js';

const infoHash = randomBytes(20);
const peerId = Buffer.from('-SH0001-abcdefghijkl');
// Small enough that the every-split test stays fast; frame limits are tested separately.
const block = randomBytes(700);

/** A stream holding one of every message, and what it must decode to. */
function sample(): { bytes: Buffer; expected: WireMessage[] } {
  const bits = Buffer.from([0b10100000]);
  const parts: Array<[Buffer, WireMessage]> = [
    [encodeHandshake(infoHash, peerId), { type: 'handshake', infoHash, peerId, reserved: Buffer.alloc(8) }],
    [KEEP_ALIVE, { type: 'keep-alive' }],
    [CHOKE, { type: 'choke' }],
    [UNCHOKE, { type: 'unchoke' }],
    [INTERESTED, { type: 'interested' }],
    [NOT_INTERESTED, { type: 'not-interested' }],
    [encodeHave(7), { type: 'have', index: 7 }],
    [encodeBitfield(bits), { type: 'bitfield', bits }],
    [encodeRequest(1, 16384, 16384), { type: 'request', index: 1, begin: 16384, length: 16384 }],
    [encodePiece(2, 32768, block), { type: 'piece', index: 2, begin: 32768, block }],
    [encodeCancel(1, 16384, 16384), { type: 'cancel', index: 1, begin: 16384, length: 16384 }],
    [encodeReject(3, 0, 16384), { type: 'reject', index: 3, begin: 0, length: 16384 }],
    [encodePort(6881), { type: 'port', port: 6881 }],
    [HAVE_ALL, { type: 'have-all' }],
    [HAVE_NONE, { type: 'have-none' }],
    [encodeExtended(0, Buffer.from('d1:md11:ut_metadatai1eee')), { type: 'extended', id: 0, payload: Buffer.from('d1:md11:ut_metadatai1eee') }],
  ];
  return { bytes: Buffer.concat(parts.map((p) => p[0])), expected: parts.map((p) => p[1]) };
}

function decodeAll(chunks: Buffer[], maxFrame = DEFAULT_MAX_FRAME): WireMessage[] {
  const out: WireMessage[] = [];
  // Copy byte fields as a real consumer must: they are views valid only during the call.
  const d = new WireDecoder((m) => out.push(copyFields(m)), maxFrame);
  for (const c of chunks) d.push(c);
  return out;
}

function copyFields(m: WireMessage): WireMessage {
  const c: Record<string, unknown> = { ...m };
  for (const [k, v] of Object.entries(c)) if (Buffer.isBuffer(v)) c[k] = Buffer.from(v);
  return c as WireMessage;
}

describe('peer wire codec', () => {
  it('round-trips every message type in one chunk', () => {
    const { bytes, expected } = sample();
    expect(decodeAll([bytes])).to.deep.equal(expected);
  });

  it('decodes the same messages when the input is split at every byte boundary', () => {
    const { bytes, expected } = sample();
    for (let cut = 1; cut < bytes.length; cut++) {
      const got = decodeAll([bytes.subarray(0, cut), bytes.subarray(cut)]);
      expect(got, `split at ${cut}`).to.deep.equal(expected);
    }
  });

  it('decodes input fed one byte at a time and in three-way splits', () => {
    const { bytes, expected } = sample();
    const ones: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) ones.push(bytes.subarray(i, i + 1));
    expect(decodeAll(ones)).to.deep.equal(expected);
    for (let a = 1; a < 200; a += 7) {
      for (let b = a + 1; b < bytes.length; b += 997) {
        expect(decodeAll([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)])).to.deep.equal(expected);
      }
    }
  });

  it('encodes a batch of requests as the same bytes as one request at a time', () => {
    const reqs = [{ index: 0, begin: 0, length: 16384 }, { index: 7, begin: 32768, length: 100 }];
    expect(encodeRequests(reqs).equals(Buffer.concat(reqs.map((r) => encodeRequest(r.index, r.begin, r.length))))).to.equal(true);
    const out: WireMessage[] = [];
    new WireDecoder((msg) => out.push(msg), DEFAULT_MAX_FRAME, false).push(encodeRequests(reqs));
    expect(out).to.deep.equal(reqs.map((r) => ({ type: 'request', ...r })));
  });

  it('rejects a frame longer than the limit as soon as its length prefix arrives', () => {
    const d = new WireDecoder(() => {}, DEFAULT_MAX_FRAME, false);
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(0xfffffff0);
    expect(() => d.push(huge)).to.throw(WireError, /exceeds the limit/);
  });

  it('sizes the frame limit to the torrent: a bitfield fits, one byte more does not', () => {
    const pieces = 1_000_000;
    const max = maxFrameFor(pieces);
    expect(max).to.equal(1 + 125_000);
    const ok = new WireDecoder(() => {}, max, false);
    expect(() => ok.push(encodeBitfield(new Uint8Array(125_000)))).not.to.throw();
    const bad = new WireDecoder(() => {}, max, false);
    expect(() => bad.push(encodeBitfield(new Uint8Array(125_001)))).to.throw(WireError);
  });

  it('rejects a handshake for another protocol', () => {
    const hs = encodeHandshake(infoHash, peerId);
    hs.write('XitTorrent', 1, 'latin1');
    expect(() => decodeAll([hs])).to.throw(WireError, /handshake/);
  });

  it('rejects fixed-size messages of the wrong length', () => {
    const badHave = Buffer.from([0, 0, 0, 3, 4, 0, 1]);
    expect(() => new WireDecoder(() => {}, 100, false).push(badHave)).to.throw(WireError, /have message/);
    const badRequest = Buffer.from([0, 0, 0, 2, 6, 0]);
    expect(() => new WireDecoder(() => {}, 100, false).push(badRequest)).to.throw(WireError, /request message/);
    const shortPiece = Buffer.from([0, 0, 0, 5, 7, 0, 0, 0, 1]);
    expect(() => new WireDecoder(() => {}, 100, false).push(shortPiece)).to.throw(WireError, /piece message/);
  });

  it('passes unknown message ids through for the connection to ignore', () => {
    const out: WireMessage[] = [];
    new WireDecoder((m) => out.push(m), 100, false).push(Buffer.from([0, 0, 0, 3, 99, 1, 2]));
    expect(out).to.deep.equal([{ type: 'unknown', id: 99, payload: Buffer.from([1, 2]) }]);
  });

  it('hands out a whole piece block as a view of the input (no copy)', () => {
    const msg = encodePiece(0, 0, block);
    let got: Buffer | undefined;
    new WireDecoder((m) => { if (m.type === 'piece') got = m.block; }, DEFAULT_MAX_FRAME, false).push(msg);
    expect(got!.buffer).to.equal(msg.buffer);
  });
});

describe('bitfield', () => {
  it('validates size and spare bits from the wire', () => {
    expect(Bitfield.fromWire(10, new Uint8Array([0xff, 0xc0]))!.count()).to.equal(10);
    expect(Bitfield.fromWire(10, new Uint8Array([0xff, 0xe0]))).to.equal(null); // spare bit set
    expect(Bitfield.fromWire(10, new Uint8Array([0xff]))).to.equal(null); // too short
    expect(Bitfield.fromWire(10, new Uint8Array([0xff, 0xc0, 0]))).to.equal(null); // too long
  });

  it('sets, clears and counts bits in BEP 3 order', () => {
    const b = new Bitfield(9);
    expect(b.set(0)).to.equal(true);
    expect(b.set(0)).to.equal(false);
    b.set(8);
    expect(Array.from(b.bytes)).to.deep.equal([0x80, 0x80]);
    expect(b.count()).to.equal(2);
    b.clear(0);
    expect([...b.indices()]).to.deep.equal([8]);
    expect(Bitfield.full(9).complete()).to.equal(true);
  });
});
