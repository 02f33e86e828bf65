/**
 * Multi-file torrents between Shoal nodes on loopback: a folder shared whole as one torrent
 * (`shareFoldersAsTorrents`, the facade of --share-folder-as-torrent) is downloaded into
 * `downloads/<name>/` with every file identical (nested paths, many files, empty files, files
 * smaller than a block, pieces crossing files), only the files asked for with `only`, served
 * to a third node while it downloads, and read one file at a time with Range.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { exists } from '../../network/storage/stores.js';
import { WebServer } from '../../web/server.js';
import { nodesPerTest, startNode, waitFor } from '../helpers.js';
import { call } from '../web-http.js';
import { expectSameTree, listTree, mixedTree, writeTree, type TreeSpec } from '../tree.js';

const KiB = 1024;
const PIECE = 32 * KiB;

describe('multi-file torrents between Shoal nodes', function () {
  this.timeout(90_000);
  const fx = nodesPerTest();

  /** A seed sharing `spec` as the folder `album` (one torrent), and its infohash. */
  async function folderSeed(spec: TreeSpec, init: Parameters<typeof startNode>[1] = {}): Promise<{ seed: Node; h: string; original: string }> {
    const original = path.join(fx.dir, 'seed', 'album');
    await writeTree(original, spec);
    const seed = await startNode(path.join(fx.dir, 'seed'), { pieceLength: PIECE, shareFoldersAsTorrents: [original], ...init });
    fx.nodes.push(seed);
    const entry = seed.files().find((f) => f.metainfo.multiFile);
    expect(entry, 'the folder is listed in the library as one torrent').to.not.equal(undefined);
    expect(entry!.metainfo.files.length).to.equal(Object.keys(spec).length);
    return { seed, h: entry!.metainfo.infoHashHex, original };
  }

  async function leech(name: string, seeds: Node[], init: Parameters<typeof startNode>[1] = {}): Promise<Node> {
    const n = await startNode(path.join(fx.dir, name), { peers: seeds.map((s) => ({ host: '127.0.0.1', port: s.port })), ...init });
    fx.nodes.push(n);
    return n;
  }

  it('downloads a whole folder into downloads/<name>/: nested paths, empty files, tiny files, pieces across files', async () => {
    const spec = mixedTree();
    const { seed, h, original } = await folderSeed(spec);
    const m = seed.files().find((f) => f.metainfo.multiFile)!.metainfo;
    // Pieces cross files: some piece holds bytes of more than one file.
    expect(m.files.some((f) => f.length > 0 && f.offset % PIECE !== 0)).to.equal(true);
    const l = await leech('leech', [seed]);
    expect(await l.download(h)).to.equal(h);
    const final = await l.whenDone(h);
    expect(final).to.equal(path.join(l.downloadDir, 'album'));
    await expectSameTree(final, original, Object.keys(spec));
    expect(await exists(path.join(l.downloadDir, 'album.part')), 'no .part folder left').to.equal(false);
    const d = l.listDownloads().find((x) => x.infohash === h)!;
    expect(d).to.include({ state: 'done', multiFile: true, files: Object.keys(spec).length, selectedFiles: Object.keys(spec).length });
    expect(d.verified).to.equal(d.pieces);
    // Finished whole, the folder is shared as its torrent (and its files one by one).
    await waitFor(() => l.file(h), 10_000, 'the folder torrent in the library');
  });

  it('downloads only the files `only` names; the others are never written, the pieces they share are fetched whole', async () => {
    const spec = mixedTree(40);
    const { seed, h, original } = await folderSeed(spec);
    const l = await leech('leech', [seed]);
    await l.download(h, { only: ['*.flac', 'docs/*', 'sub/deep/er/*'] });
    const detail = l.downloadDetail(h)!;
    const wanted = ['media/audio.flac', 'docs/readme.txt', 'sub/deep/er/still/nested.bin'];
    expect(detail.fileList.filter((f) => f.selected).map((f) => f.path).sort()).to.deep.equal([...wanted].sort());
    expect(detail.selectedFiles).to.equal(3);
    const final = await l.whenDone(h);
    await expectSameTree(final, original, wanted);
    // What came is the selected files' pieces only: far less than the whole folder.
    const m = seed.files().find((f) => f.metainfo.multiFile)!.metainfo;
    const selectedBytes = wanted.reduce((n, w) => n + spec[w]!, 0);
    const d = l.listDownloads().find((x) => x.infohash === h)!;
    expect(d.fetched).to.be.at.most(selectedBytes + 2 * wanted.length * PIECE);
    expect(d.fetched).to.be.below(m.length / 2);
    expect(await listTree(l.downloadDir).then((all) => all.filter((f) => f.includes('shoal-unwanted')))).to.deep.equal([]);
  });

  it('a node serves the verified pieces of a folder while it downloads it', async () => {
    const spec = mixedTree(30, 3 * 1024 * KiB);
    // The seed sends slowly: the middle node is still downloading when the last one starts.
    const { seed, h, original } = await folderSeed(spec, { maxUploadRate: 1024 * KiB });
    const middle = await leech('middle', [seed]);
    await middle.download(h);
    await waitFor(() => (middle.listDownloads()[0]?.verified ?? 0) >= 8, 30_000, 'some verified pieces in the middle node');
    // The last node knows only the middle one.
    const last = await leech('last', [middle]);
    await last.download(h);
    await waitFor(() => (last.listDownloads()[0]?.verified ?? 0) > 0, 30_000, 'a piece from the middle node');
    expect(middle.listDownloads()[0]!.state, 'the middle node still downloads').to.equal('downloading');
    const servedEarly = middle.status().torrents.find((t) => t.infohash === h)!.uploaded;
    expect(servedEarly).to.be.greaterThan(0);
    await expectSameTree(await last.whenDone(h), original, Object.keys(spec));
  });

  it('reads one file of a folder with Range, while it downloads and once done; the folder as a whole is refused', async () => {
    const spec = { 'a/first.bin': 70_000, 'a/empty': 0, 'second.bin': 200_000, 'third.txt': 5 };
    const { seed, h, original } = await folderSeed(spec, { maxUploadRate: 256 * KiB });
    const l = await leech('leech', [seed]);
    const web = new WebServer({ node: l, port: 0, contentWaitMs: 20_000 });
    await web.start();
    try {
      await l.download(h);
      const files = l.downloadDetail(h)!.fileList;
      const second = files.find((f) => f.path === 'second.bin')!;
      const want = (await fsp.readFile(path.join(original, 'second.bin'))).subarray(1000, 1100);
      // While it downloads: the piece holding the range is fetched first, then served.
      const part = await call(web.url, 'GET', `/api/files/${h}/content?file=${second.index}`, { headers: { Range: 'bytes=1000-1099' } });
      expect(part.status).to.equal(206);
      expect(part.headers['content-range']).to.equal(`bytes 1000-1099/${spec['second.bin']}`);
      expect(part.body.equals(want)).to.equal(true);
      const whole = await call(web.url, 'GET', `/api/files/${h}/content?file=${second.index}`);
      expect(whole.status).to.equal(200);
      expect(whole.body.equals(await fsp.readFile(path.join(original, 'second.bin')))).to.equal(true);
      const folder = await call(web.url, 'GET', `/api/files/${h}/content`);
      expect(folder.status).to.equal(400);
      expect(folder.json<{ error: string }>().error).to.match(/\?file=N/);
      expect((await call(web.url, 'GET', `/api/files/${h}/content?file=99`)).status).to.equal(404);
      await l.whenDone(h);
      const empty = files.find((f) => f.path === 'a/empty')!;
      const e = await call(web.url, 'GET', `/api/files/${h}/content?file=${empty.index}`);
      expect([e.status, e.body.length]).to.deep.equal([200, 0]);
      const first = files.find((f) => f.path === 'a/first.bin')!;
      const tail = await call(web.url, 'GET', `/api/files/${h}/content?file=${first.index}`, { headers: { Range: 'bytes=-10' } });
      expect(tail.status).to.equal(206);
      expect(tail.body.equals((await fsp.readFile(path.join(original, 'a/first.bin'))).subarray(-10))).to.equal(true);
    } finally {
      await web.stop();
    }
  });
});
