/**
 * How `node-cli` ends, as a script sees it: its exit status and its last words. A stop in
 * the middle of resuming a download logs no error; a `--get` that no peer or tracker can
 * serve fails after `--resolve-timeout` with one line and status 1; an `--exit-when-done`
 * run interrupted by SIGINT or SIGTERM exits 130 or 143 and names what it left unfinished.
 * Everything on 127.0.0.1; children killed and folders removed in the hooks.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { CLI, Children, exitWithin, freePort, randomFile, spawnCli, startNode, tempDirPerTest, waitFor, type CliChild } from '../helpers.js';
import { buildMetainfo, encodeTorrent } from '../../network/metainfo/metainfo.js';
import { PartFile } from '../../network/storage/part-file.js';
import { HashPool } from '../../network/library/hash-pool.js';
import { silentLogger, type Node } from '../../network/index.js';

const children = new Children();
const describeCli = (cli: CliChild) => `events ${JSON.stringify(cli.events.slice(-4))}; stderr ${cli.stderr.slice(-8).join(' | ')}`;
const common = ['127.0.0.1', '0', '--shared', 's', '--downloads', 'd', '--no-folder-watch', '--no-multicast'];

describe('node-cli: how it ends', function () {
  this.timeout(90_000);
  let seed: Node | null = null;
  const fx = tempDirPerTest('shoal-cli-exit-', async () => {
    await children.killAll();
    await seed?.stop();
    seed = null;
  });

  async function cliIn(name: string, args: string[], env: Record<string, string> = {}): Promise<CliChild> {
    const cwd = path.join(fx.dir, name);
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const cli = spawnCli(args, cwd, env);
    children.track(cli.proc);
    return cli;
  }

  it('a stop while a download is being resumed (its .part rechecked) logs no error and exits 0', async function () {
    // A resume record for a large sparse .part whose pieces are not listed: the next start
    // re-hashes all of them, which takes seconds. The stop lands in the middle of that.
    const cwd = path.join(fx.dir, 'resume');
    const pieceLength = 1 << 20;
    const pieceCount = 4096;
    const m = buildMetainfo({ name: 'big.bin', length: pieceCount * pieceLength, pieceLength, pieces: randomBytes(20 * pieceCount) });
    const pool = new HashPool({ workers: 1 });
    try {
      const { part } = await PartFile.open({ metainfo: m, downloadDir: path.join(cwd, 'd'), resumeDir: path.join(cwd, 'd', '.shoal', 'resume'), hasher: pool, logger: silentLogger() });
      await part.close();
    } finally {
      await pool.close();
    }
    const cli = await cliIn('resume', [...common, '--log-level', 'info'], { SHOAL_LOG: 'info' });
    await cli.waitEvent('listening', 30_000);
    await waitFor(() => cli.stderr.some((l) => /resuming download/.test(l)), 20_000, `"resuming download" (${describeCli(cli)})`);
    cli.proc.kill('SIGINT');
    const { code, signal } = await exitWithin(cli, 30_000);
    const text = cli.stderr.join('\n');
    expect(text, 'the stop came before the recheck ended (else this test proves nothing)').to.not.match(/download started/);
    expect(text).to.not.match(/hash pool closed/);
    expect(text).to.not.match(/ERROR/);
    expect({ code, signal }, describeCli(cli)).to.deep.equal({ code: 0, signal: null });
    // The download is still there for the next start.
    expect(await fsp.readdir(path.join(cwd, 'd', '.shoal', 'resume'))).to.include(`${m.infoHashHex}.json`);
  });

  it('--get of a .torrent whose tracker does not answer fails after --resolve-timeout: one failed line, status 1', async function () {
    const cwd = path.join(fx.dir, 'orphan');
    await fsp.mkdir(cwd, { recursive: true });
    const closed = await freePort();
    const m = buildMetainfo({ name: 'orphan.bin', length: 3 << 20, pieceLength: 1 << 18, pieces: randomBytes(20 * 12), announce: [`http://127.0.0.1:${closed}/announce`] });
    await fsp.writeFile(path.join(cwd, 'orphan.torrent'), encodeTorrent(m));
    const cli = await cliIn('orphan', [...common, '--get', 'orphan.torrent', '--exit-when-done', '--resolve-timeout', '2']);
    const { code, signal } = await exitWithin(cli, 60_000);
    expect({ code, signal }, describeCli(cli)).to.deep.equal({ code: 1, signal: null });
    const failed = cli.events.filter((e) => e.event === 'failed');
    expect(failed, describeCli(cli)).to.have.length(1);
    expect(failed[0]!.target).to.equal('orphan.torrent');
    expect(String(failed[0]!.error)).to.match(/no source/);
    expect(String(failed[0]!.error)).to.match(/2 s/);
    // Nothing was fetched, so nothing is kept for a later start.
    const left = await fsp.readdir(path.join(cwd, 'd')).catch(() => [] as string[]);
    expect(left.filter((n) => n.endsWith('.part'))).to.deep.equal([]);
  });

  it('--get with no source prints one plain failed line without --json', async function () {
    const cwd = path.join(fx.dir, 'plain');
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const closed = await freePort();
    const m = buildMetainfo({ name: 'orphan.bin', length: 1 << 20, pieceLength: 1 << 18, pieces: randomBytes(20 * 4), announce: [`http://127.0.0.1:${closed}/announce`] });
    await fsp.writeFile(path.join(cwd, 'orphan.torrent'), encodeTorrent(m));
    const proc = children.track(spawn(process.execPath, [CLI, ...common, '--get', 'orphan.torrent', '--exit-when-done', '--resolve-timeout', '1', '--log-level', 'silent'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => proc.once('close', (c) => r(c)));
    expect(code, out + err).to.equal(1);
    const failed = out.split('\n').filter((l) => l.startsWith('failed'));
    expect(failed, out).to.have.length(1);
    expect(failed[0]).to.match(/^failed orphan\.torrent: no source/);
  });

  for (const [sig, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`--exit-when-done interrupted by ${sig} exits ${status} and names the unfinished download`, async function () {
      // A seed that uploads slowly, so the download is still running when the signal comes.
      const seedDir = path.join(fx.dir, 'seed');
      await randomFile(path.join(seedDir, 'shared', 'slow.bin'), 4 << 20);
      seed = await startNode(seedDir, { maxUploadRate: 256 * 1024 });
      const cli = await cliIn('get', [...common, '--peer', `127.0.0.1:${seed.port}`, '--get', 'slow.bin', '--exit-when-done']);
      await cli.waitEvent('progress', 30_000);
      cli.proc.kill(sig);
      const { code, signal } = await exitWithin(cli, 30_000);
      expect({ code, signal }, describeCli(cli)).to.deep.equal({ code: status, signal: null });
      const failed = cli.events.filter((e) => e.event === 'failed');
      expect(failed, describeCli(cli)).to.have.length(1);
      expect(failed[0]!.target).to.equal('slow.bin');
      expect(String(failed[0]!.error)).to.match(new RegExp(`interrupted by ${sig}`));
      expect(cli.events.some((e) => e.event === 'done'), 'not done').to.equal(false);
    });
  }

  it('--exit-when-done interrupted before a name resolves still names it', async function () {
    const cli = await cliIn('early', [...common, '--get', 'nobody-has-this', '--exit-when-done', '--resolve-timeout', '60']);
    await cli.waitEvent('listening', 30_000);
    cli.proc.kill('SIGTERM');
    const { code, signal } = await exitWithin(cli, 30_000);
    expect({ code, signal }, describeCli(cli)).to.deep.equal({ code: 143, signal: null });
    const failed = cli.events.filter((e) => e.event === 'failed');
    expect(failed.map((e) => e.target), describeCli(cli)).to.deep.equal(['nobody-has-this']);
  });
});
