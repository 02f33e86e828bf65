import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Node } from '../../network/index.js';
import { encodeTorrent } from '../../network/metainfo/metainfo.js';
import { makeMagnet } from '../../network/metainfo/magnet.js';
import { sha1File, startNode, waitFor, nodesPerTest, startSeeds, randomFile, rejection, captureLog } from '../helpers.js';
import { PREEMPT_AHEAD_BLOCKS } from '../../network/swarm/streaming.js';
import { BLOCK_LENGTH } from '../../network/wire/peer-wire.js';
import { fakePeer, leechFromStaller } from '../fake-peer.js';
import { exists } from '../../network/storage/stores.js';

const MiB = 1024 * 1024;

describe('swarm: downloads between nodes on loopback', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const { nodes, fakes } = fx;

  const seeds = (count: number, size: number, name = 'movie.bin') => startSeeds(fx.dir, nodes, count, size, name);

  async function downloader(peers: Node[], extra: Partial<Parameters<typeof startNode>[1]> = {}): Promise<Node> {
    const n = await startNode(path.join(fx.dir, 'leech'), { peers: peers.map((p) => ({ host: '127.0.0.1', port: p.port })), ...extra });
    nodes.push(n);
    return n;
  }

  it('downloads one file from three seeds at once, every seed contributing, bytes identical', async () => {
    const { seeds: s, digest } = await seeds(3, 40 * MiB + 12345);
    const leech = await downloader(s);
    const infohash = await leech.download('movie.bin');
    const final = await leech.whenDone(infohash);
    expect(final).to.equal(path.join(leech.downloadDir, 'movie.bin'));
    expect(await sha1File(final)).to.equal(digest);
    const uploaded = s.map((n) => n.status().torrents.find((t) => t.infohash === infohash)?.uploaded ?? 0);
    for (const u of uploaded) expect(u, `each seed uploaded something: ${uploaded}`).to.be.greaterThan(0);
    expect(uploaded.reduce((a, b) => a + b)).to.be.at.least(40 * MiB);
    expect(await fsp.readdir(leech.downloadDir)).to.not.include('movie.bin.part');
    // The finished file joins the library and is served to others.
    await waitFor(() => leech.file(infohash), 10_000, 'finished file in library');
  });

  it('accepts an infohash, a magnet link and a .torrent file as the target', async () => {
    const { seeds: s, digest } = await seeds(1, 3 * MiB + 7, 'a.bin');
    const m = s[0]!.files()[0]!.metainfo;
    const byHash = await downloader(s);
    expect(await sha1File(await byHash.whenDone(await byHash.download(m.infoHashHex)))).to.equal(digest);

    const viaMagnet = await startNode(path.join(fx.dir, 'magnet'));
    nodes.push(viaMagnet);
    const magnet = makeMagnet(m, { peers: [{ host: '127.0.0.1', port: s[0]!.port }] });
    expect(await sha1File(await viaMagnet.whenDone(await viaMagnet.download(magnet)))).to.equal(digest);

    const viaTorrent = await startNode(path.join(fx.dir, 'torrent'), { peers: [{ host: '127.0.0.1', port: s[0]!.port }] });
    nodes.push(viaTorrent);
    const torrentFile = path.join(fx.dir, 'a.torrent');
    await fsp.writeFile(torrentFile, encodeTorrent(m));
    expect(await sha1File(await viaTorrent.whenDone(await viaTorrent.download(torrentFile)))).to.equal(digest);
  });

  it('drops a peer that sends corrupt blocks, bans it, and still produces the right file', async () => {
    const { seeds: s, digest } = await seeds(1, 8 * MiB, 'b.bin');
    const m = s[0]!.files()[0]!.metainfo;
    const liar = await fakePeer(m, 'corrupt');
    fakes.push(liar);
    const log = captureLog();
    const leech = await startNode(path.join(fx.dir, 'leech'), {
      logger: log.logger,
      peers: [{ host: '127.0.0.1', port: liar.port }, { host: '127.0.0.1', port: s[0]!.port }],
    });
    nodes.push(leech);
    const h = await leech.download(m.infoHashHex);
    expect(await sha1File(await leech.whenDone(h))).to.equal(digest);
    const info = leech.listDownloads().find((d) => d.infohash === h)!;
    expect(info.hashFailures, 'pieces from the liar failed their hash').to.be.at.least(2);
    expect(liar.requests).to.be.greaterThan(0);
    expect(liar.connections, 'a banned peer is not dialled again').to.equal(1);
    // Each strike and the ban are logged with their reason, naming the liar.
    const liarLabel = `127.0.0.1:${liar.port}`;
    const strikes = log.records.filter((r) => r.msg === 'piece failed its hash check: peer sent corrupt data' && r.peer === liarLabel);
    expect(strikes.map((r) => r.strikes)).to.deep.equal([1, 2]);
    expect(log.records.some((r) => r.msg === 'closing peer: sent 2 corrupt pieces: banned' && r.peer === liarLabel)).to.equal(true);
    expect(log.records.some((r) => /corrupt/.test(r.msg) && r.peer === `127.0.0.1:${s[0]!.port}`), 'the honest seed is never blamed').to.equal(false);
  });

  it('takes no block it did not ask for: a peer sending unasked garbage poisons nothing and is closed', async () => {
    // A slow seed (2 MiB/s, about 2 s for the file): the poisoner has time to send its garbage.
    const { seeds: s, digest } = await startSeeds(fx.dir, nodes, 1, 4 * MiB, 'p.bin', { maxUploadRate: 2 * MiB });
    const m = s[0]!.files()[0]!.metainfo;
    const poisoner = await fakePeer(m, 'poison');
    fakes.push(poisoner);
    const log = captureLog();
    const leech = await startNode(path.join(fx.dir, 'leech'), {
      logger: log.logger,
      peers: [{ host: '127.0.0.1', port: poisoner.port }, { host: '127.0.0.1', port: s[0]!.port }],
    });
    nodes.push(leech);
    const h = await leech.download(m.infoHashHex);
    await waitFor(() => log.warnings().some((w) => /closing peer: sent more than 64 blocks it was not asked for/.test(w)), 10_000, 'the poisoner closed for it');
    expect(await sha1File(await leech.whenDone(h))).to.equal(digest);
    const info = leech.listDownloads().find((d) => d.infohash === h)!;
    expect(info.hashFailures, 'no unasked block reached a piece').to.equal(0);
    expect(poisoner.requests, 'it did send its garbage').to.be.greaterThan(64);
  });

  it('re-asks stalled requests from another peer and finishes', async () => {
    const { seeds: s, digest } = await seeds(1, 6 * MiB, 'c.bin');
    const m = s[0]!.files()[0]!.metainfo;
    const staller = await fakePeer(m, 'stall');
    fakes.push(staller);
    const leech = await startNode(path.join(fx.dir, 'leech'), {
      peers: [{ host: '127.0.0.1', port: staller.port }, { host: '127.0.0.1', port: s[0]!.port }],
      limits: { requestTimeoutMs: 500 },
    });
    nodes.push(leech);
    const h = await leech.download(m.infoHashHex);
    expect(await sha1File(await leech.whenDone(h))).to.equal(digest);
    expect(staller.requests, 'the staller was asked and never answered').to.be.greaterThan(0);
  });

  it('drops a peer after three stalls', async () => {
    const { seeds: s } = await seeds(1, 2 * MiB, 'g.bin');
    const m = s[0]!.files()[0]!.metainfo;
    const staller = await fakePeer(m, 'stall');
    fakes.push(staller);
    // Only the staller is known, so nobody else can take its blocks; the limit must act alone.
    const leech = await startNode(path.join(fx.dir, 'leech'), { peers: [{ host: '127.0.0.1', port: staller.port }], limits: { requestTimeoutMs: 300 } });
    nodes.push(leech);
    // The staller speaks no control protocol, so hand the node the metainfo as a .torrent.
    const torrentFile = path.join(fx.dir, 'g.torrent');
    await fsp.writeFile(torrentFile, encodeTorrent(m));
    await leech.download(torrentFile);
    const t0 = Date.now();
    await waitFor(() => staller.closedByPeer >= 1, 10_000, 'the staller to be dropped');
    // Not on the first stall: each takes a tick to notice and a tick before new requests.
    expect(Date.now() - t0, 'three stalls, checked once a second').to.be.within(2_000, 10_000);
  });

  it('never overwrites a different file with the same name: the download takes a free name', async () => {
    const { seeds: s, digest } = await seeds(1, 2 * MiB, 'song.mp3');
    const leechDir = path.join(fx.dir, 'leech');
    await fsp.mkdir(path.join(leechDir, 'downloads'), { recursive: true });
    await fsp.writeFile(path.join(leechDir, 'downloads', 'song.mp3'), 'a different song');
    const leech = await downloader(s);
    const final = await leech.whenDone(await leech.download(s[0]!.files()[0]!.metainfo.infoHashHex));
    expect(path.basename(final)).to.equal('song (1).mp3');
    expect(await sha1File(final)).to.equal(digest);
    expect(await fsp.readFile(path.join(leechDir, 'downloads', 'song.mp3'), 'utf8')).to.equal('a different song');
  });

  it('cancel removes the .part file and the resume record', async () => {
    const { seeds: s } = await seeds(1, 16 * MiB, 'd.bin');
    const slow = s[0]!;
    await slow.stop();
    nodes.splice(nodes.indexOf(slow), 1);
    // Restart the seed with an upload limit so the download is still running when we cancel.
    const seed = await startNode(path.join(fx.dir, 'seed0'), { maxUploadRate: 2 * MiB });
    nodes.push(seed);
    const leech = await downloader([seed]);
    const h = await leech.download('d.bin');
    await waitFor(() => leech.listDownloads().find((d) => d.infohash === h && d.verified > 0), 10_000, 'first piece');
    const part = path.join(leech.downloadDir, 'd.bin.part');
    const record = path.join(leech.downloadDir, '.shoal', 'resume', `${h}.json`);
    await fsp.access(part);
    await waitFor(() => fsp.access(record).then(() => true, () => false), 5_000, 'resume record');
    expect(await leech.cancel(h)).to.equal(true);
    expect(await exists(part), '.part removed').to.equal(false);
    expect(await exists(record), 'resume record removed').to.equal(false);
    expect(leech.listDownloads()).to.deep.equal([]);
  });

  it('starts despite damaged resume records, ignoring them', async () => {
    const resume = path.join(fx.dir, 'leech', 'downloads', '.shoal', 'resume');
    await fsp.mkdir(resume, { recursive: true });
    await fsp.writeFile(path.join(resume, `${'a'.repeat(40)}.json`), '{not json');
    const record = { version: 1, infohash: 'b'.repeat(40), part: 'x.part', torrent: Buffer.from('garbage').toString('base64'), have: '', savedAt: 0 };
    await fsp.writeFile(path.join(resume, `${'b'.repeat(40)}.json`), JSON.stringify(record));
    const { seeds: s, digest } = await seeds(1, 1 * MiB, 'f.bin');
    const leech = await downloader(s);
    expect(leech.listDownloads()).to.deep.equal([]);
    expect(await sha1File(await leech.whenDone(await leech.download('f.bin')))).to.equal(digest);
  });

  it('reports a clear error for a name nobody shares', async () => {
    const { seeds: s } = await seeds(1, 1024, 'e.bin');
    const leech = await downloader(s);
    let err: Error | null = null;
    await leech.download('no-such-file.bin').catch((e: Error) => (err = e));
    expect(err).to.be.an('error');
    expect(err!.message).to.match(/no known peer shares a file named "no-such-file.bin"/);
  });

  it(`a reader takes a queue back only when more than PREEMPT_AHEAD_BLOCKS (${PREEMPT_AHEAD_BLOCKS}) blocks stand before the wanted piece`, async () => {
    const L = 256 * 1024;
    expect(L / BLOCK_LENGTH, 'one piece is exactly the bound').to.equal(PREEMPT_AHEAD_BLOCKS);
    await randomFile(path.join(fx.dir, 'seed', 'shared', 'video.bin'), 16 * L);
    const seed = await startNode(path.join(fx.dir, 'seed'), { pieceLength: L });
    nodes.push(seed);
    const { leech, staller, infohash: h } = await leechFromStaller(fx.dir, seed.files()[0]!.metainfo);
    fakes.push(staller);
    nodes.push(leech);
    await waitFor(() => staller.requests >= 3 * PREEMPT_AHEAD_BLOCKS, 10_000, 'a queue of requests at the staller');
    await new Promise((r) => setTimeout(r, 200));
    const order = [...new Set(staller.log.map((e) => e.index))];
    expect(staller.log.slice(0, 2 * PREEMPT_AHEAD_BLOCKS).map((e) => e.index)).to.deep.equal([
      ...Array<number>(PREEMPT_AHEAD_BLOCKS).fill(order[0]!),
      ...Array<number>(PREEMPT_AHEAD_BLOCKS).fill(order[1]!),
    ]);

    // The second piece asked for has exactly PREEMPT_AHEAD_BLOCKS before it: left alone.
    await rejection(leech.readContent(h, order[1]! * L, order[1]! * L + 10, { waitMs: 200 }));
    expect(staller.log.filter((e) => e.type === 'cancel'), 'no cancel at the bound').to.have.length(0);

    // The third has one piece more before it: the queue is taken back, that piece asked first.
    const mark = staller.log.length;
    await rejection(leech.readContent(h, order[2]! * L, order[2]! * L + 10, { waitMs: 300 }));
    const after = staller.log.slice(mark);
    const cancels = after.filter((e) => e.type === 'cancel').length;
    expect(cancels, 'cancels beyond the bound').to.be.greaterThan(2 * PREEMPT_AHEAD_BLOCKS - 1);
    expect(after[cancels]).to.deep.include({ type: 'request', index: order[2] });
  });
});
