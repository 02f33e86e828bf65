/**
 * The disk of a downloader fills up mid-download (a 32 MiB tmpfs, half of it taken, mounted by the test, as root,
 * and unmounted whatever happens): the download pauses with a clear reason, the node stays up,
 * every verified piece is kept on disk, nothing appears under the final name; once space is
 * freed it goes on by itself and finishes byte-identical, fetching again little more than the
 * pieces that could not be written.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { DownloadInfo } from '../../network/index.js';
import { exists } from '../../network/storage/stores.js';
import { SPACE_CHECK_MS } from '../../network/downloads/downloads.js';
import { captureLog, cleanup, nodesPerTest, randomFile, sha1File, startNode, startSharing, tempDir, verifiedOnDisk, waitFor } from '../helpers.js';

const MiB = 1024 * 1024;

/** Why a tmpfs cannot be mounted here, or null when it can. */
function cannotMount(): string | null {
  if (process.platform !== 'linux') return `tmpfs needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  return null;
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

describe('faults on a downloader: the disk fills up', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  let mnt: string | null = null;

  before(function () {
    const why = cannotMount();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
  });
  // Runs after nodesPerTest's afterEach: the nodes are stopped, nothing holds the mount.
  afterEach(async () => {
    if (!mnt) return;
    const r = spawnSync('umount', [mnt]);
    if (r.status !== 0) spawnSync('umount', ['-l', mnt]);
    await cleanup(mnt);
    mnt = null;
  });

  it('pauses saying the disk is full, keeps every verified piece, and goes on by itself once there is room', async function () {
    const size = 24 * MiB + 5555;
    const seed = await startSharing(fx.dir, fx.nodes, 'seed', { 'big.bin': size }, { maxUploadRate: 8 * MiB });
    const m = seed.files()[0]!.metainfo;
    mnt = await tempDir('shoal-disk-full-');
    run('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0755', 'tmpfs', mnt]);
    // 16 MiB taken by something else: about 16 MiB left for a 24 MiB download.
    const filler = path.join(mnt, 'filler.bin');
    await randomFile(filler, 16 * MiB);
    const downloads = path.join(mnt, 'downloads');
    const log = captureLog();
    const leech = await startNode(path.join(fx.dir, 'leech'), { downloadDir: downloads, peers: [{ host: '127.0.0.1', port: seed.port }], logger: log.logger });
    fx.nodes.push(leech);
    const h = await leech.download(m.infoHashHex);
    const info = (): DownloadInfo => leech.listDownloads().find((d) => d.infohash === h)!;

    const paused = await waitFor(() => (info().state !== 'downloading' ? info() : null), 30_000, 'the download to stop for want of space');
    expect(paused.state, `${paused.state}: ${paused.error}`).to.equal('paused');
    expect(paused.error).to.match(/^the disk is full \(ENOSPC\) in .*downloads: paused, every verified piece kept; it goes on by itself once there is room$/);
    expect(log.records.some((r) => r.level === 50 && r.msg === 'the disk is full: download paused until there is room' && /ENOSPC/.test(String(r.err)))).to.equal(true);
    expect(paused.verified, 'some pieces were written before the disk filled').to.be.greaterThan(0);
    expect(paused.verified).to.be.lessThan(m.pieceCount);
    expect(await exists(path.join(downloads, 'big.bin')), 'nothing under the final name').to.equal(false);
    const part = path.join(downloads, 'big.bin.part');
    const onDisk = await verifiedOnDisk(part, m);
    expect(onDisk.size, 'every piece counted verified is on disk, whole').to.be.at.least(paused.verified);

    // Still full: it stays paused (no flapping), and the node answers.
    await new Promise((r) => setTimeout(r, 2 * SPACE_CHECK_MS + 500));
    expect(info().state).to.equal('paused');
    expect(info().verified).to.equal(paused.verified);
    expect((await leech.search('big.bin')).map((x) => x.infohash), 'the node is up and searches').to.deep.equal([h]);

    // Room again: it goes on by itself and finishes, byte-identical.
    await fsp.rm(filler);
    await waitFor(() => info().state !== 'paused', 3 * SPACE_CHECK_MS, 'the download to go on once there is room');
    const final = await leech.whenDone(h);
    expect(final).to.equal(path.join(downloads, 'big.bin'));
    expect(await sha1File(final)).to.equal(await sha1File(path.join(seed.sharedDir, 'big.bin')));
    expect(log.records.some((r) => r.msg === 'there is room on the disk again: the download goes on')).to.equal(true);
    const done = info();
    const refetched = done.downloaded - size;
    expect(refetched, `bytes fetched twice: ${refetched}`).to.be.at.most(16 * m.pieceLength);
    console.log(`      disk full at ${paused.verified}/${m.pieceCount} pieces; fetched ${(done.downloaded / MiB).toFixed(2)} MiB for a ${(size / MiB).toFixed(2)} MiB file (${(refetched / 1024).toFixed(0)} KiB again)`);
  });
});
