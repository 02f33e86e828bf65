/**
 * The kept torrents (seeded under their own infohash from data here) and how a torrent's data
 * is found: the list saved and read back, damaged records skipped, what a private torrent
 * withholds; the candidate holding the most pieces, hashed at the torrent's own piece length
 * by a real HashPool, on real files in a temp folder.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, type Metainfo } from '../../network/metainfo/metainfo.js';
import { KeptTorrents } from '../../network/library/kept-torrents.js';
import { findData, matchingPieces } from '../../network/library/data-match.js';
import { HashPool } from '../../network/library/hash-pool.js';
import { seedCommand, UsageError } from '../../cli/options.js';
import { captureLog, cleanup, randomFile, tempDir } from '../helpers.js';

const PIECE = 16 * 1024;

async function torrentOf(file: string, pieceLength = PIECE, extra: { private?: boolean; name?: string } = {}): Promise<Metainfo> {
  const content = await fsp.readFile(file);
  const digests: Buffer[] = [];
  for (let at = 0; at < content.length; at += pieceLength) digests.push(createHash('sha1').update(content.subarray(at, at + pieceLength)).digest());
  return buildMetainfo({ name: extra.name ?? path.basename(file), length: content.length, pieceLength, pieces: Buffer.concat(digests), private: extra.private, announce: ['http://tracker.example/announce'] });
}

describe('kept torrents', () => {
  let dir = '';
  beforeEach(async () => (dir = await tempDir('shoal-kept-')));
  afterEach(async () => cleanup(dir));

  const stat = async (file: string) => {
    const st = await fsp.lstat(file);
    return { path: file, size: st.size, mtimeMs: st.mtimeMs, dev: st.dev, ino: st.ino };
  };

  it('are saved and read back with their torrent (trackers and all), a damaged record skipped with a warning', async () => {
    const file = path.join(dir, 'a.bin');
    await randomFile(file, 40_000);
    const m = await torrentOf(file, PIECE, { private: true });
    const list = path.join(dir, 'state', 'torrents.json');
    const log = captureLog();
    const kept = new KeptTorrents({ file: list, log: log.logger });
    await kept.put({ metainfo: m, ...(await stat(file)), seeding: true });
    const saved = JSON.parse(await fsp.readFile(list, 'utf8')) as { torrents: Array<Record<string, unknown>> };
    saved.torrents.push({ ...saved.torrents[0], infohash: '0'.repeat(40) }, { junk: true });
    await fsp.writeFile(list, JSON.stringify(saved));

    const again = new KeptTorrents({ file: list, log: log.logger });
    await again.load();
    expect(again.list().map((k) => [k.metainfo.infoHashHex, k.metainfo.announce, k.metainfo.private, k.path, k.seeding])).to.deep.equal([
      [m.infoHashHex, ['http://tracker.example/announce'], true, file, true],
    ]);
    expect(again.seeded(m.infoHashHex)?.path).to.equal(file);
    expect(log.warnings()).to.deep.equal(['ignoring a damaged kept torrent', 'ignoring a damaged kept torrent']);
    await again.put({ ...again.get(m.infoHashHex)!, seeding: false });
    expect(again.seeded(m.infoHashHex)).to.equal(undefined);
    await again.delete(m.infoHashHex);
    const third = new KeptTorrents({ file: list, log: log.logger });
    await third.load();
    expect(third.list()).to.deep.equal([]);
  });

  it('a file that is not a list at all is an empty list and a warning; a missing one is quietly empty', async () => {
    const log = captureLog();
    const list = path.join(dir, 'torrents.json');
    await new KeptTorrents({ file: list, log: log.logger }).load();
    expect(log.warnings()).to.deep.equal([]);
    await fsp.writeFile(list, '{"version": 7');
    const kept = new KeptTorrents({ file: list, log: log.logger });
    await kept.load();
    expect(kept.list()).to.deep.equal([]);
    expect(log.warnings()).to.deep.equal(['ignoring a damaged list of kept torrents']);
  });

  it("withhold a private torrent's data by path and by inode (a renamed file too), a public one's never, a claim until released", async () => {
    const file = path.join(dir, 'secret.iso');
    const other = path.join(dir, 'open.iso');
    await randomFile(file, 30_000);
    await randomFile(other, 30_000);
    const kept = new KeptTorrents({ file: path.join(dir, 'torrents.json'), log: captureLog().logger });
    const [s, o] = [await stat(file), await stat(other)];
    await kept.put({ metainfo: await torrentOf(file, PIECE, { private: true }), ...s, seeding: false });
    await kept.put({ metainfo: await torrentOf(other), ...o, seeding: true });
    expect(kept.withholds(file, s)).to.equal(true);
    const renamed = path.join(dir, 'renamed.iso');
    await fsp.rename(file, renamed);
    expect(kept.withholds(renamed, await stat(renamed))).to.equal(true);
    expect(kept.withholds(other, o)).to.equal(false);
    kept.claim(o);
    expect(kept.withholds(other, o)).to.equal(true);
    kept.release(o);
    expect(kept.withholds(other, o)).to.equal(false);
  });
});

describe("finding a torrent's data", () => {
  let dir = '';
  const pool = new HashPool({ workers: 1 });
  beforeEach(async () => (dir = await tempDir('shoal-match-')));
  afterEach(async () => cleanup(dir));
  after(() => pool.close());

  it('takes the file holding every piece, hashed at the torrent\'s own piece length, whatever its name', async () => {
    const original = path.join(dir, 'original.bin');
    await randomFile(original, 5 * 32 * 1024 + 77);
    const m = await torrentOf(original, 32 * 1024, { name: 'film.mkv' });
    const same = path.join(dir, 'shared', 'copy.bin');
    await fsp.mkdir(path.dirname(same));
    await fsp.copyFile(original, same);
    const decoy = path.join(dir, 'shared', 'film.mkv');
    await randomFile(decoy, m.length);
    const found = await findData(m, [{ path: decoy }, { path: same }, { path: path.join(dir, 'absent') }], pool);
    expect(found?.path).to.equal(same);
    expect(found?.have.complete()).to.equal(true);
  });

  it('a damaged copy of its name is a partial match; digests the library knows at the same piece length are compared without reading', async () => {
    const original = path.join(dir, 'film.mkv');
    await randomFile(original, 6 * PIECE);
    const m = await torrentOf(original);
    const fh = await fsp.open(original, 'r+');
    await fh.write(Buffer.from('damage'), 0, 6, 2 * PIECE + 5);
    await fh.close();
    const found = await findData(m, [{ path: original }], pool);
    expect(found?.have.count()).to.equal(5);
    expect(found?.have.get(2)).to.equal(false);
    const known = Buffer.from(m.pieces);
    known.fill(0, 20, 40);
    const fromDigests = await findData(m, [{ path: original, known: { pieceLength: PIECE, pieces: known } }], pool);
    expect([...Array(6).keys()].filter((i) => fromDigests!.have.get(i))).to.deep.equal([0, 2, 3, 4, 5]);
    expect(matchingPieces(m, Buffer.alloc(5)).count(), 'digests of another piece count match nothing').to.equal(0);
  });

  it('nothing when no file of its size holds a piece; a file of another size is never read', async () => {
    const original = path.join(dir, 'a.bin');
    await randomFile(original, 3 * PIECE);
    const m = await torrentOf(original);
    const other = path.join(dir, 'b.bin');
    await randomFile(other, 3 * PIECE);
    const longer = path.join(dir, 'c.bin');
    await fsp.copyFile(original, longer);
    await fsp.appendFile(longer, 'x');
    expect(await findData(m, [{ path: other }, { path: longer }], pool)).to.equal(null);
  });
});

describe('node-cli seed X.torrent', () => {
  it('is node-cli with a --seed for each torrent named right after seed', () => {
    expect(seedCommand(['seed', 'a.torrent', 'B.TORRENT', '9000', '--shared', 'x'])).to.deep.equal(['9000', '--shared', 'x', '--seed', 'a.torrent', '--seed', 'B.TORRENT']);
    expect(seedCommand(['9000', '--seed', 'a.torrent'])).to.deep.equal(['9000', '--seed', 'a.torrent']);
    expect(() => seedCommand(['seed', '9000'])).to.throw(UsageError, /seed needs a .torrent file/);
  });
});
