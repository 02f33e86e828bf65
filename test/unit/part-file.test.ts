/**
 * PartFile: a download's `<name>.part` and its resume record, on real files in a temp
 * folder, hashed with a real SHA-1 (node:crypto behind the `Hasher` contract).
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, parseTorrent, pieceSize, type Metainfo } from '../../network/metainfo/metainfo.js';
import { PartFile, type Hasher, type PartFileInit } from '../../network/storage/part-file.js';
import { Bitfield } from '../../network/wire/bitfield.js';
import { captureLog, cleanup, rejection, tempDir, waitFor } from '../helpers.js';

const PIECE = 16 * 1024;
/** Four whole pieces and a short fifth. */
const LENGTH = 4 * PIECE + 1000;

function torrentOf(name: string, content: Buffer): Metainfo {
  const digests: Buffer[] = [];
  for (let at = 0; at < content.length; at += PIECE) digests.push(createHash('sha1').update(content.subarray(at, at + PIECE)).digest());
  return buildMetainfo({ name, length: content.length, pieceLength: PIECE, pieces: Buffer.concat(digests) });
}

function pieceOf(m: Metainfo, content: Buffer, i: number): Buffer {
  return content.subarray(i * PIECE, i * PIECE + pieceSize(m, i));
}

/** The `Hasher` contract with node:crypto: SHA-1 of the first `size` bytes, the same buffer handed back. */
function sha1Hasher(): Hasher & { calls: number } {
  const h = {
    calls: 0,
    async lend(buf: Buffer, size: number) {
      h.calls++;
      return { digest: createHash('sha1').update(buf.subarray(0, size)).digest(), buf };
    },
  };
  return h;
}

interface Record {
  version: number;
  infohash: string;
  part: string;
  torrent: string;
  have: string;
  savedAt: number;
}

describe('part file and resume record', function () {
  let root: string;
  let downloadDir: string;
  let resumeDir: string;
  let content: Buffer;
  let m: Metainfo;
  let log: ReturnType<typeof captureLog>;
  let hasher: ReturnType<typeof sha1Hasher>;
  const parts: PartFile[] = [];

  beforeEach(async function () {
    root = await tempDir('shoal-part-');
    downloadDir = path.join(root, 'downloads');
    resumeDir = path.join(downloadDir, '.shoal', 'resume');
    content = randomBytes(LENGTH);
    m = torrentOf('movie.bin', content);
    log = captureLog();
    hasher = sha1Hasher();
  });
  afterEach(async function () {
    for (const p of parts.splice(0)) await p.close().catch(() => {});
    await cleanup(root);
  });

  function init(over: Partial<PartFileInit> = {}): PartFileInit {
    return { metainfo: m, downloadDir, resumeDir, hasher, logger: log.logger, ...over };
  }

  async function open(over: Partial<PartFileInit> = {}) {
    const res = await PartFile.open(init(over));
    parts.push(res.part);
    return res;
  }

  const recordPath = (meta = m) => PartFile.resumePath(resumeDir, meta.infoHashHex);

  async function readRecord(meta = m): Promise<Record> {
    return JSON.parse(await fsp.readFile(recordPath(meta), 'utf8')) as Record;
  }

  /** The pieces a record lists. */
  function listed(rec: Record, meta = m): number[] {
    const bits = Bitfield.fromWire(meta.pieceCount, Buffer.from(rec.have, 'base64'));
    expect(bits, 'the record holds a well-formed bitfield').to.not.equal(null);
    return [...bits!.indices()];
  }

  async function writeVerified(part: PartFile, ...indices: number[]) {
    for (const i of indices) {
      await part.writePiece(i, pieceOf(m, content, i));
      part.markVerified(i);
    }
  }

  describe('open', function () {
    it('a fresh open makes <name>.part of the full length, sparse, and a record listing nothing', async function () {
      const { part, resumed, rechecked } = await open();
      expect(part.partPath).to.equal(path.join(downloadDir, 'movie.bin.part'));
      expect([resumed, rechecked]).to.deep.equal([0, 0]);
      const st = await fsp.stat(part.partPath);
      expect(st.size).to.equal(LENGTH);
      expect(st.blocks * 512, 'holes cost no disk').to.be.lessThan(LENGTH);
      const rec = await readRecord();
      expect(rec.version).to.equal(1);
      expect(rec.infohash).to.equal(m.infoHashHex);
      expect(rec.part).to.equal('movie.bin.part');
      expect(parseTorrent(Buffer.from(rec.torrent, 'base64')).infoHashHex).to.equal(m.infoHashHex);
      expect(listed(rec)).to.deep.equal([]);
      expect(hasher.calls, 'nothing to recheck in a new file').to.equal(0);
    });

    it('two downloads of the same name get distinct .part files', async function () {
      const other = torrentOf('movie.bin', randomBytes(LENGTH));
      const a = await open();
      const b = await open({ metainfo: other });
      expect(a.part.partPath).to.equal(path.join(downloadDir, 'movie.bin.part'));
      expect(b.part.partPath).to.equal(path.join(downloadDir, `movie.bin.${other.infoHashHex.slice(0, 8)}.part`));
      expect((await readRecord(other)).part).to.equal(path.basename(b.part.partPath));
      expect((await readRecord()).part).to.equal('movie.bin.part');
    });
  });

  describe('the record lists verified pieces', function () {
    it('after writePiece + markVerified (the short last piece too), the record lists exactly those pieces', async function () {
      const { part } = await open({ saveIntervalMs: 20 });
      await writeVerified(part, 1, 4);
      expect([...part.have.indices()]).to.deep.equal([1, 4]);
      const rec = await waitFor(async () => {
        const r = await readRecord();
        return listed(r).length === 2 ? r : null;
      }, 5000, 'the scheduled save');
      expect(listed(rec)).to.deep.equal([1, 4]);
      const bytes = await fsp.readFile(part.partPath);
      expect(bytes.subarray(PIECE, 2 * PIECE).equals(pieceOf(m, content, 1))).to.equal(true);
      expect(bytes.subarray(4 * PIECE).equals(pieceOf(m, content, 4))).to.equal(true);
    });

    it('marks are saved together once the interval has passed, not one save per mark', async function () {
      const { part } = await open({ saveIntervalMs: 100 });
      const first = await readRecord();
      await part.writePiece(0, pieceOf(m, content, 0));
      await part.writePiece(2, pieceOf(m, content, 2));
      const markedAt = Date.now();
      part.markVerified(0);
      part.markVerified(2);
      const rec = await waitFor(async () => {
        const r = await readRecord();
        return r.savedAt !== first.savedAt ? r : null;
      }, 5000, 'the scheduled save');
      expect(rec.savedAt - markedAt, 'not saved before the interval').to.be.at.least(100 - 1);
      expect(listed(rec), 'one save for both marks').to.deep.equal([0, 2]);
    });

    it('saveNow writes at once and cancels the scheduled save', async function () {
      const { part } = await open({ saveIntervalMs: 50 });
      await writeVerified(part, 3);
      await part.saveNow();
      const rec = await readRecord();
      expect(listed(rec)).to.deep.equal([3]);
      await new Promise((r) => setTimeout(r, 150));
      expect((await readRecord()).savedAt, 'the timer set by markVerified did not save again').to.equal(rec.savedAt);
    });

    it('saves in flight are chained: one at a time, in the order asked, and the last one asked is what stays', async function () {
      const { part } = await open({ saveIntervalMs: 60_000 });
      for (let i = 0; i < m.pieceCount; i++) await part.writePiece(i, pieceOf(m, content, i));
      // Record writes made slow on purpose (each rename waits 20 ms), to see whether they overlap.
      let writing = 0;
      let mostAtOnce = 0;
      const { writeFile, rename } = fs.promises;
      fs.promises.writeFile = (async (...args: Parameters<typeof writeFile>) => {
        if (String(args[0]).startsWith(resumeDir)) mostAtOnce = Math.max(mostAtOnce, ++writing);
        return writeFile(...args);
      }) as typeof writeFile;
      fs.promises.rename = (async (from: string, to: string) => {
        if (!from.startsWith(resumeDir)) return rename(from, to);
        await new Promise((r) => setTimeout(r, 20));
        await rename(from, to);
        writing--;
      }) as typeof rename;
      const finished: number[] = [];
      try {
        const saves: Array<Promise<void>> = [];
        for (let i = 0; i < m.pieceCount; i++) {
          part.markVerified(i);
          saves.push(part.saveNow().then(() => void finished.push(i)));
        }
        await saves[saves.length - 1];
      } finally {
        Object.assign(fs.promises, { writeFile, rename });
      }
      expect(mostAtOnce, 'one record write at a time').to.equal(1);
      expect(finished, 'each earlier save done before the last resolves').to.deep.equal([0, 1, 2, 3, 4]);
      expect(listed(await readRecord())).to.deep.equal([0, 1, 2, 3, 4]);
      expect((await fsp.readdir(resumeDir)).filter((n) => n.includes('.tmp')), 'no temporary files left').to.deep.equal([]);
    });
  });

  describe('resume', function () {
    it('reopening resumes the listed pieces without hashing them again', async function () {
      const first = await open();
      await writeVerified(first.part, 0, 2, 4);
      await first.part.close();
      hasher.calls = 0;
      const { part, resumed, rechecked } = await open();
      expect(part.partPath).to.equal(first.part.partPath);
      expect([...part.have.indices()]).to.deep.equal([0, 2, 4]);
      expect([resumed, rechecked]).to.deep.equal([3, 0]);
      // The two unlisted pieces are holes: rechecked, and not found.
      expect(hasher.calls).to.equal(2);
      const bytes = await fsp.readFile(part.partPath);
      expect(bytes.subarray(2 * PIECE, 3 * PIECE).equals(pieceOf(m, content, 2))).to.equal(true);
    });

    it('pieces written but not yet listed (kill -9 before the record save) are found by the recheck; corrupt ones are not', async function () {
      const first = await open();
      await writeVerified(first.part, 0);
      await first.part.writePiece(1, pieceOf(m, content, 1)); // written, the crash came before markVerified
      await first.part.writePiece(4, pieceOf(m, content, 4)); // the short last piece
      const torn = Buffer.from(pieceOf(m, content, 2));
      torn[100]! ^= 0xff;
      await first.part.writePiece(2, torn); // a torn write
      await first.part.close(); // what a crash leaves: the record lists only piece 0
      expect(listed(await readRecord())).to.deep.equal([0]);

      const { part, resumed, rechecked } = await open();
      expect([...part.have.indices()]).to.deep.equal([0, 1, 4]);
      expect([resumed, rechecked]).to.deep.equal([3, 2]);
      expect(listed(await readRecord()), 'the recovered pieces are listed at once').to.deep.equal([0, 1, 4]);
      expect(log.records.some((r) => r.msg === 'recovered verified pieces the resume record had not listed yet' && r.pieces === 2)).to.equal(true);
    });
  });

  describe('a damaged record is ignored, and nothing outside the download folder is touched', function () {
    const outside = () => path.join(root, 'victim.part');
    const victim = Buffer.from('not yours to truncate');

    /** A download in progress (pieces 0 and 1 listed), then its record replaced by `damage`. */
    async function damaged(damage: (rec: Record) => string): Promise<Buffer> {
      const first = await open();
      await writeVerified(first.part, 0, 1);
      await first.part.close();
      const before = await fsp.readFile(first.part.partPath);
      await fsp.writeFile(outside(), victim);
      await fsp.writeFile(recordPath(), damage(await readRecord()));
      return before;
    }

    /** The record was not used: a new .part beside the old, which stays as it was, and the victim outside too. */
    async function expectIgnored(before: Buffer, res: { part: PartFile; resumed: number }) {
      expect(res.resumed).to.equal(0);
      expect(res.part.have.count()).to.equal(0);
      expect(res.part.partPath).to.equal(path.join(downloadDir, `movie.bin.${m.infoHashHex.slice(0, 8)}.part`));
      expect((await fsp.readFile(path.join(downloadDir, 'movie.bin.part'))).equals(before), 'the old .part is left alone').to.equal(true);
      expect(await fsp.readFile(outside())).to.deep.equal(victim);
      expect(await fsp.readdir(root)).to.have.members(['downloads', 'victim.part']);
      const rec = await readRecord();
      expect(rec.part, 'a good record replaced the damaged one').to.equal(path.basename(res.part.partPath));
    }

    it('bad JSON: a warning, a new .part', async function () {
      const before = await damaged(() => '{"version":1,"infohash":');
      await expectIgnored(before, await open());
      expect(log.warnings()).to.include('ignoring a damaged resume record');
    });

    it('a record missing fields: a warning', async function () {
      const before = await damaged((r) => JSON.stringify({ ...r, have: undefined }));
      await expectIgnored(before, await open());
      expect(log.warnings()).to.include('ignoring a damaged resume record');
    });

    it('a record naming another infohash', async function () {
      const before = await damaged((r) => JSON.stringify({ ...r, infohash: 'ab'.repeat(20) }));
      await expectIgnored(before, await open());
    });

    for (const [label, part] of [
      ['a relative path out of the folder', '../victim.part'],
      ['a path into a subfolder', '.shoal/../../victim.part'],
      ['an absolute path', '/victim.part'],
    ] as const) {
      it(`a part name with ${label} (${part}) is not opened`, async function () {
        const before = await damaged((r) => JSON.stringify({ ...r, part: part === '/victim.part' ? outside() : part }));
        await expectIgnored(before, await open());
      });
    }
  });

  describe('pending', function () {
    it('lists the metainfo of every download with a record, skipping other files and damaged records with a warning', async function () {
      const other = torrentOf('song.mp3', randomBytes(PIECE + 5));
      await open();
      await open({ metainfo: other });
      await fsp.writeFile(path.join(resumeDir, 'notes.txt'), 'x');
      await fsp.writeFile(path.join(resumeDir, `${'cd'.repeat(20)}.json`), 'garbage');
      // A record whose torrent is some other torrent than its infohash says.
      const a = await readRecord();
      const mismatched = 'ef'.repeat(20);
      await fsp.writeFile(path.join(resumeDir, `${mismatched}.json`), JSON.stringify({ ...a, infohash: mismatched }));
      // A record whose torrent is not a torrent.
      const broken = '01'.repeat(20);
      await fsp.writeFile(path.join(resumeDir, `${broken}.json`), JSON.stringify({ ...a, infohash: broken, torrent: Buffer.from('nope').toString('base64') }));

      const found = await PartFile.pending(resumeDir, log.logger);
      expect(found.map((x) => x.infoHashHex).sort()).to.deep.equal([m.infoHashHex, other.infoHashHex].sort());
      expect(found.find((x) => x.infoHashHex === other.infoHashHex)!.name).to.equal('song.mp3');
      expect(log.warnings()).to.include.members([
        'ignoring a damaged resume record',
        'ignoring a resume record whose torrent does not match its infohash',
        'ignoring a resume record with a damaged torrent',
      ]);
    });

    it('is empty when the folder does not exist', async function () {
      expect(await PartFile.pending(path.join(root, 'nowhere'), log.logger)).to.deep.equal([]);
    });
  });

  describe('finish and discard', function () {
    it('finish refuses before every piece is verified, and leaves the .part and the record', async function () {
      const { part } = await open();
      await writeVerified(part, 0, 1, 2, 3);
      const err = await rejection(part.finish());
      expect(err.message).to.equal('finish() before every wanted piece is verified');
      expect((await fsp.stat(part.partPath)).size).to.equal(LENGTH);
      await part.saveNow();
      expect(listed(await readRecord()), 'the record stays, and still saves').to.deep.equal([0, 1, 2, 3]);
    });

    it('finish renames the .part to the name and removes the record', async function () {
      const { part } = await open();
      await writeVerified(part, 0, 1, 2, 3, 4);
      const final = await part.finish();
      expect(final).to.equal(path.join(downloadDir, 'movie.bin'));
      expect((await fsp.readFile(final)).equals(content)).to.equal(true);
      expect(await fsp.readdir(downloadDir)).to.have.members(['movie.bin', '.shoal']);
      expect(await fsp.readdir(resumeDir)).to.deep.equal([]);
      expect(await PartFile.pending(resumeDir, log.logger)).to.deep.equal([]);
    });

    it('finish never replaces an existing file: name (1).ext, then name (2).ext', async function () {
      await fsp.mkdir(downloadDir, { recursive: true });
      await fsp.writeFile(path.join(downloadDir, 'movie.bin'), 'mine');
      await fsp.writeFile(path.join(downloadDir, 'movie (1).bin'), 'mine too');
      const { part } = await open();
      await writeVerified(part, 0, 1, 2, 3, 4);
      const final = await part.finish();
      expect(final).to.equal(path.join(downloadDir, 'movie (2).bin'));
      expect((await fsp.readFile(final)).equals(content)).to.equal(true);
      expect(await fsp.readFile(path.join(downloadDir, 'movie.bin'), 'utf8')).to.equal('mine');
      expect(await fsp.readFile(path.join(downloadDir, 'movie (1).bin'), 'utf8')).to.equal('mine too');
      expect(await fsp.readdir(downloadDir)).to.not.include('movie.bin.part');
    });

    for (const [remote, local] of [
      ['.bashrc', '_bashrc'],
      ['notes.part', 'notes_part'],
      ['COM1.txt', '_COM1.txt'],
      ['invoice\u202Etxt.exe', 'invoicetxt.exe'],
    ] as const) {
      it(`a torrent named ${JSON.stringify(remote)} is saved as ${JSON.stringify(local)}, with a warning`, async function () {
        m = torrentOf(remote, content);
        const { part } = await open();
        expect(path.basename(part.partPath)).to.equal(`${local}.part`);
        await writeVerified(part, 0, 1, 2, 3, 4);
        expect(await part.finish()).to.equal(path.join(downloadDir, local));
        expect(await fsp.readdir(downloadDir)).to.have.members([local, '.shoal']);
        expect(log.warnings().some((w) => w.startsWith('saving under another name: '))).to.equal(true);
      });
    }

    it('discard removes the .part and the record', async function () {
      const { part } = await open({ saveIntervalMs: 10 });
      await writeVerified(part, 0);
      await part.discard();
      expect(await fsp.readdir(downloadDir)).to.deep.equal(['.shoal']);
      await new Promise((r) => setTimeout(r, 50));
      expect(await fsp.readdir(resumeDir), 'no save scheduled before the discard brings the record back').to.deep.equal([]);
    });
  });
});
