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
`);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const SIZE = Number(process.env.BENCH_SIZE_MB ?? 1024) * 1024 * 1024;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
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

async function main(): Promise<void> {
  teardown.onSignals();
  const dir = teardown.dir(await fsp.mkdtemp(path.join(BASE, 'shoal-bench-')));
  try {
    const seedDir = path.join(dir, 'seed');
    await fsp.mkdir(seedDir, { recursive: true });
    await fsp.mkdir(path.join(dir, 'empty')); // what the downloading node shares: nothing, but it must be a folder
    const file = path.join(seedDir, 'bench.bin');
    process.stdout.write(`writing a ${SIZE / 2 ** 20} MiB file... `);
    await writeRandom(file, SIZE);
    console.log('done');

    // --- Shoal seed (hashes the file before it listens: not part of the timing) ---
    const shoalSeed = background(process.execPath, [CLI, '127.0.0.1', '0', '--shared', seedDir, '--downloads', path.join(dir, 'seed-dl'), '--json', '--log-level', 'warn', '--no-multicast'], { cwd: dir });
    await waitUntil(() => shoalSeed.output().includes('"listening"'), 120_000, 'shoal seed');
    const seedPort = Number(/"port":(\d+)/.exec(shoalSeed.output())![1]);

    // --- aria2c seed behind opentracker, with the same 512 KiB pieces ---
    const aria = have('aria2c') && have('opentracker') && have('mktorrent');
    let torrentFile = '';
    if (aria) {
      // The infohash does not depend on the announce URL, so make the torrent first to learn it.
      torrentFile = path.join(dir, 'bench.torrent');
      execFileSync('mktorrent', ['-l', '19', '-a', 'http://127.0.0.1:1/announce', '-o', path.join(dir, 'probe.torrent'), file], { stdio: 'ignore' });
      const tracker = await startOpentracker([parseTorrent(await fsp.readFile(path.join(dir, 'probe.torrent'))).infoHashHex], {
        track: (child, trackerDir) => (teardown.track(child), teardown.dir(trackerDir)),
      });
      teardown.step(tracker.stop);
      execFileSync('mktorrent', ['-l', '19', '-a', tracker.url, '-o', torrentFile, file], { stdio: 'ignore' });
      const ariaSeed = background('aria2c', [
        '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${await freePort()}`,
        '--enable-dht=false', '--enable-dht6=false', '--bt-enable-lpd=false', '--enable-peer-exchange=false',
        '--console-log-level=warn', '--summary-interval=0', '-d', seedDir, torrentFile,
      ]);
      await new Promise((r) => setTimeout(r, 2000)); // let it announce
    } else {
      console.log('aria2c, opentracker or mktorrent missing: measuring Shoal alone');
    }
    const listed = await controlRequest('127.0.0.1', seedPort, { type: 'list' });
    if (listed.type !== 'LIST' || listed.files.length !== 1) throw new Error('the Shoal seed does not list the file');
    const infohash = listed.files[0]!.infohash;

    const shoal: Timed[] = [];
    const aria2: Timed[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const sdl = path.join(dir, `shoal-dl-${run}`);
      const s = await timed(process.execPath, [CLI, '127.0.0.1', '0', '--shared', path.join(dir, 'empty'), '--downloads', sdl, '--no-folder-watch', '--no-multicast',
        '--peer', `127.0.0.1:${seedPort}`, '--get', infohash, '--exit-when-done', '--log-level', 'warn'], { cwd: dir });
      if (s.code !== 0) throw new Error(`shoal download failed (${s.code}): ${s.stderr}`);
      shoal.push(s);
      await fsp.rm(sdl, { recursive: true, force: true });
      console.log(`run ${run}: shoal  ${s.seconds.toFixed(2)} s  ${(SIZE / MB / s.seconds).toFixed(0)} MB/s  peak RSS ${(s.peakRss / 2 ** 20).toFixed(0)} MiB`);
      if (aria) {
        const adl = path.join(dir, `aria-dl-${run}`);
        const a = await timed('aria2c', ['--seed-time=0', `--listen-port=${await freePort()}`, '--enable-dht=false', '--enable-dht6=false',
          '--bt-enable-lpd=false', '--enable-peer-exchange=false', '--file-allocation=none', '--console-log-level=warn', '--summary-interval=0',
          '-d', adl, torrentFile]);
        if (a.code !== 0) throw new Error(`aria2c download failed (${a.code}): ${a.stderr}`);
        aria2.push(a);
        await fsp.rm(adl, { recursive: true, force: true });
        console.log(`run ${run}: aria2c ${a.seconds.toFixed(2)} s  ${(SIZE / MB / a.seconds).toFixed(0)} MB/s  peak RSS ${(a.peakRss / 2 ** 20).toFixed(0)} MiB`);
      }
    }
    const st = median(shoal.map((x) => x.seconds));
    console.log(`\n${SIZE / 2 ** 20} MiB in ${BASE}, 1 seed -> 1 downloader on loopback, median of ${RUNS}:`);
    console.log(`  shoal : ${st.toFixed(2)} s, ${(SIZE / MB / st).toFixed(0)} MB/s, peak RSS ${(Math.max(...shoal.map((x) => x.peakRss)) / 2 ** 20).toFixed(0)} MiB`);
    if (aria) {
      const at = median(aria2.map((x) => x.seconds));
      console.log(`  aria2c: ${at.toFixed(2)} s, ${(SIZE / MB / at).toFixed(0)} MB/s, peak RSS ${(Math.max(...aria2.map((x) => x.peakRss)) / 2 ** 20).toFixed(0)} MiB`);
      console.log(`  ratio : shoal is ${(at / st).toFixed(2)}x aria2c's speed`);
    }
  } finally {
    await teardown.run();
  }
}

main().catch(async (err: Error) => {
  console.error(err.message);
  await teardown.run();
  process.exit(1);
});
