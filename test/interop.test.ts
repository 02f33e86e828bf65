/**
 * Interoperability with a real BitTorrent client: aria2c downloads from a Shoal node, and a
 * Shoal node (library and CLI) downloads from aria2c, both found through a real opentracker.
 * Everything runs on 127.0.0.1; aria2c is told never to use DHT, LPD (multicast) or PEX.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir, randomFile, sha1File, waitFor, startNode, spawnCli, cleanup, type CliChild, Children } from './helpers.js';
import { startOpentracker, findExecutable, type Opentracker } from './opentracker.js';
import { parseTorrent } from '../network/metainfo/metainfo.js';
import { announce } from '../network/tracker/announce.js';
import type { Node } from '../network/node.js';

/** ~20 MiB, deliberately not a multiple of the 512 KiB piece length. */
const SIZE = 20 * 1024 * 1024 + 12_345;
const PIECE_LENGTH = 512 * 1024;

/** Flags that keep aria2c on 127.0.0.1 and quiet: no DHT, no LPD multicast, no PEX, no IPv6, no user config. */
const ARIA_NET = [
  '--no-conf=true',
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--disable-ipv6=true',
  '--interface=127.0.0.1',
  '--console-log-level=warn',
  '--summary-interval=0',
];

/** Children started by the current test, killed in afterEach whatever happened. */
const children = new Children();
const track = <T extends ChildProcess>(child: T): T => children.track(child);
const killAll = (): Promise<void> => children.killAll();

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Run a command to completion; SIGKILL it after `timeoutMs`. */
function run(cmd: string, args: string[], timeoutMs: number, cwd?: string): Promise<Finished> {
  const child = track(spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, output });
    });
  });
}

function mktorrent(file: string, out: string, announce: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile('mktorrent', ['-l', '19', '-a', announce, '-o', out, file], { timeout: 30_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`mktorrent failed: ${err.message} ${stderr}`)) : resolve(),
    ),
  );
}

/** The infohash mktorrent gives `file` (it does not depend on the announce URL, so a placeholder will do). */
async function infohashOf(file: string, dir: string): Promise<string> {
  const probe = path.join(dir, 'probe.torrent');
  await mktorrent(file, probe, 'http://127.0.0.1:1/announce');
  return parseTorrent(await fsp.readFile(probe)).infoHashHex;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * Whether the tracker lists 127.0.0.1:`port` for `infohash`. Asks as a passing observer on a
 * closed port and leaves again at once, so the swarm is not left with a peer nobody runs.
 */
async function trackerLists(url: string, infohash: string, port: number): Promise<boolean> {
  const observer = { url, infoHash: Buffer.from(infohash, 'hex'), peerId: Buffer.from('-OB0001-observer0000'), port: 9, uploaded: 0, downloaded: 0, left: 1 };
  try {
    const res = await announce({ ...observer, timeoutMs: 2000 });
    return res.peers.some((p) => p.host === '127.0.0.1' && p.port === port);
  } finally {
    await announce({ ...observer, event: 'stopped', timeoutMs: 2000 }).catch(() => {});
  }
}

const have = (name: string) => findExecutable(name) !== null;

describe('interop: real BitTorrent clients (aria2c) through opentracker', function () {
  this.timeout(60_000);

  before(function () {
    const missing = ['aria2c', 'mktorrent', 'opentracker'].filter((n) => !have(n));
    if (missing.length > 0) {
      console.log(`    ${missing.join(', ')} not installed (apt-get install aria2 mktorrent opentracker): skipping the interop tests`);
      this.skip();
    }
  });

  describe('aria2c downloads from a Shoal node', function () {
    let dir = '';
    let tracker: Opentracker | null = null;
    let node: Node | null = null;

    afterEach(async function () {
      await killAll();
      await node?.stop();
      node = null;
      await tracker?.stop();
      tracker = null;
      if (dir) await cleanup(dir);
      dir = '';
    });

    /** The random file, its .torrent from mktorrent (announcing to a fresh opentracker), its infohash. */
    async function prepare(file: string): Promise<{ torrentFile: string; infohash: string }> {
      await randomFile(file, SIZE);
      expect(SIZE % PIECE_LENGTH).to.not.equal(0);
      const infohash = await infohashOf(file, dir);
      tracker = await startOpentracker([infohash]);
      const torrentFile = path.join(dir, 'payload.torrent');
      await mktorrent(file, torrentFile, tracker.url);
      expect(parseTorrent(await fsp.readFile(torrentFile)).infoHashHex).to.equal(infohash);
      return { torrentFile, infohash };
    }

    async function ariaDownloads(torrentFile: string, original: string, infohash: string): Promise<void> {
      const dl = path.join(dir, 'aria-dl');
      const res = await run(
        'aria2c',
        [...ARIA_NET, '--seed-time=0', `--listen-port=${await freePort()}`, '--file-allocation=none', '-d', dl, torrentFile],
        40_000,
      );
      expect(res.code, `aria2c ${res.signal === 'SIGKILL' ? 'did not finish in 40 s' : `exited with ${res.code}`}: ${res.output}`).to.equal(0);
      expect(await sha1File(path.join(dl, path.basename(original)))).to.equal(await sha1File(original));
      const stats = node!.status().torrents.find((t) => t.infohash === infohash);
      expect(stats, 'the Shoal node has a torrent for the file').to.not.equal(undefined);
      expect(stats!.uploaded).to.be.at.least(SIZE);
    }

    it('gets identical bytes of a file shared at start-up, and the node counts the upload', async function () {
      dir = await tempDir('shoal-interop-');
      const seedDir = path.join(dir, 'seed');
      const file = path.join(seedDir, 'shared', 'payload.bin');
      const { torrentFile, infohash } = await prepare(file);
      node = await startNode(seedDir, { trackers: [tracker!.url] });
      const shared = node.library.files();
      expect(shared).to.have.length(1);
      expect(shared[0]!.metainfo.infoHashHex, "Shoal's infohash equals mktorrent's").to.equal(infohash);
      await waitFor(() => trackerLists(tracker!.url, infohash, node!.port), 10_000, 'the tracker to list the Shoal node on its peer port');
      await ariaDownloads(torrentFile, file, infohash);
    });

    it('gets identical bytes of a file added to the shared folder while the node runs', async function () {
      dir = await tempDir('shoal-interop-');
      const seedDir = path.join(dir, 'seed');
      // Prepared outside the shared folder, moved in once the node listens.
      const staged = path.join(dir, 'staging', 'payload.bin');
      const { torrentFile, infohash } = await prepare(staged);
      node = await startNode(seedDir, { trackers: [tracker!.url] });
      const file = path.join(node.sharedDir, 'payload.bin');
      await fsp.rename(staged, file);
      await node.library.rescan();
      expect(node.library.files().map((f) => f.metainfo.infoHashHex)).to.deep.equal([infohash]);
      await waitFor(() => trackerLists(tracker!.url, infohash, node!.port), 10_000, 'the tracker to list the Shoal node on its peer port');
      await ariaDownloads(torrentFile, file, infohash);
    });
  });

  describe('Shoal downloads from an aria2c seed', function () {
    let dir = '';
    let tracker: Opentracker | null = null;
    let file = '';
    let torrentFile = '';
    let node: Node | null = null;
    let cli: CliChild | null = null;

    before(async function () {
      this.timeout(30_000);
      dir = await tempDir('shoal-interop-');
      const seedDir = path.join(dir, 'aria-seed');
      file = path.join(seedDir, 'payload.bin');
      await randomFile(file, SIZE);
      const infohash = await infohashOf(file, dir);
      tracker = await startOpentracker([infohash]);
      torrentFile = path.join(dir, 'payload.torrent');
      await mktorrent(file, torrentFile, tracker.url);
      const ariaPort = await freePort();
      const seed = track(
        spawn(
          'aria2c',
          [...ARIA_NET, '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${ariaPort}`, '-d', seedDir, torrentFile],
          { stdio: 'ignore' },
        ),
      );
      await waitFor(async () => {
        if (seed.exitCode !== null) throw new Error(`the aria2c seed exited with ${seed.exitCode}`);
        return trackerLists(tracker!.url, infohash, ariaPort);
      }, 15_000, 'the aria2c seed to announce itself');
    });

    after(async function () {
      await killAll();
      await tracker?.stop();
      tracker = null;
      if (dir) await cleanup(dir);
      dir = '';
    });

    afterEach(async function () {
      if (cli && cli.proc.exitCode === null && cli.proc.signalCode === null) {
        cli.proc.kill('SIGKILL');
        await cli.exited;
      }
      cli = null;
      await node?.stop();
      node = null;
    });

    it('a Shoal node downloads the .torrent and gets identical bytes', async function () {
      node = await startNode(path.join(dir, 'leech'));
      const infohash = await node.download(torrentFile);
      const done = await node.whenDone(infohash);
      expect(done).to.equal(path.join(dir, 'leech', 'downloads', 'payload.bin'));
      expect(await sha1File(done)).to.equal(await sha1File(file));
    });

    it('node-cli --get <file.torrent> --exit-when-done exits 0 with the file', async function () {
      const cwd = path.join(dir, 'cli');
      await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
      cli = spawnCli(['127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast', '--get', torrentFile, '--exit-when-done'], cwd);
      const killer = setTimeout(() => cli?.proc.kill('SIGKILL'), 45_000);
      const { code, signal } = await cli.exited.finally(() => clearTimeout(killer));
      expect(code, `node-cli exited with ${code ?? signal}; events ${JSON.stringify(cli.events.slice(-3))}; stderr ${cli.stderr.slice(-5).join(' | ')}`).to.equal(0);
      const done = cli.events.find((e) => e.event === 'done');
      expect(done, 'a done event').to.not.equal(undefined);
      expect(await sha1File(path.join(cwd, 'd', 'payload.bin'))).to.equal(await sha1File(file));
    });
  });
});
