/**
 * `create` and `info` as a user runs them (`node-cli create|info`, `shoal create|info`), checked
 * against the real mktorrent; and the .torrent files and magnet links a running node hands
 * out, which carry its trackers (the bootstrap server's and every --tracker).
 */
import { spawn, execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import bencode from 'bencode';
import { CLI, ROOT, Children, randomFile, startNode, tempDirPerTest, waitFor } from '../helpers.js';
import { findExecutable } from '../opentracker.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import { parseMagnet } from '../../network/metainfo/magnet.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import { mixedTree, writeTree } from '../tree.js';
import type { Node } from '../../network/index.js';

const SHOAL = path.join(ROOT, 'dist', 'cli', 'shoal.js');
const children = new Children();

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Peak resident set of the child, sampled while it ran (bytes). */
  peakRss: number;
}

function run(file: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<Finished> {
  const child = children.track(spawn(process.execPath, [file, ...args], { cwd, env: { ...process.env, SHOAL_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  let peakRss = 0;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const sampler = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      // gone
    }
  }, 20);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearInterval(sampler);
      clearTimeout(killer);
      resolve({ code, stdout, stderr, peakRss });
    });
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('create and info', function () {
  this.timeout(120_000);
  const fx = tempDirPerTest('shoal-create-', () => children.killAll());

  describe('against mktorrent', function () {
    before(function () {
      if (!findExecutable('mktorrent')) {
        console.log('    mktorrent is not installed (Debian package mktorrent): skipping the comparison');
        this.skip();
      }
    });

    const cases: Array<[string, number, string | undefined, number]> = [
      ['an odd size, default pieces (512k)', 3 * 1024 * 1024 + 777, undefined, 19],
      ['an exact number of 256k pieces', 4 * 256 * 1024, '256k', 18],
      ['one byte, 32k pieces', 1, '32k', 15],
      ['4 MiB pieces', 9 * 1024 * 1024 + 3, '4M', 22],
    ];
    for (const [what, size, pl, log2] of cases) {
      it(`node-cli create: the infohash mktorrent gives (${what})`, async function () {
        const file = path.join(fx.dir, 'data', 'payload.bin');
        await randomFile(file, size);
        const mk = path.join(fx.dir, 'mk.torrent');
        execFileSync('mktorrent', ['-l', String(log2), '-a', 'http://127.0.0.1:1/announce', '-o', mk, file], { stdio: 'ignore' });
        const want = parseTorrent(await fsp.readFile(mk)).infoHashHex;
        const res = await run(CLI, ['create', 'data/payload.bin', ...(pl ? ['--piece-length', pl] : [])], fx.dir);
        expect(res.code, res.stderr).to.equal(0);
        const out = lines(res.stdout);
        expect(out[0]).to.match(new RegExp(`^wrote payload\\.bin\\.torrent: payload\\.bin, .* infohash ${want}$`));
        expect(out.at(-1)).to.match(new RegExp(`^magnet:\\?xt=urn:btih:${want}&dn=payload\\.bin&xl=${size}$`));
        const made = parseTorrent(await fsp.readFile(path.join(fx.dir, 'payload.bin.torrent')));
        expect(made.infoHashHex).to.equal(want);
        expect(made.pieceLength).to.equal(2 ** log2);
      });
    }

    for (const [pl, log2] of [['32k', 15], ['64k', 16], ['256k', 18]] as const) {
      it(`node-cli create DIR: one multi-file torrent, the infohash mktorrent gives the folder (${pl} pieces)`, async function () {
        const spec = mixedTree(50, 600 * 1024);
        await writeTree(path.join(fx.dir, 'Album'), spec);
        const mk = path.join(fx.dir, 'mk.torrent');
        execFileSync('mktorrent', ['-l', String(log2), '-a', 'http://127.0.0.1:1/announce', '-o', mk, 'Album'], { cwd: fx.dir, stdio: 'ignore' });
        const want = parseTorrent(await fsp.readFile(mk));
        expect(want.multiFile).to.equal(true);
        const res = await run(CLI, ['create', 'Album', '--piece-length', pl], fx.dir);
        expect(res.code, res.stderr).to.equal(0);
        expect(lines(res.stdout)[0]).to.match(new RegExp(`^wrote Album\\.torrent: Album \\(${want.files.length} files\\), .* infohash ${want.infoHashHex}$`));
        expect(res.stderr, 'nothing left out').to.equal('');
        const made = parseTorrent(await fsp.readFile(path.join(fx.dir, 'Album.torrent')));
        expect(made.infoHashHex).to.equal(want.infoHashHex);
        expect(made.files.map((f) => f.name)).to.deep.equal(want.files.map((f) => f.name));
        const info = await run(CLI, ['info', '--json', 'Album.torrent'], fx.dir);
        const o = JSON.parse(info.stdout) as { files: Array<{ path: string; size: number }> };
        expect(o.files).to.have.length(Object.keys(spec).length);
        expect(o.files.find((f) => f.path === 'sub/deep/er/still/nested.bin')).to.deep.equal({ path: 'sub/deep/er/still/nested.bin', size: 100_000 });
      });
    }

    it('create DIR leaves dot-files, symlinks and .part out, and says so (mktorrent would take them)', async function () {
      await writeTree(path.join(fx.dir, 'Mixed'), { 'keep.bin': 5000, 'sub/also.bin': 300, '.hidden': 10, '.git/config': 20, 'half.part': 7 });
      await fsp.symlink('keep.bin', path.join(fx.dir, 'Mixed', 'link.bin'));
      const res = await run(CLI, ['create', 'Mixed', '--piece-length', '32k'], fx.dir);
      expect(res.code, res.stderr).to.equal(0);
      expect(lines(res.stderr).sort()).to.deep.equal([
        'left out .git/: dot-folder (never shared)',
        'left out .hidden: dot-files and dot-directories are never shared',
        'left out half.part: .part files and folders are downloads in progress, never shared',
        'left out link.bin: symlink (never followed)',
      ]);
      expect(parseTorrent(await fsp.readFile(path.join(fx.dir, 'Mixed.torrent'))).files.map((f) => f.name)).to.deep.equal(['keep.bin', 'sub/also.bin']);
      // The same folder without them is what mktorrent hashes to the same infohash.
      await writeTree(path.join(fx.dir, 'clean', 'Mixed'), {});
      for (const f of ['keep.bin', 'sub/also.bin']) {
        await fsp.mkdir(path.dirname(path.join(fx.dir, 'clean', 'Mixed', f)), { recursive: true });
        await fsp.copyFile(path.join(fx.dir, 'Mixed', f), path.join(fx.dir, 'clean', 'Mixed', f));
      }
      execFileSync('mktorrent', ['-l', '15', '-a', 'http://127.0.0.1:1/announce', '-o', path.join(fx.dir, 'clean.torrent'), 'Mixed'], { cwd: path.join(fx.dir, 'clean'), stdio: 'ignore' });
      const mk = parseTorrent(await fsp.readFile(path.join(fx.dir, 'clean.torrent')));
      expect(parseTorrent(await fsp.readFile(path.join(fx.dir, 'Mixed.torrent'))).infoHashHex).to.equal(mk.infoHashHex);
    });

    it('info prints what a torrent mktorrent made holds', async function () {
      const file = path.join(fx.dir, 'movie.bin');
      await randomFile(file, 5 * 1024 * 1024 + 1);
      execFileSync('mktorrent', ['-l', '18', '-a', 'http://127.0.0.1:6969/announce', '-o', path.join(fx.dir, 'movie.torrent'), file], { stdio: 'ignore' });
      const m = parseTorrent(await fsp.readFile(path.join(fx.dir, 'movie.torrent')));
      const res = await run(CLI, ['info', 'movie.torrent'], fx.dir);
      expect(res.code, res.stderr).to.equal(0);
      const text = res.stdout;
      expect(text).to.match(/^name +movie\.bin$/m);
      expect(text).to.match(/^size +5\.0 MiB \(5242881 bytes\)$/m);
      expect(text).to.match(/^piece length +256\.0 KiB$/m);
      expect(text).to.match(/^pieces +21$/m);
      expect(text).to.match(new RegExp(`^infohash +${m.infoHashHex}$`, 'm'));
      expect(text).to.match(/^trackers +http:\/\/127\.0\.0\.1:6969\/announce$/m);
      const magnet = /^magnet +(\S+)$/m.exec(text)![1]!;
      const parsed = parseMagnet(magnet);
      expect(parsed.infoHash).to.equal(m.infoHashHex);
      expect(parsed.trackers).to.deep.equal(['http://127.0.0.1:6969/announce']);
      const json = await run(CLI, ['info', '--json', 'movie.torrent'], fx.dir);
      expect(JSON.parse(json.stdout)).to.deep.include({ name: 'movie.bin', size: 5242881, pieceLength: 262144, pieces: 21, infohash: m.infoHashHex, trackers: ['http://127.0.0.1:6969/announce'] });
    });
  });

  it('create --tracker puts every tracker in announce / announce-list and tr=, -o names the file; info reads it back', async function () {
    await randomFile(path.join(fx.dir, 'song.mp3'), 700_000);
    const a = 'http://127.0.0.1:8000/announce';
    const b = 'https://tracker.invalid/announce';
    await fsp.mkdir(path.join(fx.dir, 'out'));
    const res = await run(SHOAL, ['create', 'song.mp3', '--tracker', a, '--tracker', b, '-o', 'out/song.torrent'], fx.dir);
    expect(res.code, res.stderr).to.equal(0);
    const bytes = await fsp.readFile(path.join(fx.dir, 'out', 'song.torrent')).catch(async () => {
      throw new Error(`no out/song.torrent: ${res.stdout} ${res.stderr} ${(await fsp.readdir(fx.dir)).join(' ')}`);
    });
    const raw = bencode.decode(bytes) as Record<string, unknown>;
    expect(Buffer.from(raw.announce as Uint8Array).toString()).to.equal(a);
    expect((raw['announce-list'] as Uint8Array[][]).map((tier) => tier.map((u) => Buffer.from(u).toString()))).to.deep.equal([[a], [b]]);
    const magnet = parseMagnet(lines(res.stdout).at(-1)!);
    expect(magnet.trackers).to.deep.equal([a, b]);
    const info = await run(SHOAL, ['info', 'out/song.torrent'], fx.dir);
    expect(info.code, info.stderr).to.equal(0);
    expect(info.stdout).to.match(new RegExp(`^trackers +${a.replace(/[.]/g, '\\.')}\\n +${b.replace(/[.]/g, '\\.')}$`, 'm'));
    expect(info.stdout).to.match(/^name +song\.mp3$/m);
  });

  it('hashes a large file without holding it in memory', async function () {
    const big = path.join(fx.dir, 'big.bin');
    const fh = await fsp.open(big, 'w');
    await fh.truncate(768 * 1024 * 1024); // sparse: reads as zeros, costs no disk
    await fh.close();
    const res = await run(CLI, ['create', 'big.bin', '--piece-length', '4M'], fx.dir, 110_000);
    expect(res.code, res.stderr).to.equal(0);
    expect(lines(res.stdout)[0]).to.match(/192 pieces of 4\.0 MiB/);
    expect(res.peakRss, 'peak RSS').to.be.above(0).and.below(256 * 1024 * 1024);
  });

  describe('bad input: one line on stderr, nothing lost', function () {
    it('a folder, a missing file, an existing output (kept), not a torrent, no argument, a bad piece length', async function () {
      await fsp.mkdir(path.join(fx.dir, 'folder'));
      await randomFile(path.join(fx.dir, 'f.bin'), 1000);
      await fsp.writeFile(path.join(fx.dir, 'f.bin.torrent'), 'precious');
      const cases: Array<[string[], number, RegExp]> = [
        [['create', 'folder'], 1, /^node-cli create: folder holds no file to share$/],
        [['create', 'missing.bin'], 1, /^node-cli create: cannot read missing\.bin: no such file$/],
        [['create', 'f.bin'], 1, /^node-cli create: f\.bin\.torrent exists: .*--force/],
        [['create', 'f.bin', '--piece-length', '1000'], 2, /^node-cli create: --piece-length must be a power of two/],
        [['create', 'f.bin', '--tracker', 'udp://x:1'], 2, /^node-cli create: --tracker must be an http\(s\) URL/],
        [['create', 'f.bin', '-o', 'nowhere/f.torrent'], 1, /^node-cli create: cannot write nowhere\/f\.torrent: no such folder$/],
        [['create'], 2, /^node-cli create: missing required argument 'file\|dir'/],
        [['info', 'f.bin'], 1, /^node-cli info: not a torrent file/],
        [['info', 'missing.torrent'], 1, /^node-cli info: cannot read missing\.torrent: no such file$/],
      ];
      for (const [args, status, re] of cases) {
        const res = await run(CLI, args, fx.dir);
        expect(res.code, `${args.join(' ')}: ${res.stderr}`).to.equal(status);
        expect(lines(res.stderr), args.join(' ')).to.have.length(1);
        expect(lines(res.stderr)[0], args.join(' ')).to.match(re);
      }
      expect(await fsp.readFile(path.join(fx.dir, 'f.bin.torrent'), 'utf8')).to.equal('precious');
      const forced = await run(CLI, ['create', 'f.bin', '--force'], fx.dir);
      expect(forced.code, forced.stderr).to.equal(0);
      expect(parseTorrent(await fsp.readFile(path.join(fx.dir, 'f.bin.torrent'))).name).to.equal('f.bin');
    });
  });
});

describe('the torrents and magnets a node hands out', function () {
  this.timeout(60_000);
  let node: Node | null = null;
  let server: BootstrapServer | null = null;
  const fx = tempDirPerTest('shoal-links-', async () => {
    await node?.stop();
    node = null;
    await server?.stop();
    server = null;
  });

  it("carry the bootstrap server's tracker and every --tracker (announce, announce-list, tr=), and this node in x.pe; the infohash is unchanged", async function () {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir: path.join(fx.dir, 'bootstrap'), heartbeatMs: 500, ttlMs: 1500 });
    await server.start();
    const extra = 'http://127.0.0.1:6969/announce';
    await randomFile(path.join(fx.dir, 'n', 'shared', 'clip.bin'), 300_000);
    node = await startNode(path.join(fx.dir, 'n'), { trackers: [extra], bootstrap: server.url.replace(/\/+$/, '') });
    const file = await waitFor(() => node!.files()[0], 20_000, 'the shared file');
    const h = file.metainfo.infoHashHex;
    const bootstrapTracker = `${server.url.replace(/\/+$/, '')}/announce`;
    expect(node.trackers()).to.deep.equal([bootstrapTracker, extra]);

    const torrent = node.torrentFile(h)!;
    const m = parseTorrent(torrent);
    expect(m.infoHashHex).to.equal(h);
    expect(m.announce).to.deep.equal([bootstrapTracker, extra]);
    const raw = bencode.decode(torrent) as Record<string, unknown>;
    expect(Buffer.from(raw.announce as Uint8Array).toString()).to.equal(bootstrapTracker);
    expect((raw['announce-list'] as Uint8Array[][]).length).to.equal(2);

    const magnet = parseMagnet(node.magnet(h)!);
    expect(magnet.infoHash).to.equal(h);
    expect(magnet.trackers).to.deep.equal([bootstrapTracker, extra]);
    expect(magnet.peers).to.deep.equal([{ host: '127.0.0.1', port: node.port }]);
  });

  it('a node without trackers hands out a torrent without announce and a magnet with only x.pe', async function () {
    await randomFile(path.join(fx.dir, 'n', 'shared', 'clip.bin'), 1000);
    node = await startNode(path.join(fx.dir, 'n'));
    const file = await waitFor(() => node!.files()[0], 20_000, 'the shared file');
    const raw = bencode.decode(node.torrentFile(file.metainfo.infoHashHex)!) as Record<string, unknown>;
    expect(raw.announce).to.equal(undefined);
    const magnet = parseMagnet(node.magnet(file.metainfo.infoHashHex)!);
    expect(magnet.trackers).to.deep.equal([]);
    expect(magnet.peers).to.have.length(1);
  });
});
