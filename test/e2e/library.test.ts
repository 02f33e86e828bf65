import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildMetainfo } from '../../network/metainfo/metainfo.js';
import { HashPool } from '../../network/library/hash-pool.js';
import { HashCache } from '../../network/library/hash-cache.js';
import { Library, type LibraryInit, type SharedFile } from '../../network/library/library.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small pieces so small test files still have several. */
const PL = 16 * KiB;

function piecesOf(data: Uint8Array, pieceLength: number): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += pieceLength) out.push(createHash('sha1').update(data.subarray(off, off + pieceLength)).digest());
  return Buffer.concat(out);
}

function infoHashOf(data: Buffer, name: string, pieceLength = PL): string {
  return buildMetainfo({ name, length: data.length, pieceLength, pieces: piecesOf(data, pieceLength) }).infoHashHex;
}

async function until<T>(what: string, pred: () => T | undefined | null | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Set a file's mtime well in the past, so the library does not wait for it to settle. */
async function age(file: string, seconds = 60): Promise<void> {
  const t = new Date(Date.now() - seconds * 1000);
  await fsp.utimes(file, t, t);
}

describe('library', function () {
  let dir: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeEach(async function () {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-library-'));
  });
  afterEach(async function () {
    for (const c of cleanups.splice(0).reverse()) await c();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  function pool(workers = 2): HashPool {
    const p = new HashPool({ workers });
    cleanups.push(() => p.close());
    return p;
  }

  function library(init: Partial<LibraryInit> & { hashPool: HashPool }): Library {
    const lib = new Library({
      folders: [path.join(dir, 'shared')],
      cacheFile: path.join(dir, 'state', 'hash-cache.json'),
      pieceLength: PL,
      settleMs: 100,
      ...init,
    });
    cleanups.push(() => lib.stop());
    return lib;
  }

  async function put(rel: string, data: Buffer, old = true): Promise<string> {
    const file = path.join(dir, 'shared', rel);
    await fsp.mkdir(path.dirname(file), { recursive: true });
    await fsp.writeFile(file, data);
    if (old) await age(file);
    return file;
  }

  describe('HashPool', function () {
    it('sha1 equals crypto for a SharedArrayBuffer view and for a plain Buffer', async function () {
      const p = pool();
      const shared = new Uint8Array(new SharedArrayBuffer(512 * KiB));
      shared.set(randomBytes(shared.length));
      // A view in the middle of the shared buffer: offset and length must be honoured.
      const view = shared.subarray(1000, 300 * KiB);
      const plain = randomBytes(100_000).subarray(7, 90_007);
      expect((await p.sha1(view)).toString('hex')).to.equal(createHash('sha1').update(view).digest('hex'));
      expect((await p.sha1(plain)).toString('hex')).to.equal(createHash('sha1').update(plain).digest('hex'));
      expect((await p.sha1(new Uint8Array(0))).toString('hex')).to.equal(createHash('sha1').digest('hex'));
      expect(p.stats.piecesHashed).to.equal(3);
      expect(p.stats.bytesHashed).to.equal(view.length + plain.length);
    });

    it('lend hashes a prefix of a buffer in the worker and hands the same memory back', async function () {
      const p = pool(1);
      const results = await Promise.all(
        [512 * KiB, 300_001, 1].map(async (size) => {
          const buf = Buffer.allocUnsafeSlow(512 * KiB);
          randomBytes(512 * KiB).copy(buf);
          const expected = createHash('sha1').update(buf.subarray(0, size)).digest('hex');
          const head = buf[0];
          const pending = p.lend(buf, size);
          expect(buf.buffer.byteLength, 'lent: detached while the worker has it').to.equal(0);
          const res = await pending;
          return { expected, head, res };
        }),
      );
      for (const { expected, head, res } of results) {
        expect(res.digest.toString('hex')).to.equal(expected);
        expect(res.buf.length, 'the whole buffer comes back, not just the hashed prefix').to.equal(512 * KiB);
        expect(res.buf[0]).to.equal(head);
      }
    });

    it('answers many concurrent sha1 calls, each with its own digest', async function () {
      const p = pool(3);
      const inputs = Array.from({ length: 500 }, (_, i) => {
        const b = new Uint8Array(new SharedArrayBuffer(16 * KiB + i));
        b.set(randomBytes(b.length));
        return b;
      });
      const digests = await Promise.all(inputs.map((b) => p.sha1(b)));
      digests.forEach((d, i) => expect(d.toString('hex')).to.equal(createHash('sha1').update(inputs[i]!).digest('hex')));
    });

    it('close() rejects pending tasks with a ClosedError, is idempotent, and refuses new work', async function () {
      const p = new HashPool({ workers: 1 });
      const big = Buffer.alloc(4 * MiB);
      const pending = Array.from({ length: 50 }, () => p.sha1(big).then(() => null, (e: Error) => e));
      await Promise.all([p.close(), p.close()]);
      const results = await Promise.all(pending);
      const closed = results.filter((e) => e?.name === 'ClosedError');
      expect(closed.length).to.be.greaterThan(0);
      for (const r of results) expect(r === null || r.name === 'ClosedError').to.equal(true);
      const after = await p.sha1(big).then(() => null, (e: Error) => e);
      expect(after?.name).to.equal('ClosedError');
    });

    it('a task on a worker that dies rejects, and a fresh worker takes the next tasks', async function () {
      const p = pool(1);
      const big = new Uint8Array(new SharedArrayBuffer(8 * MiB));
      await p.sha1(big); // the worker exists now
      const pending = p.sha1(big).then(() => null, (e: Error) => e);
      // White-box: kill the thread under the pool, as a crash would.
      const slots = (p as unknown as { slots: Array<{ worker: import('node:worker_threads').Worker }> }).slots;
      await slots[0]!.worker.terminate();
      const err = await pending;
      expect(err?.message).to.match(/hash worker/);
      const small = Buffer.from('still here');
      expect((await p.sha1(small)).toString('hex')).to.equal(createHash('sha1').update(small).digest('hex'));
    });

    it('hashFile of an empty file is empty; of a missing file rejects', async function () {
      const p = pool(1);
      const empty = path.join(dir, 'empty');
      await fsp.writeFile(empty, '');
      expect((await p.hashFile(empty, PL)).length).to.equal(0);
      const err = await p.hashFile(path.join(dir, 'nope'), PL).then(() => null, (e: NodeJS.ErrnoException) => e);
      expect(err?.code).to.equal('ENOENT');
    });

    it('hashFile of a 64 MiB file matches crypto without holding the file in memory', async function () {
      const p = pool(1);
      const file = path.join(dir, 'big.bin');
      const fh = await fsp.open(file, 'w');
      const chunk = randomBytes(MiB);
      for (let i = 0; i < 64; i++) {
        chunk.writeUInt32BE(i, 0);
        await fh.write(chunk);
      }
      await fh.close();
      await p.hashFile(path.join(dir, 'big.bin'), PL, undefined).catch(() => null); // warm the worker up
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 2);
      const pieces = await p.hashFile(file, 512 * KiB);
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      expect(peak - before, 'RSS growth while hashing 64 MiB').to.be.lessThan(32 * MiB);

      // Expected digests, computed here piece by piece.
      const expected: Buffer[] = [];
      const rd = await fsp.open(file, 'r');
      const buf = Buffer.alloc(512 * KiB);
      for (let pos = 0; ; pos += buf.length) {
        const { bytesRead } = await rd.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        expected.push(createHash('sha1').update(buf.subarray(0, bytesRead)).digest());
      }
      await rd.close();
      expect(pieces.equals(Buffer.concat(expected))).to.equal(true);
    });

    it('an aborted hashFile rejects with an AbortError soon, and the pool keeps working', async function () {
      const p = pool(1);
      const file = path.join(dir, 'abort.bin');
      const fh = await fsp.open(file, 'w');
      for (let i = 0; i < 128; i++) await fh.write(Buffer.alloc(MiB, i));
      await fh.close();
      const ac = new AbortController();
      const started = Date.now();
      const hashing = p.hashFile(file, 512 * KiB, ac.signal).then(() => null, (e: Error) => e);
      setTimeout(() => ac.abort(), 10);
      const err = await hashing;
      expect(err?.name).to.equal('AbortError');
      expect(Date.now() - started).to.be.lessThan(1000);
      const small = Buffer.from('hello');
      expect((await p.sha1(small)).toString('hex')).to.equal(createHash('sha1').update(small).digest('hex'));
      const already = await p.hashFile(file, PL, AbortSignal.abort()).then(() => null, (e: Error) => e);
      expect(already?.name).to.equal('AbortError');
    });
  });

  describe('HashCache', function () {
    it('starts empty, with a warning, from a corrupt cache file', async function () {
      const file = path.join(dir, 'cache.json');
      await fsp.writeFile(file, '{"version":1,"entries":[{"path":');
      const warnings: string[] = [];
      const logger = { warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as import('../../network/util/log.js').Logger;
      const cache = new HashCache({ file, logger });
      await cache.load();
      expect(cache.size).to.equal(0);
      expect(warnings.join()).to.match(/corrupt/);
      // And it can save over it.
      const data = path.join(dir, 'data.bin');
      await fsp.writeFile(data, 'x');
      const st = await fsp.stat(data);
      cache.set({ path: data, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, pieceLength: PL }, Buffer.alloc(20, 1));
      await cache.flush();
      const again = new HashCache({ file });
      await again.load();
      expect(again.get({ path: data, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, pieceLength: PL })?.equals(Buffer.alloc(20, 1))).to.equal(true);
      expect(again.get({ path: data, size: st.size, mtimeMs: st.mtimeMs + 1, ctimeMs: st.ctimeMs, pieceLength: PL })).to.equal(undefined);
      expect((await fsp.readdir(dir)).filter((n) => n.includes('.tmp-'))).to.deep.equal([]);
    });

    it('drops entries of files that no longer exist on save', async function () {
      const file = path.join(dir, 'cache.json');
      const cache = new HashCache({ file });
      await cache.load();
      const a = path.join(dir, 'a.bin');
      await fsp.writeFile(a, 'a');
      const st = await fsp.stat(a);
      cache.set({ path: a, size: 1, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, pieceLength: PL }, Buffer.alloc(20));
      cache.set({ path: path.join(dir, 'gone.bin'), size: 1, mtimeMs: 1, ctimeMs: 1, pieceLength: PL }, Buffer.alloc(20));
      await cache.flush();
      const saved = JSON.parse(await fsp.readFile(file, 'utf8')) as { entries: Array<{ path: string }> };
      expect(saved.entries.map((e) => e.path)).to.deep.equal([a]);
    });
  });

  describe('indexing and the cache', function () {
    it('indexes every file at start with the same infohash as a fresh hash', async function () {
      const a = randomBytes(50_000);
      const b = randomBytes(PL);
      await put('a.bin', a);
      await put('sub/dir/b.bin', b);
      await put('empty.txt', Buffer.alloc(0));
      const lib = library({ hashPool: pool(), watch: false });
      await lib.start();
      await lib.start(); // idempotent
      const byName = new Map(lib.files().map((f) => [f.name, f]));
      expect([...byName.keys()].sort()).to.deep.equal(['a.bin', 'empty.txt', 'sub/dir/b.bin']);
      const fb = byName.get('sub/dir/b.bin')!;
      expect(fb.metainfo.name).to.equal('b.bin');
      expect(fb.path).to.equal(path.join(dir, 'shared', 'sub', 'dir', 'b.bin'));
      expect(fb.folder).to.equal(path.join(dir, 'shared'));
      expect(fb.size).to.equal(PL);
      expect(fb.metainfo.infoHashHex).to.equal(infoHashOf(b, 'b.bin'));
      expect(lib.byInfoHash(infoHashOf(a, 'a.bin'))?.name).to.equal('a.bin');
      expect(lib.byInfoHash(infoHashOf(a, 'a.bin').toUpperCase())?.name).to.equal('a.bin');
      expect(lib.byInfoHash('00'.repeat(20))).to.equal(undefined);
    });

    it('a restart with the same cache file does not rehash unchanged files, but rehashes a changed one', async function () {
      const a = randomBytes(70_000);
      await put('a.bin', a);
      await put('b.bin', randomBytes(30_000));
      const p1 = pool();
      const first = library({ hashPool: p1, watch: false });
      await first.start();
      expect(p1.stats.filesHashed).to.equal(2);
      const hashes = first.files().map((f) => f.metainfo.infoHashHex).sort();
      await first.stop();

      const p2 = pool();
      const second = library({ hashPool: p2, watch: false });
      await second.start();
      expect(p2.stats.filesHashed).to.equal(0);
      expect(second.files().map((f) => f.metainfo.infoHashHex).sort()).to.deep.equal(hashes);
      await second.stop();

      const changed = Buffer.from(a);
      changed[0] = changed[0]! ^ 0xff;
      await put('a.bin', changed); // same size, new content and mtime
      const p3 = pool();
      const third = library({ hashPool: p3, watch: false });
      await third.start();
      expect(p3.stats.filesHashed).to.equal(1);
      expect(third.byInfoHash(infoHashOf(changed, 'a.bin'))?.name).to.equal('a.bin');
      expect(third.byInfoHash(infoHashOf(a, 'a.bin'))).to.equal(undefined);
    });

    it('survives a corrupt cache file', async function () {
      const a = randomBytes(20_000);
      await put('a.bin', a);
      const cacheFile = path.join(dir, 'state', 'hash-cache.json');
      await fsp.mkdir(path.dirname(cacheFile), { recursive: true });
      await fsp.writeFile(cacheFile, Buffer.from([0xff, 0x00, 0x7b, 0x22]));
      const p = pool();
      const lib = library({ hashPool: p, watch: false });
      await lib.start();
      expect(lib.byInfoHash(infoHashOf(a, 'a.bin'))?.name).to.equal('a.bin');
      await lib.stop();
      const saved = JSON.parse(await fsp.readFile(cacheFile, 'utf8')) as { entries: unknown[] };
      expect(saved.entries).to.have.length(1);
    });

    it('indexes two folders with the same relative name; byInfoHash finds either', async function () {
      const data = randomBytes(40_000);
      const other = path.join(dir, 'other');
      await put('same.bin', data);
      await fsp.mkdir(other, { recursive: true });
      await fsp.writeFile(path.join(other, 'same.bin'), data);
      await age(path.join(other, 'same.bin'));
      const lib = library({ hashPool: pool(), watch: false, folders: [path.join(dir, 'shared'), other] });
      await lib.start();
      expect(lib.files().map((f) => f.path).sort()).to.deep.equal([path.join(dir, 'shared', 'same.bin'), path.join(other, 'same.bin')].sort());
      expect(lib.byInfoHash(infoHashOf(data, 'same.bin'))?.name).to.equal('same.bin');
    });

    it('addFolder() indexes a new folder once, and waitFor() sees a .part renamed into place', async function () {
      await fsp.mkdir(path.join(dir, 'shared'), { recursive: true });
      const downloads = path.join(dir, 'downloads');
      await fsp.mkdir(downloads);
      const lib = library({ hashPool: pool(), watch: false });
      await lib.start();
      const added: SharedFile[] = [];
      lib.on('added', (f) => added.push(f));
      const data = randomBytes(33_333);
      await fsp.writeFile(path.join(downloads, 'movie.bin.part'), data);
      await lib.addFolder(downloads);
      await lib.addFolder(downloads);
      expect(lib.files()).to.have.length(0); // a .part is never served
      await fsp.rename(path.join(downloads, 'movie.bin.part'), path.join(downloads, 'movie.bin'));
      const f = await lib.waitFor(path.join(downloads, 'movie.bin'), 5000);
      expect(f.metainfo.infoHashHex).to.equal(infoHashOf(data, 'movie.bin'));
      expect(added.map((x) => x.name)).to.deep.equal(['movie.bin']);
      const err = await lib.waitFor(path.join(downloads, 'never.bin'), 300).then(() => null, (e: Error) => e);
      expect(err?.name).to.equal('TimeoutError');
    });

    it('search() is a literal, case-insensitive substring match, capped at 200 results', async function () {
      await put('Holiday Photos/Beach.JPG', Buffer.from('x'));
      await put('notes.txt', Buffer.from('y'));
      await put('a.b', Buffer.from('z'));
      const lib = library({ hashPool: pool(), watch: false });
      await lib.start();
      expect(lib.search('beach').map((f) => f.name)).to.deep.equal(['Holiday Photos/Beach.JPG']);
      expect(lib.search('PHOTOS/').map((f) => f.name)).to.deep.equal(['Holiday Photos/Beach.JPG']);
      expect(lib.search('')).to.deep.equal([]);
      expect(lib.search('..')).to.deep.equal([]);
      expect(lib.search('.*')).to.deep.equal([]);
      expect(lib.search('*')).to.deep.equal([]);
      expect(lib.search('a.b').map((f) => f.name)).to.deep.equal(['a.b']);
      expect(lib.search('.').map((f) => f.name).sort()).to.deep.equal(['Holiday Photos/Beach.JPG', 'a.b', 'notes.txt']);
      expect(lib.search('../notes.txt')).to.deep.equal([]);

      for (let i = 0; i < 230; i++) await put(`many/m${i}.dat`, Buffer.from(String(i)));
      await Promise.all([lib.rescan(), lib.rescan(), lib.rescan()]);
      expect(lib.search('.dat')).to.have.length(200);
    });
  });

  describe('names that are never served', function () {
    it('skips symlinks, dot-files, dot-directories, .part files, backslashes and control characters', async function () {
      const outside = path.join(dir, 'outside');
      await fsp.mkdir(outside);
      await fsp.writeFile(path.join(outside, 'secret.txt'), 'secret');
      await put('ok.txt', Buffer.from('ok'));
      await fsp.symlink(path.join(outside, 'secret.txt'), path.join(dir, 'shared', 'link.txt'));
      await fsp.symlink(outside, path.join(dir, 'shared', 'linkdir'));
      await put('.hidden', Buffer.from('h'));
      await put('.shoal/resume/x.json', Buffer.from('{}'));
      await put('movie.bin.part', Buffer.from('p'));
      await put('back\\slash.txt', Buffer.from('b'));
      await put('bell\x07.txt', Buffer.from('c'));
      await put('tab\there.txt', Buffer.from('t'));
      const lib = library({ hashPool: pool(), watch: true });
      await lib.start();
      expect(lib.files().map((f) => f.name)).to.deep.equal(['ok.txt']);
      expect(lib.search('secret')).to.deep.equal([]);

      // Nor are they picked up while watching, or when asked for by path.
      await fsp.symlink(path.join(outside, 'secret.txt'), path.join(dir, 'shared', 'late-link.txt'));
      await put('.late-hidden', Buffer.from('x'), false);
      await put('late.part', Buffer.from('x'), false);
      await put('later.txt', Buffer.from('fine'), false);
      await until('later.txt indexed', () => lib.search('later.txt').length === 1);
      for (const p of ['late-link.txt', 'linkdir/secret.txt', '.late-hidden', 'late.part']) {
        const err = await lib.waitFor(path.join(dir, 'shared', p), 300).then(() => null, (e: Error) => e);
        expect(err?.name, p).to.equal('TimeoutError');
      }
      await lib.rescan();
      expect(lib.files().map((f) => f.name).sort()).to.deep.equal(['later.txt', 'ok.txt']);
    });

    it('stops serving a file whose directory is swapped for a symlink to outside', async function () {
      const outside = path.join(dir, 'outside');
      await fsp.mkdir(outside);
      await fsp.writeFile(path.join(outside, 'x.bin'), 'outside');
      await put('sub/x.bin', Buffer.from('inside'));
      const lib = library({ hashPool: pool(), watch: false });
      await lib.start();
      expect(lib.files().map((f) => f.name)).to.deep.equal(['sub/x.bin']);
      await fsp.rm(path.join(dir, 'shared', 'sub'), { recursive: true });
      await fsp.symlink(outside, path.join(dir, 'shared', 'sub'));
      await lib.rescan();
      expect(lib.files()).to.deep.equal([]);
      const err = await lib.waitFor(path.join(dir, 'shared', 'sub', 'x.bin'), 300).then(() => null, (e: Error) => e);
      expect(err?.name).to.equal('TimeoutError');
    });
  });

  describe('watching', function () {
    it('emits added for a new file, removed+added for a change, removed for a deletion', async function () {
      await fsp.mkdir(path.join(dir, 'shared'), { recursive: true });
      const lib = library({ hashPool: pool(), rescanIntervalMs: 60_000 });
      await lib.start();
      const events: Array<[string, SharedFile]> = [];
      lib.on('added', (f) => events.push(['added', f]));
      lib.on('removed', (f) => events.push(['removed', f]));

      const v1 = randomBytes(25_000);
      await put('new.bin', v1, false);
      const added = await until('added', () => events.find(([e]) => e === 'added')?.[1]);
      expect(added.name).to.equal('new.bin');
      expect(added.metainfo.infoHashHex).to.equal(infoHashOf(v1, 'new.bin'));

      events.length = 0;
      const v2 = randomBytes(26_000);
      await put('new.bin', v2, false);
      await until('re-indexed', () => events.length >= 2);
      expect(events.map(([e]) => e)).to.deep.equal(['removed', 'added']);
      expect(events[0]![1].metainfo.infoHashHex).to.equal(infoHashOf(v1, 'new.bin'));
      expect(events[1]![1].metainfo.infoHashHex).to.equal(infoHashOf(v2, 'new.bin'));
      expect(lib.byInfoHash(infoHashOf(v1, 'new.bin'))).to.equal(undefined);

      // Touched but identical: same torrent, nothing to announce.
      events.length = 0;
      await fsp.utimes(path.join(dir, 'shared', 'new.bin'), new Date(), new Date());
      await new Promise((r) => setTimeout(r, 500));
      await lib.rescan();
      expect(events).to.deep.equal([]);

      await fsp.unlink(path.join(dir, 'shared', 'new.bin'));
      await until('removed', () => events.length >= 1);
      expect(events.map(([e, f]) => [e, f.name])).to.deep.equal([['removed', 'new.bin']]);
      expect(lib.files()).to.deep.equal([]);
    });

    it('a file still being written ends up indexed with the final content', async function () {
      await fsp.mkdir(path.join(dir, 'shared'), { recursive: true });
      const p = pool();
      const lib = library({ hashPool: p, settleMs: 300 });
      await lib.start();
      const added: SharedFile[] = [];
      lib.on('added', (f) => added.push(f));
      const file = path.join(dir, 'shared', 'growing.bin');
      const fh = await fsp.open(file, 'w');
      const parts: Buffer[] = [];
      for (let i = 0; i < 10; i++) {
        const b = randomBytes(20_000);
        parts.push(b);
        await fh.write(b);
        await new Promise((r) => setTimeout(r, 100));
      }
      await fh.close();
      const want = infoHashOf(Buffer.concat(parts), 'growing.bin');
      await until('final content indexed', () => lib.byInfoHash(want), 5000);
      expect(lib.files()).to.have.length(1);
      expect(added.at(-1)?.metainfo.infoHashHex).to.equal(want);
      // Waiting for it to settle means it was hashed once, not once per write.
      expect(p.stats.filesHashed).to.be.at.most(2);
    });

    it('a directory moved in is indexed, and removing it removes its files', async function () {
      await fsp.mkdir(path.join(dir, 'shared'), { recursive: true });
      const lib = library({ hashPool: pool() });
      await lib.start();
      const staging = path.join(dir, 'staging', 'album');
      await fsp.mkdir(staging, { recursive: true });
      await fsp.writeFile(path.join(staging, 'one.mp3'), randomBytes(1000));
      await fsp.writeFile(path.join(staging, 'two.mp3'), randomBytes(1000));
      await fsp.rename(staging, path.join(dir, 'shared', 'album'));
      await until('album indexed', () => lib.files().length === 2);
      expect(lib.files().map((f) => f.name).sort()).to.deep.equal(['album/one.mp3', 'album/two.mp3']);
      await fsp.rm(path.join(dir, 'shared', 'album'), { recursive: true });
      await until('album removed', () => lib.files().length === 0);
    });
  });
});
