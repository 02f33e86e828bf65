import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { exists } from '../../network/storage/stores.js';
import { pieceSize } from '../../network/metainfo/metainfo.js';
import { tempDir, randomFile, sha1File, startNode, cleanup, spawnCli, verifiedOnDisk, type CliChild } from '../helpers.js';

const MiB = 1024 * 1024;

describe('crashes: killed seeds and killed downloaders', function () {
  this.timeout(90_000);
  let dir: string;
  const nodes: Node[] = [];
  const children: CliChild[] = [];

  beforeEach(async () => {
    dir = await tempDir();
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await cleanup(dir);
  });

  it('finishes the download when one of two seeds is killed (kill -9) mid-download', async () => {
    const file = path.join(dir, 'a', 'shared', 'big.bin');
    await randomFile(file, 24 * MiB);
    await fsp.mkdir(path.join(dir, 'b', 'shared'), { recursive: true });
    await fsp.copyFile(file, path.join(dir, 'b', 'shared', 'big.bin'));
    const doomed = spawnCli(['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--max-upload-rate', '3M'], path.join(dir, 'a'));
    children.push(doomed);
    const port = (await doomed.waitEvent('listening')).port as number;
    const survivor = await startNode(path.join(dir, 'b'), { maxUploadRate: 3 * MiB });
    nodes.push(survivor);
    const leech = await startNode(path.join(dir, 'leech'), {
      peers: [{ host: '127.0.0.1', port }, { host: '127.0.0.1', port: survivor.port }],
    });
    nodes.push(leech);
    const h = await leech.download('big.bin');
    await new Promise<void>((resolve) => {
      const check = () => {
        const d = leech.listDownloads().find((x) => x.infohash === h);
        if (d && d.verified >= d.pieces * 0.25) {
          leech.off('progress', check);
          resolve();
        }
      };
      leech.on('progress', check);
    });
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    const final = await leech.whenDone(h);
    expect(await sha1File(final)).to.equal(await sha1File(file));
  });

  it('resumes after kill -9 of the downloader, fetching only the pieces that were not verified', async () => {
    const seedDir = path.join(dir, 'seed');
    await randomFile(path.join(seedDir, 'shared', 'resume.bin'), 24 * MiB + 4321);
    const seed = await startNode(seedDir, { maxUploadRate: 6 * MiB });
    nodes.push(seed);
    const m = seed.files()[0]!.metainfo;
    const leechDir = path.join(dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'shared'), { recursive: true });
    const args = ['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--peer', `127.0.0.1:${seed.port}`, '--get', m.infoHashHex, '--exit-when-done'];

    const first = spawnCli(args, leechDir);
    children.push(first);
    await first.waitEvent('progress', 30_000, (e) => (e.verified as number) >= m.pieceCount * 0.3);
    first.proc.kill('SIGKILL');
    await first.exited;

    const part = path.join(leechDir, 'dl', 'resume.bin.part');
    const before = await verifiedOnDisk(part, m);
    expect(before.size, 'some pieces were verified before the crash').to.be.greaterThan(0);
    expect(before.size).to.be.lessThan(m.pieceCount);
    let missingBytes = 0;
    for (let i = 0; i < m.pieceCount; i++) if (!before.has(i)) missingBytes += pieceSize(m, i);

    const second = spawnCli(args, leechDir);
    children.push(second);
    const done = await second.waitEvent('done', 60_000);
    expect((await second.exited).code).to.equal(0);
    expect(done.fetched, 'the restarted node fetched exactly the missing pieces').to.equal(missingBytes);
    expect(done.downloaded as number, 'and little besides').to.be.at.most(missingBytes + 2 * m.pieceLength);
    expect(await sha1File(path.join(leechDir, 'dl', 'resume.bin'))).to.equal(await sha1File(path.join(seedDir, 'shared', 'resume.bin')));
    expect(await exists(part), 'no .part left behind').to.equal(false);
  });

  it('kill -9 five times at random moments of a download from two seeds: it resumes each time, loses no verified piece, and refetches little', async () => {
    // A seeded PRNG: the moments are random, and a failure can be replayed (SHOAL_CRASH_SEED).
    const start = Number(process.env.SHOAL_CRASH_SEED ?? 1 + (Date.now() % 100_000));
    const label = `SHOAL_CRASH_SEED=${start}`;
    let seedValue = start;
    const random = () => (seedValue = (seedValue * 48271) % 2147483647) / 2147483647;
    const size = 64 * MiB + 999;
    const original = path.join(dir, 'original', 'film.bin');
    await randomFile(original, size);
    const seeds: Node[] = [];
    for (const name of ['s1', 's2']) {
      await fsp.mkdir(path.join(dir, name, 'shared'), { recursive: true });
      await fsp.copyFile(original, path.join(dir, name, 'shared', 'film.bin'));
      const s = await startNode(path.join(dir, name), { maxUploadRate: 3 * MiB });
      nodes.push(s);
      seeds.push(s);
    }
    const m = seeds[0]!.files()[0]!.metainfo;
    const leechDir = path.join(dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'shared'), { recursive: true });
    const peers = seeds.flatMap((s) => ['--peer', `127.0.0.1:${s.port}`]);
    const args = ['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--no-multicast', ...peers, '--get', m.infoHashHex, '--exit-when-done'];
    const part = path.join(leechDir, 'dl', 'film.bin.part');
    const final = path.join(leechDir, 'dl', 'film.bin');

    let kept = new Set<number>();
    const history: string[] = [];
    for (let kill = 0; kill < 5; kill++) {
      const child = spawnCli(args, leechDir);
      children.push(child);
      // Anywhere from the start (a recheck under way) to well into the transfer.
      const ms = 200 + Math.floor(random() * 1800);
      await new Promise((r) => setTimeout(r, ms));
      child.proc.kill('SIGKILL');
      await child.exited;
      expect(await exists(final), `${label}: nothing under the final name after kill ${kill + 1}`).to.equal(false);
      if (!(await exists(part))) {
        history.push(`kill ${kill + 1} at ${ms} ms: no .part yet`);
        continue;
      }
      const onDisk = await verifiedOnDisk(part, m);
      for (const i of kept) expect(onDisk.has(i), `${label}: piece ${i}, verified before kill ${kill + 1}, is still on disk`).to.equal(true);
      history.push(`kill ${kill + 1} at ${ms} ms: ${onDisk.size}/${m.pieceCount} pieces on disk`);
      kept = onDisk;
    }
    expect(kept.size, `${label}: the runs made progress (${history.join('; ')})`).to.be.greaterThan(0);
    let missing = 0;
    for (let i = 0; i < m.pieceCount; i++) if (!kept.has(i)) missing += pieceSize(m, i);

    const last = spawnCli(args, leechDir);
    children.push(last);
    const done = await last.waitEvent('done', 60_000);
    expect((await last.exited).code).to.equal(0);
    expect(done.fetched, `${label}: the last run fetched exactly what was missing`).to.equal(missing);
    expect(await sha1File(final)).to.equal(await sha1File(original));
    expect(await exists(part), 'no .part left behind').to.equal(false);
    // Every byte the seeds sent, over all six runs: the pieces in flight at each kill are all that is fetched twice.
    const sent = seeds.reduce((n, s) => n + (s.status().torrents.find((t) => t.infohash === m.infoHashHex)?.uploaded ?? 0), 0);
    const again = sent - size;
    console.log(`      ${label}: ${history.join('; ')}; the seeds sent ${(sent / MiB).toFixed(1)} MiB for ${(size / MiB).toFixed(1)} MiB (${(sent / size).toFixed(3)}x)`);
    // In flight at a kill: a few pieces per seed (the pieces each owns, and what its socket holds).
    expect(again, `${label}: bytes sent twice`).to.be.at.most(5 * seeds.length * 4 * m.pieceLength);
  });

  it('flushes the resume record on SIGTERM and exits 0', async () => {
    const seedDir = path.join(dir, 'seed');
    await randomFile(path.join(seedDir, 'shared', 'term.bin'), 16 * MiB);
    const seed = await startNode(seedDir, { maxUploadRate: 4 * MiB });
    nodes.push(seed);
    const m = seed.files()[0]!.metainfo;
    const leechDir = path.join(dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'shared'), { recursive: true });
    const child = spawnCli(['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--peer', `127.0.0.1:${seed.port}`, '--get', 'term.bin'], leechDir);
    children.push(child);
    await child.waitEvent('progress', 30_000, (e) => (e.verified as number) >= 4);
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).to.equal(0);
    const record = JSON.parse(await fsp.readFile(path.join(leechDir, 'dl', '.shoal', 'resume', `${m.infoHashHex}.json`), 'utf8')) as { have: string };
    const listed = [...Buffer.from(record.have, 'base64')].reduce((n, byte) => n + popcount(byte), 0);
    const onDisk = await verifiedOnDisk(path.join(leechDir, 'dl', 'term.bin.part'), m);
    expect(listed, 'every verified piece is listed after a clean stop').to.equal(onDisk.size);
  });
});

function popcount(b: number): number {
  let n = 0;
  for (; b; b &= b - 1) n++;
  return n;
}
