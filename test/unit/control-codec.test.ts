/** The control protocol's codec on its own: line framing with a hard cap, and every request and answer schema-checked. */
import { expect } from 'chai';
import {
  LineDecoder, LineTooLongError, ControlProtocolError, MAX_REQUEST_LINE, MAX_RESPONSE_LINE,
  parseRequest, parseResponse, encodeMessage, type ControlResponse,
} from '../../network/wire/control-codec.js';
import { encodeTorrent } from '../../network/metainfo/metainfo.js';
import { SOME_INFOHASH, smallMetainfo } from '../fixtures.js';

const HASH = SOME_INFOHASH;
const makeMetainfo = smallMetainfo;

describe('control codec: LineDecoder', () => {
  // Multi-byte characters of 2, 3 and 4 bytes, a CRLF line and an empty line.
  const lines = ['{"type":"search","filename":"café"}', '€uro ☃', '', 'clef 𝄞 end', 'plain'];
  const bytes = Buffer.from(lines.map((l, i) => l + (i === 1 ? '\r\n' : '\n')).join(''), 'utf8');

  it('decodes the same lines for every single split point', () => {
    for (let i = 0; i <= bytes.length; i++) {
      const d = new LineDecoder(1024);
      const out = [...d.push(bytes.subarray(0, i)), ...d.push(bytes.subarray(i))];
      expect(out, `split at ${i}`).to.deep.equal(lines);
      expect(d.bufferedBytes).to.equal(0);
    }
  });

  it('decodes the same lines for every pair of split points', () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        const d = new LineDecoder(1024);
        const out = [...d.push(bytes.subarray(0, i)), ...d.push(bytes.subarray(i, j)), ...d.push(bytes.subarray(j))];
        expect(out, `split at ${i},${j}`).to.deep.equal(lines);
      }
    }
  });

  it('decodes byte by byte, and keeps an unterminated tail for later', () => {
    const d = new LineDecoder(1024);
    const out: string[] = [];
    for (const b of bytes) out.push(...d.push(Buffer.from([b])));
    expect(out).to.deep.equal(lines);
    expect(d.push(Buffer.from('tail'))).to.deep.equal([]);
    expect(d.bufferedBytes).to.equal(4);
    expect(d.push(Buffer.from('\n'))).to.deep.equal(['tail']);
  });

  it('is not confused when the caller reuses its chunk buffer', () => {
    const d = new LineDecoder(64);
    const chunk = Buffer.from('abc');
    d.push(chunk);
    chunk.write('xyz');
    expect(d.push(Buffer.from('\n'))).to.deep.equal(['abc']);
  });

  it('accepts a line of exactly the limit, with or without \\r', () => {
    expect(new LineDecoder(8).push(Buffer.from('12345678\n'))).to.deep.equal(['12345678']);
    const d = new LineDecoder(8);
    expect(d.push(Buffer.from('12345678\r'))).to.deep.equal([]);
    expect(d.push(Buffer.from('\n'))).to.deep.equal(['12345678']);
  });

  it('throws as soon as the unterminated line passes the limit, without buffering further', () => {
    const d = new LineDecoder(MAX_REQUEST_LINE);
    const kib = Buffer.alloc(1024, 0x61);
    for (let i = 0; i < 8; i++) {
      expect(d.push(kib)).to.deep.equal([]);
      expect(d.bufferedBytes).to.be.at.most(MAX_REQUEST_LINE);
    }
    expect(() => d.push(Buffer.from('b'))).to.throw(LineTooLongError);
    expect(d.bufferedBytes).to.equal(0);
    // Poisoned: the stream has lost its framing, so every later push fails too.
    expect(() => d.push(Buffer.from('\n{"type":"list"}\n'))).to.throw(LineTooLongError);
  });

  it('throws on a complete over-long line that arrives in one chunk', () => {
    const d = new LineDecoder(8);
    let err: unknown;
    try {
      d.push(Buffer.from('ok\n123456789\n'));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(LineTooLongError);
    expect(err).to.be.instanceOf(ControlProtocolError);
    expect((err as Error).name).to.equal('LineTooLongError');
    expect((err as Error).message).to.match(/8 bytes/);
  });

  it('exports the agreed limits', () => {
    expect(MAX_REQUEST_LINE).to.equal(8 * 1024);
    expect(MAX_RESPONSE_LINE).to.equal(32 * 1024 * 1024);
  });
});

describe('control codec: requests', () => {
  const valid: Array<[string, unknown]> = [
    ['{"type":"search","filename":"cat.mp4"}', { type: 'search', filename: 'cat.mp4' }],
    ['{"type":"search","filename":"é","extra":1}', { type: 'search', filename: 'é' }],
    [`{"type":"search","filename":"${'x'.repeat(256)}"}`, { type: 'search', filename: 'x'.repeat(256) }],
    ['{"type":"list"}', { type: 'list' }],
    [`{"type":"metainfo","infohash":"${'AB'.repeat(20)}"}`, { type: 'metainfo', infohash: HASH }],
    ['{"type":"peers","page":3}', { type: 'peers' }],
    ['{"type":"subscribe"}', { type: 'subscribe' }],
  ];
  for (const [line, expected] of valid) {
    it(`parses ${line.slice(0, 60)}`, () => expect(parseRequest(line)).to.deep.equal(expected));
  }

  const invalid: Array<[string, RegExp]> = [
    ['not json', /bad JSON/],
    ['{"type":"list"', /bad JSON/],
    ['[1,2]', /JSON object/],
    ['"list"', /JSON object/],
    ['null', /JSON object/],
    ['{"filename":"x"}', /no "type"/],
    ['{"type":7}', /no "type"/],
    ['{"type":"delete"}', /unknown request type "delete"/],
    ['{"type":"LIST"}', /unknown request type/],
    ['{"type":"toString"}', /unknown request type/],
    ['{"type":"__proto__"}', /unknown request type/],
    ['{"type":"search"}', /field "filename"/],
    ['{"type":"search","filename":""}', /field "filename"/],
    ['{"type":"search","filename":42}', /field "filename"/],
    [`{"type":"search","filename":"${'x'.repeat(257)}"}`, /field "filename"/],
    ['{"type":"metainfo"}', /field "infohash"/],
    [`{"type":"metainfo","infohash":"${'a'.repeat(39)}"}`, /field "infohash".*40 hex/],
    [`{"type":"metainfo","infohash":"${'g'.repeat(40)}"}`, /field "infohash"/],
    [`{"type":"metainfo","infohash":"${'a'.repeat(41)}"}`, /field "infohash"/],
  ];
  for (const [line, why] of invalid) {
    it(`rejects ${line.slice(0, 60)}`, () => {
      expect(() => parseRequest(line)).to.throw(ControlProtocolError, why);
    });
  }
});

describe('control codec: responses', () => {
  const file = { name: 'cat.mp4', size: 123, infohash: HASH };
  const torrent = encodeTorrent(makeMetainfo('a.bin')).toString('base64');
  const valid: Array<[string, unknown]> = [
    [JSON.stringify({ type: 'FOUND', files: [file] }), { type: 'FOUND', files: [file] }],
    [JSON.stringify({ type: 'FOUND', files: [{ ...file, complete: false, x: 1 }] }), { type: 'FOUND', files: [{ ...file, complete: false }] }],
    [JSON.stringify({ type: 'NOT_FOUND', files: [] }), { type: 'NOT_FOUND', files: [] }],
    [JSON.stringify({ type: 'LIST', files: [] }), { type: 'LIST', files: [] }],
    [JSON.stringify({ type: 'LIST', files: Array(1000).fill(file) }), { type: 'LIST', files: Array(1000).fill(file) }],
    [JSON.stringify({ type: 'METAINFO', infohash: HASH.toUpperCase(), torrent }), { type: 'METAINFO', infohash: HASH, torrent }],
    [JSON.stringify({ type: 'PEERS', peers: [] }), { type: 'PEERS', peers: [] }],
    [
      JSON.stringify({ type: 'PEERS', peers: [{ id: 'n1', host: '10.0.0.1', port: 9000 }, { host: '::1', port: 1 }] }),
      { type: 'PEERS', peers: [{ id: 'n1', host: '10.0.0.1', port: 9000 }, { host: '::1', port: 1 }] },
    ],
    [JSON.stringify({ type: 'ERROR', error: 'nope' }), { type: 'ERROR', error: 'nope' }],
  ];
  for (const [line, expected] of valid) {
    it(`parses ${line.slice(0, 60)}`, () => expect(parseResponse(line)).to.deep.equal(expected));
  }

  const peer = { host: 'h', port: 1 };
  const invalid: Array<[string, unknown, RegExp]> = [
    ['garbage', 'garbage', /bad JSON/],
    ['lower-case type', { type: 'found', files: [file] }, /unknown response type "found"/],
    ['a request', { type: 'list' }, /unknown response type/],
    ['FOUND without files', { type: 'FOUND', files: [] }, /field "files"/],
    ['FOUND with 1001 files', { type: 'FOUND', files: Array(1001).fill(file) }, /field "files"/],
    ['LIST with 1001 files', { type: 'LIST', files: Array(1001).fill(file) }, /field "files"/],
    ['a file without infohash', { type: 'LIST', files: [{ name: 'a', size: 1 }] }, /field "files.0.infohash"/],
    ['a negative size', { type: 'LIST', files: [{ ...file, size: -1 }] }, /field "files.0.size"/],
    ['a fractional size', { type: 'LIST', files: [{ ...file, size: 1.5 }] }, /field "files.0.size"/],
    ['an empty name', { type: 'LIST', files: [{ ...file, name: '' }] }, /field "files.0.name"/],
    ['a string complete', { type: 'LIST', files: [{ ...file, complete: 'yes' }] }, /field "files.0.complete"/],
    ['NOT_FOUND with files', { type: 'NOT_FOUND', files: [file] }, /field "files"/],
    ['METAINFO without torrent', { type: 'METAINFO', infohash: HASH }, /field "torrent"/],
    ['METAINFO with non-base64', { type: 'METAINFO', infohash: HASH, torrent: 'not base64!' }, /field "torrent"/],
    ['METAINFO with a bad infohash', { type: 'METAINFO', infohash: 'xyz', torrent }, /field "infohash"/],
    ['PEERS with 201 peers', { type: 'PEERS', peers: Array(201).fill(peer) }, /field "peers"/],
    ['PEERS with port 0', { type: 'PEERS', peers: [{ host: 'h', port: 0 }] }, /field "peers.0.port"/],
    ['PEERS with port 65536', { type: 'PEERS', peers: [{ host: 'h', port: 65536 }] }, /field "peers.0.port"/],
    ['PEERS with no host', { type: 'PEERS', peers: [{ port: 1 }] }, /field "peers.0.host"/],
    ['ERROR without error', { type: 'ERROR' }, /field "error"/],
  ];
  for (const [what, value, why] of invalid) {
    it(`rejects ${what}`, () => {
      const line = typeof value === 'string' ? value : JSON.stringify(value);
      expect(() => parseResponse(line)).to.throw(ControlProtocolError, why);
    });
  }
});

describe('control codec: encodeMessage', () => {
  it('writes one line that parses back, even with a newline inside a string', () => {
    const msg: ControlResponse = { type: 'ERROR', error: 'two\nlines é' };
    const bytes = encodeMessage(msg);
    expect(bytes[bytes.length - 1]).to.equal(0x0a);
    const lines = new LineDecoder(1024).push(bytes);
    expect(lines).to.have.length(1);
    expect(parseResponse(lines[0]!)).to.deep.equal(msg);
    expect(parseRequest(encodeMessage({ type: 'search', filename: 'x' }).toString().trim())).to.deep.equal({ type: 'search', filename: 'x' });
  });
});
