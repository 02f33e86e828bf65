import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import bencode from 'bencode';
import { buildMetainfo, encodeTorrent, parseTorrent, withTrackers, MetainfoError } from '../../network/metainfo/metainfo.js';
import { HashPool } from '../../network/library/hash-pool.js';

const run = promisify(execFile);
const MKTORRENT = '/usr/bin/mktorrent';
const KiB = 1024;

describe('metainfo', function () {
  describe('infohash equals mktorrent', function () {
    let dir: string;
    let pool: HashPool;

    before(async function () {
      dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-metainfo-'));
      pool = new HashPool({ workers: 2 });
    });
    after(async function () {
      await pool.close();
      await fsp.rm(dir, { recursive: true, force: true });
    });

    for (const pieceLength of [256 * KiB, 512 * KiB, 1024 * KiB]) {
      const sizes: Array<[string, number]> = [
        ['1 byte', 1],
        ['exactly one piece', pieceLength],
        ['one piece + 1', pieceLength + 1],
        ['~3.3 MB random', 3_300_017],
      ];
      for (const [label, size] of sizes) {
        it(`${label}, ${pieceLength / KiB} KiB pieces`, async function () {
          if (!existsSync(MKTORRENT)) {
            console.log(`      (skipped: ${MKTORRENT} is not installed)`);
            this.skip();
          }
          const file = path.join(dir, `f-${pieceLength}-${size}.bin`);
          await fsp.writeFile(file, randomBytes(size));
          const out = `${file}.torrent`;
          await run(MKTORRENT, ['-l', String(Math.log2(pieceLength)), '-o', out, file]);
          const theirs = parseTorrent(await fsp.readFile(out));

          const pieces = await pool.hashFile(file, pieceLength);
          const ours = buildMetainfo({ name: path.basename(file), length: size, pieceLength, pieces });

          expect(ours.pieces.equals(theirs.pieces)).to.equal(true);
          expect(ours.pieceCount).to.equal(Math.ceil(size / pieceLength));
          expect(ours.infoHashHex).to.equal(theirs.infoHashHex);
          // Writing our own .torrent and reading it back keeps the infohash.
          expect(parseTorrent(encodeTorrent(ours)).infoHashHex).to.equal(ours.infoHashHex);
          expect(parseTorrent(encodeTorrent(theirs)).infoHashHex).to.equal(theirs.infoHashHex);
        });
      }
    }

    it('round trip keeps announce URLs and the infohash', function () {
      const data = randomBytes(40_000);
      const m = buildMetainfo({
        name: 'a.bin',
        length: data.length,
        pieceLength: 16 * KiB,
        pieces: piecesOf(data, 16 * KiB),
        announce: ['http://t1.example/announce', 'http://t2.example/announce'],
      });
      const back = parseTorrent(encodeTorrent(m));
      expect(back.infoHashHex).to.equal(m.infoHashHex);
      expect(back.announce).to.deep.equal(m.announce);
      expect(back.name).to.equal('a.bin');
    });
  });

  describe('parseTorrent rejects', function () {
    const goodInfo = () => ({ length: 1, name: Buffer.from('ok.bin'), 'piece length': 16 * KiB, pieces: Buffer.alloc(20) });
    const torrent = (info: unknown) => Buffer.from(bencode.encode({ announce: Buffer.from('http://x/announce'), info }));

    const cases: Array<[string, Buffer, RegExp]> = [
      ['bytes that are not bencode', Buffer.from('this is not bencode'), /not a torrent file/],
      ['a dictionary without info', Buffer.from(bencode.encode({ announce: Buffer.from('http://x/') })), /no info dictionary/],
      ['a multi-file torrent with a path of ..', torrent({ ...goodInfo(), files: [{ length: 1, path: [Buffer.from('..'), Buffer.from('a')] }] }), /unsafe path in torrent.*dot entry/],
      ['a piece length that is too small', torrent({ ...goodInfo(), 'piece length': 1000 }), /piece length/],
      ['a piece length that is not an integer', torrent({ ...goodInfo(), 'piece length': Buffer.from('x') }), /piece length/],
      ['pieces of the wrong length', torrent({ ...goodInfo(), pieces: Buffer.alloc(40) }), /pieces holds 2 digests, expected 1/],
      ['a name that is ..', torrent({ ...goodInfo(), name: Buffer.from('..') }), /unsafe file name.*dot entry/],
      ['a name with a /', torrent({ ...goodInfo(), name: Buffer.from('dir/file') }), /unsafe file name.*separator/],
      ['a name with a NUL', torrent({ ...goodInfo(), name: Buffer.from('a\0b') }), /unsafe file name.*NUL/],
      ['an absolute path as name', torrent({ ...goodInfo(), name: Buffer.from('/etc/passwd') }), /unsafe file name/],
      ['a name with a backslash', torrent({ ...goodInfo(), name: Buffer.from('..\\x') }), /unsafe file name.*separator/],
    ];
    for (const [label, bytes, message] of cases) {
      it(label, function () {
        let caught: unknown;
        try {
          parseTorrent(bytes);
        } catch (err) {
          caught = err;
        }
        expect(caught).to.be.instanceOf(MetainfoError);
        expect((caught as Error).message).to.match(message);
      });
    }

    it('accepts the same torrent with a good name (the cases above differ only by what they test)', function () {
      expect(parseTorrent(torrent(goodInfo())).name).to.equal('ok.bin');
    });
  });
});

function piecesOf(data: Buffer, pieceLength: number): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += pieceLength) out.push(createHash('sha1').update(data.subarray(off, off + pieceLength)).digest());
  return Buffer.concat(out);
}

describe('withTrackers', function () {
  it('adds trackers after the torrent\'s own, without duplicates, and keeps the infohash', function () {
    const m = buildMetainfo({ name: 'a.bin', length: 20000, pieceLength: 16384, pieces: randomBytes(40), announce: ['http://own/announce'] });
    const t = withTrackers(m, ['http://boot/announce', 'http://own/announce', 'http://extra/announce']);
    expect(t.announce).to.deep.equal(['http://own/announce', 'http://boot/announce', 'http://extra/announce']);
    expect(t.infoHashHex).to.equal(m.infoHashHex);
    const back = parseTorrent(encodeTorrent(t));
    expect(back.infoHashHex).to.equal(m.infoHashHex);
    expect(back.announce).to.deep.equal(t.announce);
    expect(m.announce, 'the original is untouched').to.deep.equal(['http://own/announce']);
    expect(withTrackers(m, [])).to.equal(m);
  });
});
