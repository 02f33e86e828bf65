import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Node } from '../../network/index.js';
import {
  ContentUnavailableError, UnknownContentError, BadNameError, ExistsError, NoSpaceError, TooLargeError,
} from '../../network/index.js';
import { buildMetainfo, encodeTorrent } from '../../network/metainfo/metainfo.js';
import { randomFile, sha1File, startNode, waitFor, rejection, nodesPerTest } from '../helpers.js';
import { leechFromStaller } from '../fake-peer.js';

const KiB = 1024;
const MiB = 1024 * KiB;

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function slice(file: string, start: number, end: number): Promise<Buffer> {
  const fh = await fsp.open(file, 'r');
  try {
    const buf = Buffer.alloc(end - start + 1);
    await fh.read(buf, 0, buf.length, start);
    return buf;
  } finally {
    await fh.close();
  }
}

/** Every file and directory under `root`, relative. */
async function listAll(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(root, { withFileTypes: true, recursive: true })) {
    out.push(path.relative(root, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
  }
  return out.sort();
}

describe('content over HTTP ranges', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const { nodes, fakes } = fx;

  async function sharing(name: string, size: number, init: Parameters<typeof startNode>[1] = {}): Promise<{ node: Node; file: string; h: string }> {
    const file = path.join(fx.dir, name, 'shared', 'video.bin');
    await randomFile(file, size);
    const node = await startNode(path.join(fx.dir, name), init);
    nodes.push(node);
    return { node, file, h: node.files()[0]!.metainfo.infoHashHex };
  }

  it('reads ranges of a complete shared file: first byte, last byte, middle, whole', async () => {
    const size = 3 * MiB + 123;
    const { node, file, h } = await sharing('seed', size);
    expect(node.content(h)).to.deep.equal({ name: 'video.bin', length: size, pieceLength: 512 * KiB, complete: true, multiFile: false, files: 1 });
    for (const [start, end] of [[0, 0], [size - 1, size - 1], [1000, 700_000], [0, size - 1]] as const) {
      const r = await node.readContent(h, start, end, { waitMs: 0 });
      expect(r.end).to.equal(end);
      expect((await collect(r.stream)).equals(await slice(file, start, end)), `bytes ${start}-${end}`).to.equal(true);
    }
  });

  it('rejects ranges outside the file with RangeError, and an unknown infohash clearly', async () => {
    const { node, h } = await sharing('seed', 10_000);
    for (const [start, end] of [[-1, 10], [0, 10_000], [500, 499], [0.5, 10], [20_000, 20_001]] as const) {
      expect(await rejection(node.readContent(h, start, end, { waitMs: 0 })), `${start}-${end}`).to.be.instanceOf(RangeError);
    }
    const unknown = 'e'.repeat(40);
    expect(node.content(unknown)).to.equal(undefined);
    const err = await rejection(node.readContent(unknown, 0, 0, { waitMs: 0 }));
    expect(err).to.be.instanceOf(UnknownContentError);
    expect(err.message).to.include(unknown);
  });

  describe('while downloading', () => {
    const L = 256 * KiB;

    it('serves verified pieces only, clamped to the verified run; a waiting read gets its piece first; a held stream survives the rename', async () => {
      const size = 64 * L - 1000;
      const { node: seed, file, h } = await sharing('seed', size, { pieceLength: L, maxUploadRate: 1 * MiB });
      const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: seed.port }] });
      nodes.push(leech);
      await leech.download(h);
      expect(leech.content(h)).to.deep.equal({ name: 'video.bin', length: size, pieceLength: L, complete: false, multiFile: false, files: 1 });
      const has = (i: number) => (leech.downloadDetail(h)!.bitfield[i >> 3]! & (0x80 >> (i & 7))) !== 0;
      const pieces = leech.content(h)!.length / L;
      // A verified piece other than the last (so its run cannot reach the end of the file).
      const first = await waitFor(() => {
        for (let i = 0; i < 40; i++) if (has(i)) return i + 1;
        return 0;
      }, 20_000, 'a first piece').then((i) => i - 1);

      // A read from a verified piece ends at the end of its verified run.
      const r = await leech.readContent(h, first * L + 7, size - 1, { waitMs: 0 });
      expect(r.end).to.be.lessThan(size - 1);
      expect((r.end + 1) % L, 'ends at a piece boundary').to.equal(0);
      expect(r.end).to.be.at.least(first * L + L - 1);

      // A piece near the end, not there yet: the read waits, the picker fetches it first.
      let want = Math.ceil(pieces) - 2;
      while (has(want)) want--;
      expect(want).to.be.greaterThan(40);
      const w = await leech.readContent(h, want * L + 10, want * L + 5000, { waitMs: 30_000 });
      const when = leech.downloadDetail(h)!;
      expect(when.verified, 'the waited-for piece came before the rest').to.be.lessThan(when.pieces);
      expect(w.end).to.equal(want * L + 5000);
      expect((await collect(w.stream)).equals(await slice(file, want * L + 10, want * L + 5000))).to.equal(true);

      // The first stream, opened on the .part, is read only after the download completed and the file was renamed.
      await leech.whenDone(h);
      expect(await fsp.readdir(leech.downloadDir)).to.not.include('video.bin.part');
      expect((await collect(r.stream)).equals(await slice(file, first * L + 7, r.end))).to.equal(true);
      expect(leech.content(h)!.complete).to.equal(true);
      const all = await leech.readContent(h, 0, size - 1, { waitMs: 0 });
      expect(createHash('sha1').update(await collect(all.stream)).digest('hex')).to.equal(await sha1File(file));
    });

    /**
     * A leech downloading a file of `pieces` pieces from a fake peer that takes requests and
     * never answers (its queue stays full); the real seed only makes the file and torrent.
     */
    async function downloadFromStaller(pieces: number) {
      const { node: seed, h } = await sharing('seed', pieces * L, { pieceLength: L });
      const { leech, staller } = await leechFromStaller(fx.dir, seed.files()[0]!.metainfo);
      fakes.push(staller);
      nodes.push(leech);
      return { h, leech, staller };
    }

    it('a wanted piece jumps the queue: the peer having it gets its queued requests cancelled and is asked for the window first', async () => {
      const { h, leech, staller } = await downloadFromStaller(64);
      await waitFor(() => staller.requests >= 32, 10_000, 'a queue of requests at the staller');
      await new Promise((resolve) => setTimeout(resolve, 200)); // the rest of the batch
      const asked = new Set(staller.log.map((e) => e.index));
      let want = 63;
      while (asked.has(want)) want--;
      expect(want, 'a piece not asked for yet').to.be.greaterThan(0);

      await rejection(leech.readContent(h, want * L, want * L + 10, { waitMs: 300 }));
      const log = staller.log;
      const firstCancel = log.findIndex((e) => e.type === 'cancel');
      expect(firstCancel, 'cancels were sent').to.be.greaterThan(0);
      const queued = log.slice(0, firstCancel);
      const after = log.slice(firstCancel);
      const cancels = after.filter((e) => e.type === 'cancel');
      expect(cancels.map((e) => `${e.index}/${e.begin}`).sort(), 'every queued block cancelled').to.deep.equal(queued.map((e) => `${e.index}/${e.begin}`).sort());
      const firstRequest = after.find((e) => e.type === 'request');
      expect(firstRequest, 'asked again after the cancels').to.not.equal(undefined);
      expect(firstRequest!.index, 'the wanted piece first').to.equal(want);
      expect(after.indexOf(firstRequest!)).to.equal(cancels.length);

      // Asked again while that piece is on its way: no second round of cancels.
      await rejection(leech.readContent(h, want * L, want * L + 10, { waitMs: 100 }));
      expect(staller.log.filter((e) => e.type === 'cancel')).to.have.length(cancels.length);

      // A piece already asked for, but at the back of the queue, is brought to the front too.
      const requests = staller.log.filter((e) => e.type === 'request');
      const back = requests[requests.length - 1]!.index;
      expect(back).to.not.equal(want);
      const mark = staller.log.length;
      await rejection(leech.readContent(h, back * L, back * L + 10, { waitMs: 300 }));
      const again = staller.log.slice(mark);
      const recancelled = again.filter((e) => e.type === 'cancel').length;
      expect(recancelled, 'the queue was taken back again').to.be.greaterThan(0);
      expect(again[recancelled], 'then that piece first').to.deep.include({ type: 'request', index: back });
    });

    it('rejects with ContentUnavailableError after waitMs when no peer sends the piece, at once when paused', async () => {
      const { h, leech, staller } = await downloadFromStaller(16);
      await waitFor(() => staller.requests > 0, 10_000, 'requests to the staller');
      const t0 = Date.now();
      const err = await rejection(leech.readContent(h, 3 * L, 3 * L + 100, { waitMs: 400 }));
      expect(err).to.be.instanceOf(ContentUnavailableError);
      expect(err.message).to.match(/piece 3\b/);
      expect((err as ContentUnavailableError).piece).to.equal(3);
      expect(Date.now() - t0).to.be.at.least(350);

      const ac = new AbortController();
      const aborted = rejection(leech.readContent(h, 0, 10, { waitMs: 30_000, signal: ac.signal }));
      ac.abort(new Error('client went away'));
      expect((await aborted).message).to.equal('client went away');

      expect(await leech.pause(h)).to.equal(true);
      const paused = await rejection(leech.readContent(h, 0, 10, { waitMs: 30_000 }));
      expect(paused).to.be.instanceOf(ContentUnavailableError);
      expect(paused.message).to.match(/paused/);
    });
  });
});

describe('importFile: adding a file from an upload', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  let node: Node;

  beforeEach(async () => {
    node = await startNode(fx.dir, { pieceLength: 64 * KiB });
    fx.nodes.push(node);
  });

  const noTemp = async () => expect((await listAll(node.sharedDir)).filter((n) => path.basename(n).startsWith('.'))).to.deep.equal([]);

  it('writes the file, and resolves once the library lists it with the infohash a fresh hash gives', async () => {
    const src = path.join(fx.dir, 'src.bin');
    await randomFile(src, 3 * MiB + 5);
    const f = await node.importFile('sub/dir/new.bin', (await fsp.open(src)).createReadStream(), { size: 3 * MiB + 5 });
    expect(f.name).to.equal('sub/dir/new.bin');
    expect(f.path).to.equal(path.join(node.sharedDir, 'sub', 'dir', 'new.bin'));
    expect(node.files().map((x) => x.name)).to.include('sub/dir/new.bin');
    const bytes = await fsp.readFile(src);
    const pieces: Buffer[] = [];
    for (let o = 0; o < bytes.length; o += 64 * KiB) pieces.push(createHash('sha1').update(bytes.subarray(o, o + 64 * KiB)).digest());
    const fresh = buildMetainfo({ name: 'new.bin', length: bytes.length, pieceLength: 64 * KiB, pieces: Buffer.concat(pieces) });
    expect(f.metainfo.infoHashHex).to.equal(fresh.infoHashHex);
    expect(await sha1File(f.path)).to.equal(await sha1File(src));
    // Without a declared size too.
    const g = await node.importFile('small.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect(await fsp.readFile(g.path, 'utf8')).to.equal('hello world');
    await noTemp();
  });

  it('refuses bad names before touching the disk', async () => {
    const before = await listAll(node.sharedDir);
    const bad = ['../escape.txt', '/etc/passwd', 'a/../../b', 'nul\0.txt', 'ctl\x01.txt', 'tab\t.txt', '.hidden', 'dir/.hidden/x', 'back\\slash.txt', '', 'x.part', 'a//b'];
    for (const name of bad) {
      let read = false;
      const body = new Readable({ read() { read = true; this.push(null); } });
      const err = await rejection(node.importFile(name, body));
      expect(err, JSON.stringify(name)).to.be.instanceOf(BadNameError);
      expect(err).to.be.instanceOf(BadNameError);
      expect(read).to.equal(false);
    }
    expect(await listAll(node.sharedDir)).to.deep.equal(before);
    expect(await fsp.readdir(fx.dir)).to.not.include('escape.txt');
  });

  it('never replaces an existing file', async () => {
    const existing = path.join(node.sharedDir, 'exists.txt');
    await fsp.writeFile(existing, 'original');
    const err = await rejection(node.importFile('exists.txt', Readable.from([Buffer.from('replacement')])));
    expect(err).to.be.instanceOf(ExistsError);
    expect(err).to.be.instanceOf(ExistsError);
    expect(await fsp.readFile(existing, 'utf8')).to.equal('original');
    await noTemp();
  });

  it('refuses a declared size bigger than the free space (or the bound) before writing anything', async () => {
    const st = await fsp.statfs(node.sharedDir);
    const free = st.bavail * st.bsize;
    let read = false;
    const body = () => new Readable({ read() { read = true; this.push(null); } });
    const err = await rejection(node.importFile('huge.bin', body(), { size: free + 1024 ** 3, maxBytes: Number.MAX_SAFE_INTEGER }));
    expect(err).to.be.instanceOf(NoSpaceError);
    expect(err).to.be.instanceOf(NoSpaceError);
    const big = await rejection(node.importFile('huge.bin', body(), { size: 65 * 1024 ** 3 }));
    expect(big).to.be.instanceOf(TooLargeError);
    expect(big).to.be.instanceOf(TooLargeError);
    expect(read).to.equal(false);
    expect(await listAll(node.sharedDir)).to.deep.equal([]);
  });

  it('leaves neither temp file nor final file when the body fails mid-stream, or the upload is aborted, or too long', async () => {
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent >= 2 * MiB) return this.destroy(new Error('connection reset'));
        sent += 256 * KiB;
        this.push(Buffer.alloc(256 * KiB, 1));
      },
    });
    const err = await rejection(node.importFile('broken.bin', failing, { size: 8 * MiB }));
    expect(err.message).to.match(/connection reset/);
    expect(sent).to.be.at.least(2 * MiB);

    const ac = new AbortController();
    const endless = new Readable({
      read() {
        setTimeout(() => this.push(Buffer.alloc(64 * KiB, 2)), 5);
      },
    });
    const aborted = rejection(node.importFile('aborted.bin', endless, { signal: ac.signal }));
    setTimeout(() => ac.abort(), 100);
    expect((await aborted).name).to.equal('AbortError');

    const tooLong = await rejection(node.importFile('long.bin', Readable.from([Buffer.alloc(1000)]), { maxBytes: 999 }));
    expect(tooLong).to.be.instanceOf(TooLargeError);
    expect(await listAll(node.sharedDir)).to.deep.equal([]);
  });
});
