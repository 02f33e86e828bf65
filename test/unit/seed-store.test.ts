/**
 * SeedStore over the node's OpenFiles: a shared file that is gone when the store next opens it
 * (deleted, or a symlink swapped in) is refused and reported as a change, like one that
 * changed in place; a change is reported once, not once per piece; and once the file has been
 * hashed again and found to hold its torrent still, refused pieces are served again.
 */
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { buildMetainfo, type Metainfo } from '../../network/metainfo/metainfo.js';
import { PieceRefusedError, type PieceHasher } from '../../network/storage/piece-reader.js';
import { FileChangedError, SeedStore } from '../../network/storage/seed-store.js';
import { OpenFiles } from '../../network/storage/open-files.js';
import { UploadMemory } from '../../network/storage/upload-memory.js';
import { stampOf, type FileStamp } from '../../network/util/file-stamp.js';
import { cleanup, rejection, tempDir, waitFor } from '../helpers.js';

const PIECE = 16 * 1024;
const PIECES = 8;

const hasher: PieceHasher = {
  async lend(buf: Buffer, size: number) {
    return { digest: createHash('sha1').update(buf.subarray(0, size)).digest(), buf };
  },
};

function metainfoOf(name: string, content: Buffer): Metainfo {
  const pieces: Buffer[] = [];
  for (let i = 0; i < content.length; i += PIECE) pieces.push(createHash('sha1').update(content.subarray(i, i + PIECE)).digest());
  return buildMetainfo({ name, length: content.length, pieceLength: PIECE, pieces: Buffer.concat(pieces) });
}

describe('seed store: a shared file that changes or goes away', function () {
  let dir: string;
  let file: string;
  let content: Buffer;
  let m: Metainfo;
  let files: OpenFiles;
  let expected: FileStamp | undefined;
  let changes: string[];

  beforeEach(async () => {
    dir = await tempDir('shoal-seed-store-');
    file = path.join(dir, 'a.bin');
    content = randomBytes(PIECES * PIECE);
    await fsp.writeFile(file, content);
    m = metainfoOf('a.bin', content);
    files = new OpenFiles(4);
    expected = stampOf(await fsp.stat(file));
    changes = [];
  });
  afterEach(async () => {
    await files.closeAll();
    await cleanup(dir);
  });

  const open = (memory = new UploadMemory(4 * 1024 * 1024)) =>
    SeedStore.open({ file, metainfo: m, files, memory, hasher, expected: () => expected, changed: (why) => changes.push(why) });

  it('a file deleted while its descriptor was closed: each piece is refused saying the file is gone, and the change is reported once', async function () {
    const store = await open();
    expect((await store.reader.piece(0))!.buf.equals(content.subarray(0, PIECE))).to.equal(true);
    files.forget(file); // the LRU closed it to make room for other files
    await fsp.rm(file);
    for (const i of [1, 2, 3]) {
      const err = await rejection(store.reader.piece(i));
      expect(err, err.message).to.be.instanceOf(PieceRefusedError);
      expect(err.message).to.match(new RegExp(`piece ${i} could not be read: the file is gone \\(ENOENT\\)`));
    }
    expect(changes, 'one report for the whole file').to.have.length(1);
    expect(changes[0]).to.match(/the file is gone \(ENOENT\)/);
    await store.close();
  });

  it('a symlink swapped in for the file is never followed: refused as gone (ELOOP)', async function () {
    const store = await open();
    files.forget(file);
    const elsewhere = path.join(dir, 'secret.bin');
    await fsp.writeFile(elsewhere, content);
    await fsp.rm(file);
    await fsp.symlink(elsewhere, file);
    const err = await rejection(store.reader.piece(2));
    expect(err).to.be.instanceOf(PieceRefusedError);
    expect(err.message).to.match(/the file is gone \(ELOOP\)/);
    expect(changes).to.have.length(1);
    await store.close();
  });

  it('a file gone before its store opens: FileChangedError naming the reason', async function () {
    await fsp.rm(file);
    const err = await rejection(open());
    expect(err).to.be.instanceOf(FileChangedError);
    expect(err.message).to.match(/is gone \(ENOENT\)/);
  });

  it('a file that shrank: the pieces past its end are refused, the change reported once', async function () {
    const store = await open();
    await fsp.truncate(file, 3 * PIECE);
    for (const i of [4, 5, 6, 7]) expect(await rejection(store.reader.piece(i))).to.be.instanceOf(PieceRefusedError);
    expect((await store.reader.piece(1))!.buf.equals(content.subarray(PIECE, 2 * PIECE)), 'a piece still whole is hashed and served').to.equal(true);
    expect(changes, changes.join('\n')).to.have.length(1);
    await store.close();
  });

  it('a folder torrent: a file changed under it is noticed at the next read that touches it; its pieces are hashed, a bad one refused, the change reported once', async function () {
    const root = path.join(dir, 'album');
    await fsp.mkdir(root);
    const a = randomBytes(3 * PIECE + 100);
    const b = randomBytes(2 * PIECE);
    await fsp.writeFile(path.join(root, 'a.bin'), a);
    await fsp.writeFile(path.join(root, 'b.bin'), b);
    const all = Buffer.concat([a, b]);
    const pieces: Buffer[] = [];
    for (let i = 0; i < all.length; i += PIECE) pieces.push(createHash('sha1').update(all.subarray(i, i + PIECE)).digest());
    const folder = buildMetainfo({ name: 'album', length: all.length, pieceLength: PIECE, pieces: Buffer.concat(pieces), files: [{ path: ['a.bin'], length: a.length }, { path: ['b.bin'], length: b.length }] });
    const store = await SeedStore.open({ file: root, metainfo: folder, files, memory: new UploadMemory(4 * 1024 * 1024), hasher, expected: () => undefined, changed: (why) => changes.push(why) });
    expect((await store.reader.piece(4))!.buf.equals(all.subarray(4 * PIECE, 5 * PIECE))).to.equal(true);
    // b.bin rewritten in place, same size: its last bytes (piece 5) change; piece 4, read before, is served from memory.
    const fh = await fsp.open(path.join(root, 'b.bin'), 'r+');
    await fh.write(Buffer.from([b[2 * PIECE - 50]! ^ 0xff]), 0, 1, 2 * PIECE - 50);
    await fh.close();
    expect((await store.reader.piece(0))!.buf.equals(all.subarray(0, PIECE)), 'a.bin is as it was').to.equal(true);
    expect(changes, 'nothing read from b.bin yet').to.deep.equal([]);
    const err = await rejection(store.reader.piece(5));
    expect(err).to.be.instanceOf(PieceRefusedError);
    expect(err.message).to.equal('piece 5 no longer matches its hash: the file changed since it was hashed');
    expect(changes).to.deep.equal([`b.bin: its stamp (size, modification or change time, inode) is not the one it was hashed at`]);
    // Piece 3 straddles a.bin and b.bin, and its bytes in b.bin did not change: hashed, and served.
    expect((await store.reader.piece(3))!.buf.equals(all.subarray(3 * PIECE, 4 * PIECE))).to.equal(true);
    // a.bin deleted: what its open descriptor still reads is hashed, and served when it is right.
    await fsp.rm(path.join(root, 'a.bin'));
    expect((await store.reader.piece(1))!.buf.equals(all.subarray(PIECE, 2 * PIECE))).to.equal(true);
    expect(changes, 'reported once until found whole again').to.have.length(1);
    await store.close();
  });

  it("a folder torrent reads through the node's open files: never more descriptors than their budget, whatever the number of files", async function () {
    const root = path.join(dir, 'many');
    const parts: Buffer[] = [];
    const list: Array<{ path: string[]; length: number }> = [];
    for (let i = 0; i < 12; i++) {
      const b = randomBytes(PIECE / 2 + 333 * i);
      await fsp.mkdir(root, { recursive: true });
      await fsp.writeFile(path.join(root, `f${i}.bin`), b);
      parts.push(b);
      list.push({ path: [`f${i}.bin`], length: b.length });
    }
    const all = Buffer.concat(parts);
    const hashes: Buffer[] = [];
    for (let i = 0; i < all.length; i += PIECE) hashes.push(createHash('sha1').update(all.subarray(i, i + PIECE)).digest());
    const m = buildMetainfo({ name: 'many', length: all.length, pieceLength: PIECE, pieces: Buffer.concat(hashes), files: list });
    const budget = new OpenFiles(2);
    const store = await SeedStore.open({ file: root, metainfo: m, files: budget, memory: new UploadMemory(4 * 1024 * 1024), hasher, expected: () => undefined, changed: (why) => changes.push(why) });
    const got = await Promise.all(Array.from({ length: m.pieceCount }, (_, i) => store.reader.piece(i)));
    got.forEach((p, i) => expect(p!.buf.equals(all.subarray(i * PIECE, (i + 1) * PIECE)), `piece ${i}`).to.equal(true));
    expect(budget.stats.peak, 'within the budget').to.be.at.most(2);
    expect(budget.stats.opens, 'every file opened, in turn').to.be.at.least(12);
    await store.close();
    await waitFor(() => budget.stats.open === 0, 2000, 'every descriptor closed with the store');
    await budget.closeAll();
  });

  it('hashed again and still its torrent (the change was undone): refused pieces are served again, and a new change is reported anew', async function () {
    const store = await open();
    const fh = await fsp.open(file, 'r+');
    await fh.write(Buffer.from([content[5 * PIECE]! ^ 1]), 0, 1, 5 * PIECE);
    expect(await rejection(store.reader.piece(5))).to.be.instanceOf(PieceRefusedError);
    await fh.write(content.subarray(5 * PIECE, 5 * PIECE + 1), 0, 1, 5 * PIECE);
    await fh.close();
    expect(await rejection(store.reader.piece(5)), 'still refused until the file is hashed again').to.be.instanceOf(PieceRefusedError);
    expect(changes).to.have.length(1);
    // The library hashed it again: the same torrent, at its new stamp.
    expected = stampOf(await fsp.stat(file));
    store.forgive();
    expect((await store.reader.piece(5))!.buf.equals(content.subarray(5 * PIECE, 6 * PIECE))).to.equal(true);
    await fsp.truncate(file, PIECE);
    expect(await rejection(store.reader.piece(6))).to.be.instanceOf(PieceRefusedError);
    expect(changes, 'a new change is news').to.have.length(2);
    await store.close();
  });
});
