/**
 * A shared file changed under a seed while a peer downloads it: modified in place, truncated,
 * replaced by another file (renamed over it), deleted. In each case the downloader gets no
 * byte that fails its hash from that seed (its hash-failure count stays 0) and finishes from
 * an honest seed; the changed seed logs why, hashes the file again and announces what it
 * holds now (a new torrent, or none); and it keeps serving its other files meanwhile.
 *
 * The seeds run without a folder watcher and with the minute-long rescan, so only the seed's
 * own check of each piece it reads (its file's stamp, then the piece's hash) can notice the
 * change in time. `openFiles: 1` makes the seed close and reopen its files all the time (two
 * are served at once), so a replaced or deleted file is met by a fresh open as well as through
 * a descriptor opened before the change.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node, SharedFile } from '../../network/index.js';
import { captureLog, nodesPerTest, randomFile, sha1File, startNode, startSharing, waitFor } from '../helpers.js';
import { expectSameTree } from '../tree.js';

const MiB = 1024 * 1024;
const BIG = 16 * MiB;

type Change = 'modified' | 'truncated' | 'replaced' | 'deleted';

describe('faults on a seed: a shared file changed while it is served', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();

  async function scene(openFiles: number) {
    const log = captureLog();
    const original = path.join(fx.dir, 'original', 'big.bin');
    await randomFile(original, BIG);
    // A slow seed, so the download is under way when its file changes; an honest one as slow.
    const changed = await startSharing(fx.dir, fx.nodes, 'changed', { 'big.bin': original, 'other.bin': 6 * MiB }, { logger: log.logger, maxUploadRate: 3 * MiB, openFiles });
    const honest = await startSharing(fx.dir, fx.nodes, 'honest', { 'big.bin': original }, { maxUploadRate: 3 * MiB });
    const big = changed.files().find((f) => f.name === 'big.bin')!.metainfo;
    const other = changed.files().find((f) => f.name === 'other.bin')!.metainfo;
    const added: SharedFile[] = [];
    const removed: SharedFile[] = [];
    changed.on('file-added', (f) => added.push(f));
    changed.on('file-removed', (f) => removed.push(f));
    const peers = (...ns: Node[]) => ns.map((n) => ({ host: '127.0.0.1', port: n.port }));
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: peers(changed, honest) });
    fx.nodes.push(leech);
    const otherLeech = await startNode(path.join(fx.dir, 'other-leech'), { peers: peers(changed) });
    fx.nodes.push(otherLeech);
    const bigDone = leech.whenDone(await leech.download(big.infoHashHex));
    const otherDone = otherLeech.whenDone(await otherLeech.download(other.infoHashHex));
    // Change it once a quarter is here, both seeds having sent some.
    await waitFor(() => {
      const d = leech.listDownloads().find((x) => x.infohash === big.infoHashHex);
      return d && d.verified >= d.pieces / 4;
    }, 20_000, 'a quarter of big.bin');
    return { log, changed, leech, big, other, original, added, removed, bigDone, otherDone, otherLeech, file: path.join(changed.sharedDir, 'big.bin') };
  }

  /** Change the seed's big.bin the way `how` says. */
  async function change(how: Change, file: string): Promise<void> {
    if (how === 'modified') {
      // Same size, one byte changed in every third piece: only hashing finds which.
      const fh = await fsp.open(file, 'r+');
      try {
        for (let i = 0; i * 512 * 1024 < BIG; i += 3) await fh.write(Buffer.from([0x5a ^ i]), 0, 1, i * 512 * 1024 + 1000);
      } finally {
        await fh.close();
      }
    } else if (how === 'truncated') await fsp.truncate(file, BIG / 2 + 1234);
    else if (how === 'replaced') {
      const next = path.join(path.dirname(file), '.incoming');
      await randomFile(next, BIG);
      await fsp.rename(next, file);
    } else await fsp.rm(file);
  }

  const cases: Array<[Change, number]> = [['modified', 256], ['truncated', 256], ['replaced', 256], ['deleted', 256], ['replaced', 1], ['deleted', 1]];
  for (const [how, openFiles] of cases) {
    {
      it(`${how} while served (open files ${openFiles}): no bad byte sent, the seed says why, hashes it again, announces it anew and serves its other file`, async () => {
        const s = await scene(openFiles);
        await change(how, s.file);

        const final = await s.bigDone;
        expect(await sha1File(final), 'the download is the original file').to.equal(await sha1File(s.original));
        const info = s.leech.listDownloads().find((d) => d.infohash === s.big.infoHashHex)!;
        expect(info.hashFailures, 'the changed seed sent no piece that failed its hash').to.equal(0);
        expect(await sha1File(await s.otherDone), 'its other file was served all along').to.equal(await sha1File(path.join(s.changed.sharedDir, 'other.bin')));

        // The seed noticed by itself (no watcher, no rescan in time), and said why.
        await waitFor(() => s.log.warnings().some((w) => /shared file changed since it was hashed/.test(w)), 10_000, 'the change logged');
        const reasons = s.log.warnings().filter((w) => /shared file changed since it was hashed|not serving a shared file that changed/.test(w));
        expect(reasons.length, `one line per change, not per piece:\n${reasons.join('\n')}`).to.be.at.most(2);
        if (how === 'modified') expect(reasons.join('\n')).to.match(/no longer matches its hash|stamp/);
        // Hashed again: the old torrent is withdrawn, and what the file holds now announced.
        await waitFor(() => s.removed.some((f) => f.metainfo.infoHashHex === s.big.infoHashHex), 10_000, 'the old torrent withdrawn');
        const now = s.changed.files().find((f) => f.name === 'big.bin');
        if (how === 'deleted') {
          expect(now, 'a deleted file is no longer shared').to.equal(undefined);
          return;
        }
        await waitFor(() => s.added.some((f) => f.name === 'big.bin'), 10_000, 'the new torrent announced');
        const fresh = s.changed.files().find((f) => f.name === 'big.bin')!;
        expect(fresh.metainfo.infoHashHex).to.not.equal(s.big.infoHashHex);
        expect(fresh.size).to.equal((await fsp.stat(s.file)).size);
        if (openFiles === 1) return;
        // And served: another node gets the new content, byte for byte.
        await s.changed.changeSettings({ maxUploadRate: 0 });
        const next = await startNode(path.join(fx.dir, 'next'), { peers: [{ host: '127.0.0.1', port: s.changed.port }] });
        fx.nodes.push(next);
        const hits = await next.search('big.bin');
        expect(hits.map((h) => h.infohash), 'the new torrent is what a search finds').to.deep.equal([fresh.metainfo.infoHashHex]);
        expect(await sha1File(await next.whenDone(await next.download(fresh.metainfo.infoHashHex)))).to.equal(await sha1File(s.file));
      });
    }
  }
  it('a file of a folder shared whole, modified in place while served: no bad piece sent, the folder hashed again and its new torrent announced and served', async () => {
    const log = captureLog();
    const original = path.join(fx.dir, 'original', 'album');
    await randomFile(path.join(original, 'a.bin'), 8 * MiB);
    await randomFile(path.join(original, 'b.bin'), 8 * MiB + 777);
    const copy = async (to: string) => {
      await fsp.mkdir(to, { recursive: true });
      for (const f of ['a.bin', 'b.bin']) await fsp.copyFile(path.join(original, f), path.join(to, f));
    };
    const folder = path.join(fx.dir, 'changed', 'album');
    await copy(folder);
    await copy(path.join(fx.dir, 'honest', 'album'));
    const changed = await startSharing(fx.dir, fx.nodes, 'changed', { 'other.bin': 6 * MiB }, { logger: log.logger, maxUploadRate: 3 * MiB, shareFoldersAsTorrents: [folder] });
    const honest = await startSharing(fx.dir, fx.nodes, 'honest', {}, { maxUploadRate: 3 * MiB, shareFoldersAsTorrents: [path.join(fx.dir, 'honest', 'album')] });
    const album = changed.files().find((f) => f.metainfo.multiFile)!.metainfo;
    expect(honest.files().find((f) => f.metainfo.multiFile)!.metainfo.infoHashHex, 'both seeds share one torrent').to.equal(album.infoHashHex);
    const other = changed.files().find((f) => f.name === 'other.bin')!.metainfo;
    const added: SharedFile[] = [];
    changed.on('file-added', (f) => added.push(f));
    const peers = (...ns: Node[]) => ns.map((n) => ({ host: '127.0.0.1', port: n.port }));
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: peers(changed, honest) });
    fx.nodes.push(leech);
    const otherLeech = await startNode(path.join(fx.dir, 'other-leech'), { peers: peers(changed) });
    fx.nodes.push(otherLeech);
    const albumDone = leech.whenDone(await leech.download(album.infoHashHex));
    const otherDone = otherLeech.whenDone(await otherLeech.download(other.infoHashHex));
    await waitFor(() => {
      const d = leech.listDownloads().find((x) => x.infohash === album.infoHashHex);
      return d && d.verified >= d.pieces / 4;
    }, 20_000, 'a quarter of the album');
    // b.bin rewritten in place: one byte in every third piece of it.
    const fh = await fsp.open(path.join(folder, 'b.bin'), 'r+');
    try {
      for (let at = 1000; at < 8 * MiB; at += 3 * 512 * 1024) await fh.write(Buffer.from([0xa5]), 0, 1, at);
    } finally {
      await fh.close();
    }

    await expectSameTree(await albumDone, original, ['a.bin', 'b.bin']);
    const info = leech.listDownloads().find((d) => d.infohash === album.infoHashHex)!;
    expect(info.hashFailures, 'the changed seed sent no piece that failed its hash').to.equal(0);
    expect(await sha1File(await otherDone)).to.equal(await sha1File(path.join(changed.sharedDir, 'other.bin')));
    await waitFor(() => log.warnings().some((w) => /^shared file changed since it was hashed: b\.bin: /.test(w)), 10_000, 'the change logged, naming the file');
    await waitFor(() => added.some((f) => f.metainfo.multiFile && f.metainfo.infoHashHex !== album.infoHashHex), 10_000, 'the folder hashed again and announced');
    expect(log.records.some((r) => r.msg === 'a folder shared as a torrent changed: hashing it again')).to.equal(true);
    const fresh = changed.files().find((f) => f.metainfo.multiFile)!.metainfo;
    expect(fresh.infoHashHex).to.not.equal(album.infoHashHex);
    await changed.changeSettings({ maxUploadRate: 0 });
    const next = await startNode(path.join(fx.dir, 'next'), { peers: peers(changed) });
    fx.nodes.push(next);
    await expectSameTree(await next.whenDone(await next.download(fresh.infoHashHex)), folder, ['a.bin', 'b.bin']);
  });
});
