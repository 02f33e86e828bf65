/**
 * Interoperability with a real BitTorrent client: aria2c downloads from a Shoal node, and a
 * Shoal node (library and CLI) downloads from aria2c, both found through a real opentracker.
 * Everything runs on 127.0.0.1; aria2c is told never to use DHT, LPD (multicast) or PEX.
 */
import { spawn, execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { tempDir, randomFile, sha1File, waitFor, startNode, spawnCli, cleanup, freePort, type CliChild, Children } from '../helpers.js';
import { startOpentracker, findExecutable, type Opentracker } from '../opentracker.js';
import { ARIA_NET, ariaDownloads, trackerLists } from '../aria2.js';
import { parseTorrent } from '../../network/metainfo/metainfo.js';
import type { Node } from '../../network/index.js';

/** ~20 MiB, deliberately not a multiple of the 512 KiB piece length. */
const SIZE = 20 * 1024 * 1024 + 12_345;
const PIECE_LENGTH = 512 * 1024;

/** Children started by the current test, killed in afterEach whatever happened. */
const children = new Children();

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
      await children.killAll();
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

    it('gets identical bytes of a file shared at start-up, and the node counts the upload', async function () {
      dir = await tempDir('shoal-interop-');
      const seedDir = path.join(dir, 'seed');
      const file = path.join(seedDir, 'shared', 'payload.bin');
      const { torrentFile, infohash } = await prepare(file);
      node = await startNode(seedDir, { trackers: [tracker!.url] });
      const shared = node.files();
      expect(shared).to.have.length(1);
      expect(shared[0]!.metainfo.infoHashHex, "Shoal's infohash equals mktorrent's").to.equal(infohash);
      await waitFor(() => trackerLists(tracker!.url, infohash, node!.port), 10_000, 'the tracker to list the Shoal node on its peer port');
      await ariaDownloads(children, node, { torrentFile, original: file, infohash, into: path.join(dir, 'aria-dl') });
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
      await node.rescan();
      expect(node.files().map((f) => f.metainfo.infoHashHex)).to.deep.equal([infohash]);
      await waitFor(() => trackerLists(tracker!.url, infohash, node!.port), 10_000, 'the tracker to list the Shoal node on its peer port');
      await ariaDownloads(children, node, { torrentFile, original: file, infohash, into: path.join(dir, 'aria-dl') });
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
      const seed = children.track(
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
      await children.killAll();
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
