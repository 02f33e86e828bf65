import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { parseMagnet, makeMagnet, MagnetError } from '../../network/metainfo/magnet.js';
import { buildMetainfo } from '../../network/metainfo/metainfo.js';

const HEX = '0123456789abcdef0123456789abcdef01234567';
// The same 20 bytes in RFC 4648 base32.
const B32 = 'AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH';

describe('magnet links', () => {
  describe('parseMagnet', () => {
    const good: Array<[string, string, ReturnType<typeof parseMagnet>]> = [
      ['a bare hex infohash', `magnet:?xt=urn:btih:${HEX}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      ['an upper-case hex infohash', `magnet:?xt=urn:btih:${HEX.toUpperCase()}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      ['a base32 infohash', `magnet:?xt=urn:btih:${B32}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      ['a lower-case base32 infohash', `magnet:?xt=urn:btih:${B32.toLowerCase()}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      ['upper-case scheme and urn', `MAGNET:?xt=URN:BTIH:${HEX}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      [
        'a percent-encoded name with + for spaces',
        `magnet:?xt=urn:btih:${HEX}&dn=My+Movie%20%C3%A9%2B.mkv`,
        { infoHash: HEX, name: 'My Movie é+.mkv', trackers: [], peers: [] },
      ],
      [
        'http and https trackers, udp dropped, duplicates once',
        `magnet:?xt=urn:btih:${HEX}&tr=http%3A%2F%2Ft.example%3A6969%2Fannounce&tr=udp%3A%2F%2Fu.example%3A80&tr=https://s.example/a?k=1%26x&tr=http%3A%2F%2Ft.example%3A6969%2Fannounce&tr=ftp://f.example/`,
        { infoHash: HEX, name: undefined, trackers: ['http://t.example:6969/announce', 'https://s.example/a?k=1&x'], peers: [] },
      ],
      [
        'x.pe peers: IPv4, name, [IPv6], encoded',
        `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:6881&x.pe=node.lan:9000&x.pe=%5B2001%3ADB8%3A%3A1%5D%3A51413&x.pe=[::1]:7`,
        {
          infoHash: HEX,
          name: undefined,
          trackers: [],
          peers: [
            { host: '10.0.0.1', port: 6881 },
            { host: 'node.lan', port: 9000 },
            { host: '2001:db8::1', port: 51413 },
            { host: '::1', port: 7 },
          ],
        },
      ],
      [
        'numbered keys, unknown keys and other xt namespaces next to btih',
        `magnet:?xt.1=urn:btmh:1220${'0'.repeat(64)}&xt.2=urn:btih:${HEX}&xl=10&ws=http://w/&kt=a+b&tr.1=http://t/&dn.1=n`,
        { infoHash: HEX, name: 'n', trackers: ['http://t/'], peers: [] },
      ],
      ['the same btih twice', `magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${B32}`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
      ['surrounding whitespace', `  magnet:?xt=urn:btih:${HEX}\n`, { infoHash: HEX, name: undefined, trackers: [], peers: [] }],
    ];
    for (const [what, uri, expected] of good) {
      it(`parses ${what}`, () => expect(parseMagnet(uri)).to.deep.equal(expected));
    }

    const bad: Array<[string, string, RegExp]> = [
      ['an empty string', '', /must start with "magnet:\?"/],
      ['an http URL', 'http://example.com/?xt=urn:btih:' + HEX, /must start with "magnet:\?"/],
      ['magnet without ?', `magnet:xt=urn:btih:${HEX}`, /must start/],
      ['no xt', 'magnet:?dn=x', /no xt=urn:btih:/],
      ['only a v2 xt', `magnet:?xt=urn:btmh:1220${'0'.repeat(64)}`, /urn:btmh.*does not speak/],
      ['a 39-digit hex', `magnet:?xt=urn:btih:${HEX.slice(1)}`, /40 hex or 32 base32/],
      ['a 41-digit hex', `magnet:?xt=urn:btih:${HEX}0`, /40 hex or 32 base32/],
      ['base32 with 1 and 8', `magnet:?xt=urn:btih:${'18'.repeat(16)}`, /40 hex or 32 base32/],
      ['an empty btih', 'magnet:?xt=urn:btih:', /40 hex or 32 base32/],
      ['two different btih', `magnet:?xt=urn:btih:${HEX}&xt=urn:btih:${'f'.repeat(40)}`, /two different/],
      ['bad percent-encoding', `magnet:?xt=urn:btih:${HEX}&dn=%E0%A4%A`, /percent-encoding in dn/],
      ['x.pe without port', `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1`, /x\.pe/],
      ['x.pe port 0', `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:0`, /x\.pe/],
      ['x.pe port 65536', `magnet:?xt=urn:btih:${HEX}&x.pe=10.0.0.1:65536`, /x\.pe/],
      ['x.pe bare IPv6', `magnet:?xt=urn:btih:${HEX}&x.pe=::1:80`, /x\.pe/],
      ['x.pe bad IPv6', `magnet:?xt=urn:btih:${HEX}&x.pe=[zz::1]:80`, /x\.pe/],
      ['x.pe bad IPv4', `magnet:?xt=urn:btih:${HEX}&x.pe=1.2.3.999:80`, /x\.pe/],
      ['x.pe with a path', `magnet:?xt=urn:btih:${HEX}&x.pe=host/x:80`, /x\.pe/],
      ['a huge link', `magnet:?xt=urn:btih:${HEX}&dn=${'a'.repeat(70_000)}`, /longer than/],
    ];
    for (const [what, uri, why] of bad) {
      it(`rejects ${what}`, () => {
        expect(() => parseMagnet(uri)).to.throw(MagnetError, why);
        try {
          parseMagnet(uri);
        } catch (err) {
          expect((err as Error).message).to.match(/^bad magnet link/);
        }
      });
    }
  });

  describe('makeMagnet', () => {
    const m = buildMetainfo({
      name: 'My file & more é.txt',
      length: 20000,
      pieceLength: 16384,
      pieces: randomBytes(40),
      announce: ['http://127.0.0.1:6969/announce', 'https://t.example/a?x=1&y=2'],
    });

    it('round-trips through parseMagnet', () => {
      const peers = [{ host: '127.0.0.1', port: 9000 }, { host: '::1', port: 9001 }];
      const uri = makeMagnet(m, { peers });
      expect(uri).to.match(new RegExp(`^magnet:\\?xt=urn:btih:${m.infoHashHex}&`));
      expect(uri).to.contain('xl=20000');
      expect(parseMagnet(uri)).to.deep.equal({ infoHash: m.infoHashHex, name: m.name, trackers: m.announce, peers });
    });

    it('needs no peers or trackers', () => {
      const bare = buildMetainfo({ name: 'a', length: 1, pieceLength: 16384, pieces: randomBytes(20) });
      expect(parseMagnet(makeMagnet(bare))).to.deep.equal({ infoHash: bare.infoHashHex, name: 'a', trackers: [], peers: [] });
    });
  });
});
