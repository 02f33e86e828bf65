/**
 * One seed, one downloader, one file on loopback: Shoal to Shoal and aria2c to aria2c,
 * side by side in the same run, alternating, so both see the same machine state.
 * Prints seconds end to end (downloader start to verified file and exit), MB/s, the
 * ratio, and each downloader's peak RSS.
 *
 *   npm run bench               # 1 GiB, 3 rounds
 *   BENCH_SIZE_MB=256 BENCH_RUNS=1 npm run bench
 */
import { promises as fsp, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseTorrent } from '../network/metainfo/metainfo.js';
import { timed, background, freePort, waitUntil, teardown, usageOrExit, type Timed } from './procs.js';
import { startOpentracker } from '../test/opentracker.js';
import { controlRequest } from '../network/control/control-client.js';

usageOrExit(`
bench/transfer: one seed, one downloader, one file on loopback, Shoal to Shoal and aria2c to
aria2c (with opentracker and mktorrent, when installed) side by side; prints the seconds, MB/s,
the ratio and each downloader's peak RSS. Ctrl-C or SIGTERM stops it and removes everything.

usage: npm run bench            (node dist/bench/transfer.js after npm run build)

settings, from the environment:
  BENCH_SIZE_MB  the file's size in MiB (default 1024)
  BENCH_RUNS     rounds, the median is printed (default 3)
  BENCH_DIR      where the files go (default /dev/shm, else the temp folder)
  BENCH_CASES    which cases, comma-separated (default single,mse,private,multifile):
                   single     one file, plain
                   mse        one file, MSE/PE with RC4 both ways (aria2c: --bt-require-crypto)
                   private    one file in a private swarm: TLS 1.3 with the secret's key
                   multifile  the same bytes in BENCH_FILES files (default 1000) in nested folders
`);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const SIZE = Number(process.env.BENCH_SIZE_MB ?? 1024) * 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Which cases: single (plain), mse (RC4 both ways), private (TLS), multifile (the same bytes in BENCH_FILES files). */
const CASES = (process.env.BENCH_CASES ?? 'single,mse,private,multifile').split(',').map((c) => c.trim()).filter(Boolean);
const FILES = Number(process.env.BENCH_FILES ?? 1000);
const MB = 1e6;
/**
 * Where the files go. tmpfs by default: on this kind of VM the disk (and first-touch of
 * fresh memory) caps writes near 270 MB/s for any tool, which would hide the engines.
 * BENCH_DIR=/tmp measures with the disk in the way.
 */
const BASE = process.env.BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());

function have(cmd: string): boolean {
  try {
    execFileSync('which', [cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function writeRandom(file: string, size: number): Promise<void> {
  const fh = await fsp.open(file, 'w');
  const chunk = randomBytes(8 << 20);
  for (let done = 0; done < size; done += chunk.length) {
    chunk.writeUInt32LE(done / chunk.length, 0); // keep pieces distinct
    await fh.write(chunk, 0, Math.min(chunk.length, size - done));
  }
  await fh.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One way to move the bytes, measured for Shoal and (when it applies) for aria2c in the same rounds. */
interface Case {
  name: string;
  what: string;
  /** Shoal downloader's extra options. */
  shoal: string[];
  /** The seed's infohash for it. */
  infohash: string;
  /** aria2c's torrent for the same bytes, or null when aria2c has no equivalent. */
  torrent: string | null;
  /** Where aria2c's seed finds the data. */
  ariaData?: string;
  /** The Shoal seed's port, when not the plain one. */
  port?: number;
}

const BENCH_SECRET = 'shoal bench swarm secret';

const ARIA_QUIET = ['--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false', '--console-log-level=warn', '--summary-interval=0'];

async function main(): Promise<void> {
  teardown.onSignals();
  const dir = teardown.dir(await fsp.mkdtemp(path.join(BASE, 'shoal-bench-')));
  try {
    const seedDir = path.join(dir, 'seed');
    await fsp.mkdir(seedDir, { recursive: true });
    await fsp.mkdir(path.join(dir, 'empty')); // what the downloading node shares: nothing, but it must be a folder
    const file = path.join(seedDir, 'bench.bin');
    const wanted = new Set(CASES);
    process.stdout.write(`writing a ${SIZE / 2 ** 20} MiB file... `);
    await writeRandom(file, SIZE);
    console.log('done');
    // The multi-file case: the same number of bytes in FILES files, in nested folders.
    const folder = path.join(dir, 'folder-seed', 'album');
    if (wanted.has('multifile')) {
      process.stdout.write(`writing ${FILES} files of ${SIZE / FILES / 2 ** 10} KiB... `);
      await writeFolder(folder, SIZE, FILES);
      console.log('done');
    }

    // --- Shoal seed (hashes before it listens: not part of the timing); the default encryption (prefer) accepts both ---
    const seedArgs = [CLI, '127.0.0.1', '0', '--shared', seedDir, '--downloads', path.join(dir, 'seed-dl'), '--json', '--log-level', 'warn', '--no-multicast'];
    if (wanted.has('multifile')) seedArgs.push('--share-folder-as-torrent', folder);
    const shoalSeed = background(process.execPath, seedArgs, { cwd: dir });
    await waitUntil(() => shoalSeed.output().includes('"listening"'), 300_000, 'shoal seed');
    const seedPort = Number(/"port":(\d+)/.exec(shoalSeed.output())![1]);
    // A private swarm's seed of the same file (its own state; the hash cache makes its start quick enough).
    let privatePort = 0;
    if (wanted.has('private')) {
      const priv = background(process.execPath, [CLI, '127.0.0.1', '0', '--shared', seedDir, '--downloads', path.join(dir, 'private-seed-dl'), '--json', '--log-level', 'warn', '--no-multicast', '--secret', BENCH_SECRET], { cwd: dir });
      await waitUntil(() => priv.output().includes('"listening"'), 300_000, 'private shoal seed');
      privatePort = Number(/"port":(\d+)/.exec(priv.output())![1]);
    }
    const listed = await controlRequest('127.0.0.1', seedPort, { type: 'list' }, { timeoutMs: 30_000 });
    if (listed.type !== 'LIST') throw new Error('the Shoal seed does not answer list');
    const single = listed.files.find((f) => f.name === 'bench.bin');
    if (!single) throw new Error('the Shoal seed does not list bench.bin');
    const album = listed.files.find((f) => f.name === 'album');
    if (wanted.has('multifile') && !album) throw new Error('the Shoal seed does not list the folder shared as a torrent');

    // --- aria2c seeds behind opentracker, with the same 512 KiB pieces ---
    const aria = have('aria2c') && have('opentracker') && have('mktorrent');
    const torrents = new Map<string, string>();
    if (aria) {
      const sources: Array<[string, string, string]> = [['single', file, seedDir]];
      if (wanted.has('multifile')) sources.push(['multifile', folder, path.dirname(folder)]);
      // The infohash does not depend on the announce URL, so make each torrent first to learn it.
      const hashes: string[] = [];
      for (const [name, src] of sources) {
        execFileSync('mktorrent', ['-l', '19', '-a', 'http://127.0.0.1:1/announce', '-o', path.join(dir, `probe-${name}.torrent`), src], { stdio: 'ignore' });
        hashes.push(parseTorrent(await fsp.readFile(path.join(dir, `probe-${name}.torrent`))).infoHashHex);
      }
      const tracker = await startOpentracker(hashes, { track: (child, trackerDir) => (teardown.track(child), teardown.dir(trackerDir)) });
      teardown.step(tracker.stop);
      for (const [name, src, data] of sources) {
        const t = path.join(dir, `${name}.torrent`);
        execFileSync('mktorrent', ['-l', '19', '-a', tracker.url, '-o', t, src], { stdio: 'ignore' });
        torrents.set(name, t);
        background('aria2c', ['--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${await freePort()}`, ...ARIA_QUIET, '-d', data, t]);
      }
      await new Promise((r) => setTimeout(r, 2000)); // let them announce
      if (album && parseTorrent(await fsp.readFile(torrents.get('multifile')!)).infoHashHex !== album.infohash)
        throw new Error('the folder torrent Shoal shares is not the one mktorrent makes');
    } else {
      console.log('aria2c, opentracker or mktorrent missing: measuring Shoal alone');
    }

    const cases: Case[] = [];
    if (wanted.has('single')) cases.push({ name: 'single', what: 'one file, plain', shoal: [], infohash: single.infohash, torrent: torrents.get('single') ?? null });
    if (wanted.has('mse'))
      cases.push({ name: 'mse', what: 'one file, MSE/PE RC4 both ways (--encryption require; aria2c --bt-require-crypto)', shoal: ['--encryption', 'require'], infohash: single.infohash, torrent: torrents.get('single') ?? null });
    if (wanted.has('private'))
      cases.push({ name: 'private', what: 'one file, private swarm: TLS 1.3 PSK, AES-128-GCM (aria2c: plain, for reference)', shoal: ['--secret', BENCH_SECRET], infohash: single.infohash, torrent: torrents.get('single') ?? null, port: privatePort });
    if (wanted.has('multifile') && album) cases.push({ name: 'multifile', what: `${FILES} files in nested folders`, shoal: [], infohash: album.infohash, torrent: torrents.get('multifile') ?? null });

    const summary: string[] = [];
    for (const c of cases) {
      console.log(`\n== ${c.name}: ${c.what}`);
      const shoal: Timed[] = [];
      const aria2: Timed[] = [];
      for (let run = 1; run <= RUNS; run++) {
        const sdl = path.join(dir, `shoal-dl-${c.name}-${run}`);
        const s = await timed(process.execPath, [CLI, '127.0.0.1', '0', '--shared', path.join(dir, 'empty'), '--downloads', sdl, '--no-folder-watch', '--no-multicast',
          '--peer', `127.0.0.1:${c.port ?? seedPort}`, '--get', c.infohash, '--exit-when-done', '--log-level', 'warn', ...c.shoal], { cwd: dir });
        if (s.code !== 0) throw new Error(`shoal download failed (${s.code}): ${s.stderr}`);
        shoal.push(s);
        await fsp.rm(sdl, { recursive: true, force: true });
        console.log(`run ${run}: shoal  ${s.seconds.toFixed(2)} s  ${(SIZE / MB / s.seconds).toFixed(0)} MB/s  peak RSS ${(s.peakRss / 2 ** 20).toFixed(0)} MiB`);
        if (c.torrent) {
          const adl = path.join(dir, `aria-dl-${c.name}-${run}`);
          const crypto = c.name === 'mse' ? ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'] : [];
          const a = await timed('aria2c', ['--seed-time=0', `--listen-port=${await freePort()}`, ...ARIA_QUIET, '--file-allocation=none', ...crypto, '-d', adl, c.torrent]);
          if (a.code !== 0) throw new Error(`aria2c download failed (${a.code}): ${a.stderr}`);
          aria2.push(a);
          await fsp.rm(adl, { recursive: true, force: true });
          console.log(`run ${run}: aria2c ${a.seconds.toFixed(2)} s  ${(SIZE / MB / a.seconds).toFixed(0)} MB/s  peak RSS ${(a.peakRss / 2 ** 20).toFixed(0)} MiB`);
        }
      }
      const st = median(shoal.map((x) => x.seconds));
      let line = `  ${c.name.padEnd(9)}  shoal ${st.toFixed(2)} s, ${(SIZE / MB / st).toFixed(0)} MB/s, peak RSS ${(Math.max(...shoal.map((x) => x.peakRss)) / 2 ** 20).toFixed(0)} MiB`;
      if (aria2.length > 0) {
        const at = median(aria2.map((x) => x.seconds));
        line += ` | aria2c ${at.toFixed(2)} s, ${(SIZE / MB / at).toFixed(0)} MB/s, peak RSS ${(Math.max(...aria2.map((x) => x.peakRss)) / 2 ** 20).toFixed(0)} MiB | shoal is ${(at / st).toFixed(2)}x aria2c's speed`;
      }
      summary.push(line);
      medians.set(c.name, st);
    }
    console.log(`\n${SIZE / 2 ** 20} MiB in ${BASE}, 1 seed -> 1 downloader on loopback, median of ${RUNS}:`);
    for (const l of summary) console.log(l);
    const plain = medians.get('single');
    if (plain) for (const [name, t] of medians) if (name !== 'single') console.log(`  ${name} takes ${(t / plain).toFixed(2)}x the plain single-file time`);
  } finally {
    await teardown.run();
  }
}

const medians = new Map<string, number>();

/** `total` bytes of random data in `count` files under `root`, ten to a folder. */
async function writeFolder(root: string, total: number, count: number): Promise<void> {
  const each = Math.floor(total / count);
  const chunk = randomBytes(each + (total - each * count));
  for (let i = 0; i < count; i++) {
    const dirName = path.join(root, `disc${String(Math.floor(i / 100)).padStart(2, '0')}`, `set${String(Math.floor(i / 10) % 10)}`);
    await fsp.mkdir(dirName, { recursive: true });
    chunk.writeUInt32LE(i, 0);
    const size = i === count - 1 ? each + (total - each * count) : each;
    await fsp.writeFile(path.join(dirName, `track${String(i).padStart(4, '0')}.bin`), chunk.subarray(0, size));
  }
}

main().catch(async (err: Error) => {
  console.error(err.message);
  await teardown.run();
  process.exit(1);
});
