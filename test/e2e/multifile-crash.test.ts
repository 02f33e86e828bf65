/**
 * A multi-file download killed with kill -9 (a real node-cli child process) resumes from its
 * `<name>.part/` folder and resume record: only the pieces that were not verified are fetched
 * again, nothing appears under the final name before every wanted piece is verified, and the
 * files it was told to fetch (`--only`) are still the only ones after the restart.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { exists } from '../../network/storage/stores.js';
import { pieceHash, pieceSize, type Metainfo } from '../../network/metainfo/metainfo.js';
import { cleanup, spawnCli, startNode, tempDir, type CliChild } from '../helpers.js';
import { expectSameTree, mixedTree, writeTree } from '../tree.js';

const KiB = 1024;

/** The pieces whose bytes in the .part folder match the torrent (every file present: no selection). */
async function verifiedOnDisk(part: string, m: Metainfo): Promise<Set<number>> {
  const stream = Buffer.concat(await Promise.all(m.files.map((f) => fsp.readFile(path.join(part, ...f.path)))));
  const ok = new Set<number>();
  for (let i = 0; i < m.pieceCount; i++) {
    const bytes = stream.subarray(i * m.pieceLength, i * m.pieceLength + pieceSize(m, i));
    if (createHash('sha1').update(bytes).digest().equals(pieceHash(m, i))) ok.add(i);
  }
  return ok;
}

describe('multi-file downloads survive kill -9', function () {
  this.timeout(120_000);
  let dir: string;
  const nodes: Node[] = [];
  const children: CliChild[] = [];

  beforeEach(async () => {
    dir = await tempDir('shoal-mf-crash-');
  });
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await cleanup(dir);
  });

  async function seed(spec: Record<string, number>): Promise<{ m: Metainfo; original: string; port: number }> {
    const original = path.join(dir, 'seed', 'album');
    await writeTree(original, spec);
    const s = await startNode(path.join(dir, 'seed'), { pieceLength: 32 * KiB, maxUploadRate: 2 * 1024 * KiB, shareFoldersAsTorrents: [original] });
    nodes.push(s);
    return { m: s.files().find((f) => f.metainfo.multiFile)!.metainfo, original, port: s.port };
  }

  async function killAt(args: string[], cwd: string, pieces: number): Promise<void> {
    const first = spawnCli(args, cwd);
    children.push(first);
    await first.waitEvent('progress', 40_000, (e) => (e.verified as number) >= pieces);
    first.proc.kill('SIGKILL');
    await first.exited;
  }

  it('resumes the folder, fetching only the pieces that were not verified', async () => {
    const spec = mixedTree(60, 4 * 1024 * KiB);
    const { m, original, port } = await seed(spec);
    const leechDir = path.join(dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'shared'), { recursive: true });
    const args = ['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--no-multicast', '--peer', `127.0.0.1:${port}`, '--get', m.infoHashHex, '--exit-when-done'];
    await killAt(args, leechDir, Math.floor(m.pieceCount * 0.3));

    const part = path.join(leechDir, 'dl', 'album.part');
    expect(await exists(path.join(leechDir, 'dl', 'album')), 'nothing under the final name before every piece is verified').to.equal(false);
    const before = await verifiedOnDisk(part, m);
    expect(before.size, 'some pieces were verified before the crash').to.be.greaterThan(0);
    expect(before.size).to.be.lessThan(m.pieceCount);
    let missing = 0;
    for (let i = 0; i < m.pieceCount; i++) if (!before.has(i)) missing += pieceSize(m, i);

    const second = spawnCli(args, leechDir);
    children.push(second);
    const done = await second.waitEvent('done', 60_000);
    expect((await second.exited).code).to.equal(0);
    expect(done.fetched, 'the restarted node fetched exactly the missing pieces').to.equal(missing);
    await expectSameTree(path.join(leechDir, 'dl', 'album'), original, Object.keys(spec));
    expect(await exists(part), 'no .part folder left behind').to.equal(false);
  });

  it('keeps the files chosen with --only across kill -9: the restart without --only fetches those alone', async () => {
    const spec = mixedTree(20, 4 * 1024 * KiB);
    const { m, original, port } = await seed(spec);
    const leechDir = path.join(dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'shared'), { recursive: true });
    const base = ['127.0.0.1', '0', '--shared', 'shared', '--downloads', 'dl', '--no-multicast', '--peer', `127.0.0.1:${port}`, '--get', m.infoHashHex, '--exit-when-done'];
    await killAt([...base, '--only', 'media/*', '--only', 'one-byte.txt'], leechDir, 8);
    const part = path.join(leechDir, 'dl', 'album.part');
    expect(await exists(path.join(part, 'media', 'video.mkv'))).to.equal(true);
    expect(await exists(path.join(part, 'docs', 'readme.txt')), 'a file left out is never made').to.equal(false);

    const second = spawnCli(base, leechDir);
    children.push(second);
    await second.waitEvent('done', 60_000);
    expect((await second.exited).code).to.equal(0);
    await expectSameTree(path.join(leechDir, 'dl', 'album'), original, ['media/video.mkv', 'media/audio.flac', 'one-byte.txt']);
  });
});
