/** The HTTP tracker's wire format, both directions, without sockets: the client's query and answer decoding, the tracker's query parsing and answer encoding. */
import { expect } from 'chai';
import bencode from 'bencode';
import {
  announceUrl, encodeAnnounceResponse, encodeFailure, encodeScrapeResponse, parseAnnounce, parseAnnounceResponse, parseScrape,
  percentDecode, percentEncodeBytes, TrackerError, TrackerRequestError, MAX_PARAMS, MAX_SCRAPE, MAX_TRACKER_PEERS,
  type AnnounceQuery, type AnnounceResult,
} from '../../network/wire/tracker-codec.js';

/** Not valid UTF-8, and full of characters a query string cares about. */
const INFO = Buffer.from([0xff, 0x80, 0x00, 0x26, 0x3d, 0x25, 0x20, 0x2b, 0x3f, 0x23, 0xc3, 0x28, 0x41, 0x7e, 0x2e, 0x2d, 0x5f, 0x2f, 0xfe, 0x01]);
const PEER = Buffer.from('-AR0001-\x80\x81abcdefghij', 'latin1');

function compact(...peers: Array<[string, number]>): Buffer {
  return Buffer.concat(peers.map(([ip, port]) => Buffer.from([...ip.split('.').map(Number), port >> 8, port & 0xff])));
}

describe('tracker codec: the client’s query', function () {
  const query = (url: string): AnnounceQuery => ({ url, infoHash: INFO, peerId: PEER, port: 1, uploaded: 0, downloaded: 0, left: 0 });

  it('percent-encodes every byte that is not unreserved', function () {
    expect(percentEncodeBytes(Buffer.from([0x41, 0x20, 0xff]))).to.equal('A%20%FF');
    expect(percentDecode(percentEncodeBytes(INFO))!.equals(INFO), 'what the tracker side decodes').to.equal(true);
  });

  it('extends a tracker URL that has its own query, and drops a fragment', function () {
    const url = announceUrl(query('http://t.example/announce?passkey=abc#frag'));
    expect(url).to.match(/^http:\/\/t\.example\/announce\?passkey=abc&info_hash=/);
    expect(url).not.to.contain('#');
  });

  it('refuses an info_hash or peer_id that is not 20 bytes', function () {
    expect(() => announceUrl({ ...query('http://t.example/announce'), infoHash: Buffer.alloc(19) })).to.throw(TypeError, /20 bytes/);
  });
});

describe('tracker codec: the client reads an answer', function () {
  it('parses compact peers, peers6 and the counters; drops port 0, duplicates and a torn entry', function () {
    const peers6 = Buffer.concat([Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([0x1a, 0xe1]), Buffer.alloc(18)]);
    const body = Buffer.from(
      bencode.encode({
        interval: 900,
        'min interval': 60,
        complete: 3,
        incomplete: 4,
        'warning message': 'be nice',
        peers: Buffer.concat([compact(['10.0.0.1', 6881], ['10.0.0.2', 0], ['10.0.0.1', 6881], ['10.0.0.3', 65535]), Buffer.from([1, 2, 3])]),
        peers6,
      }),
    );
    expect(parseAnnounceResponse(body)).to.deep.equal({
      interval: 900,
      minInterval: 60,
      complete: 3,
      incomplete: 4,
      warning: 'be nice',
      peers: [
        { host: '10.0.0.1', port: 6881 },
        { host: '10.0.0.3', port: 65535 },
        { host: '2001:db8::1', port: 6881 },
      ],
    } satisfies AnnounceResult);
  });

  it('parses a dictionary peer list, dropping entries that are not a usable address', function () {
    const body = Buffer.from(
      bencode.encode({
        interval: 60,
        peers: [
          { ip: '192.168.1.5', port: 51413, 'peer id': 'x'.repeat(20) },
          { ip: '::1', port: 7 },
          { ip: '192.168.1.6', port: 0 },
          { ip: 'evil host; rm', port: 1 },
          { ip: '192.168.1.7' },
          { ip: '192.168.1.8', port: 70000 },
          { ip: '192.168.1.9', port: -1 },
          'junk',
          7,
        ],
      }),
    );
    expect(parseAnnounceResponse(body).peers).to.deep.equal([{ host: '192.168.1.5', port: 51413 }, { host: '::1', port: 7 }]);
  });

  it('takes at most MAX_TRACKER_PEERS peers from one answer', function () {
    const many = Array.from({ length: MAX_TRACKER_PEERS + 500 }, (_, i): [string, number] => [`10.1.${i >> 8}.${i & 255}`, 6881]);
    const peers = parseAnnounceResponse(Buffer.from(bencode.encode({ interval: 60, peers: compact(...many) }))).peers;
    expect(peers).to.have.length(MAX_TRACKER_PEERS);
    expect(peers.at(-1)).to.deep.equal({ host: '10.1.3.231', port: 6881 });
  });

  it('defaults a missing interval and caps an absurd one', function () {
    expect(parseAnnounceResponse(Buffer.from('d5:peers0:e')).interval).to.equal(1800);
    expect(parseAnnounceResponse(Buffer.from('d8:intervali999999999e5:peers0:e')).interval).to.equal(86400);
  });

  it('refuses what is not a tracker answer, and carries a failure reason, with or without an error status', function () {
    expect(() => parseAnnounceResponse(Buffer.from('li1ei2ee'))).to.throw(TrackerError, /not a bencoded dictionary/);
    expect(() => parseAnnounceResponse(Buffer.from('d8:intervali'))).to.throw(TrackerError, 'tracker answer is not a bencoded dictionary');
    expect(() => parseAnnounceResponse(Buffer.from('<html>'), 502)).to.throw(TrackerError, 'tracker answered HTTP 502');
    expect(() => parseAnnounceResponse(encodeFailure('torrent not registered'))).to.throw(TrackerError, 'torrent not registered');
    expect(() => parseAnnounceResponse(encodeFailure('banned'), 403)).to.throw(TrackerError, 'banned');
    expect(() => parseAnnounceResponse(Buffer.from('d8:intervali60e5:peers0:e'), 500)).to.throw(TrackerError, 'tracker answered HTTP 500');
  });
});

describe('tracker codec: the tracker reads a query', function () {
  const q = (extra = '') => `info_hash=${percentEncodeBytes(INFO)}&peer_id=${percentEncodeBytes(PEER)}&port=6881${extra}`;

  it('decodes binary info_hash and peer_id byte for byte', function () {
    const p = parseAnnounce(q('&left=0&event=completed&numwant=7&compact=1'), '::ffff:10.1.2.3');
    expect(p.infoHash).to.equal(INFO.toString('hex'));
    expect(p.peerId.equals(PEER)).to.equal(true);
    expect(p).to.include({ host: '10.1.2.3', port: 6881, left: 0, event: 'completed', numwant: 7, compact: true });
    expect(percentDecode('%41%4a+b')!.toString('latin1')).to.equal('AJ b');
  });

  it('caps numwant and honours ip only from loopback', function () {
    expect(parseAnnounce(q('&numwant=100000'), '10.0.0.1').numwant).to.equal(200);
    expect(parseAnnounce(q(), '10.0.0.1').numwant).to.equal(50);
    expect(parseAnnounce(q('&ip=10.9.9.9'), '10.0.0.1').host).to.equal('10.0.0.1');
    expect(parseAnnounce(q('&ip=10.9.9.9'), '127.0.0.1').host).to.equal('10.9.9.9');
    expect(parseAnnounce(q('&ip=not-an-ip'), '127.0.0.1').host).to.equal('127.0.0.1');
  });

  it('refuses what is missing, malformed or too large, with a reason', function () {
    const bad: Array<[string, RegExp]> = [
      [`peer_id=${percentEncodeBytes(PEER)}&port=1`, /missing info_hash/],
      [q().replace(/info_hash=[^&]*/, 'info_hash=abc'), /info_hash must be 20 bytes/],
      [q().replace(/info_hash=[^&]*/, 'info_hash=%zz%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00%00'), /info_hash/],
      [q().replace('port=6881', 'port=70000'), /port must be at most 65535/],
      [q().replace('port=6881', 'port=-1'), /port must be a non-negative integer/],
      [q().replace('&port=6881', ''), /missing or invalid port/],
      [q('&event=exploded'), /event must be/],
      [q('&x=' + 'a'.repeat(5000)), /query longer than/],
      [q('&a=1'.repeat(MAX_PARAMS)), new RegExp(`more than ${MAX_PARAMS} query parameters`)],
    ];
    for (const [query, reason] of bad) expect(() => parseAnnounce(query, '10.0.0.1'), query.slice(0, 80)).to.throw(TrackerRequestError, reason);
  });

  it('parses scrapes: one or more info_hash, never none, at most MAX_SCRAPE', function () {
    expect(parseScrape(`info_hash=${percentEncodeBytes(INFO)}&info_hash=${'a'.repeat(20)}`)).to.deep.equal([INFO.toString('hex'), Buffer.from('a'.repeat(20)).toString('hex')]);
    expect(() => parseScrape('')).to.throw(TrackerRequestError, /missing info_hash/);
    const hashes = (n: number) => Array.from({ length: n }, (_, i) => `info_hash=${'h'.repeat(18)}${String(i).padStart(2, '0')}`).join('&');
    expect(parseScrape(hashes(MAX_SCRAPE))).to.have.length(MAX_SCRAPE);
    expect(() => parseScrape(hashes(MAX_SCRAPE + 1))).to.throw(TrackerRequestError, `at most ${MAX_SCRAPE} info_hash per scrape`);
    expect(() => parseScrape(hashes(MAX_PARAMS + 1))).to.throw(TrackerRequestError, `more than ${MAX_PARAMS} query parameters`);
  });
});

describe('tracker codec: the tracker’s answers', function () {
  const counts = { complete: 2, incomplete: 1, interval: 60, minInterval: 30 };

  it('writes compact IPv4 peers and IPv6 peers as peers6, which the client reads back', function () {
    const peers = [
      { host: '10.0.0.1', port: 6881 },
      { host: '2001:db8::1', port: 51413 },
      { host: '::ffff:10.0.0.9', port: 1 },
      { host: 'fe80::1%eth0', port: 2 },
      { host: '10.255.0.254', port: 65535 },
    ];
    const body = encodeAnnounceResponse({ ...counts, peers, compact: true, noPeerId: false });
    const raw = bencode.decode(body) as Record<string, Uint8Array>;
    expect(raw.peers).to.have.length(12);
    expect(Buffer.from(raw.peers6!).toString('hex')).to.equal(
      '20010db8000000000000000000000001c8d5' + '00000000000000000000ffff0a000009' + '0001' + 'fe800000000000000000000000000001' + '0002',
    );
    expect(parseAnnounceResponse(body)).to.deep.equal({
      interval: 60,
      minInterval: 30,
      complete: 2,
      incomplete: 1,
      peers: [
        { host: '10.0.0.1', port: 6881 },
        { host: '10.255.0.254', port: 65535 },
        { host: '2001:db8::1', port: 51413 },
        { host: '::ffff:a00:9', port: 1 },
        { host: 'fe80::1', port: 2 },
      ],
    });
    expect(Object.keys(bencode.decode(encodeAnnounceResponse({ ...counts, peers: peers.slice(0, 1), compact: true, noPeerId: false })) as object)).to.not.include('peers6');
  });

  it('writes dictionary peers with their peer id unless no_peer_id', function () {
    const peers = [{ host: '10.0.0.1', port: 6881, peerId: PEER }, { host: '::1', port: 7 }];
    const dicts = (noPeerId: boolean) =>
      (bencode.decode(encodeAnnounceResponse({ ...counts, peers, compact: false, noPeerId })) as { peers: Array<Record<string, unknown>> }).peers.map((p) =>
        Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v])),
      );
    expect(dicts(false)).to.deep.equal([{ ip: '10.0.0.1', 'peer id': PEER.toString('latin1'), port: 6881 }, { ip: '::1', port: 7 }]);
    expect(dicts(true)).to.deep.equal([{ ip: '10.0.0.1', port: 6881 }, { ip: '::1', port: 7 }]);
  });

  it('writes a scrape keyed by raw 20-byte hashes in byte order', function () {
    const files = new Map([
      ['ff'.repeat(20), { complete: 1, incomplete: 2, downloaded: 3 }],
      ['00'.repeat(20), { complete: 0, incomplete: 0, downloaded: 0 }],
    ]);
    const expected = Buffer.concat([
      Buffer.from('d5:filesd20:'), Buffer.alloc(20, 0x00), Buffer.from('d8:completei0e10:downloadedi0e10:incompletei0ee'),
      Buffer.from('20:'), Buffer.alloc(20, 0xff), Buffer.from('d8:completei1e10:downloadedi3e10:incompletei2eee'), Buffer.from('e'),
    ]);
    expect(encodeScrapeResponse(files).equals(expected)).to.equal(true);
  });

  it('writes a failure reason', function () {
    expect(encodeFailure('missing info_hash').toString()).to.equal('d14:failure reason17:missing info_hashe');
  });
});
