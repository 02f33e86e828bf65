import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Node, DownloadInfo } from '../../network/index.js';
import { exists } from '../../network/storage/stores.js';
import { clientName } from '../../network/swarm/client-name.js';
import { randomFile, sha1File, startNode, waitFor, nodesPerTest, startSeeds, startSharing } from '../helpers.js';

const MiB = 1024 * 1024;

describe('node facade for the dashboard', function () {
  this.timeout(60_000);
  const fx = nodesPerTest();
  const { nodes } = fx;

  /** `count` nodes sharing one random file, each uploading at most `rate` bytes a second. */
  const seeds = (count: number, size: number, rate: number, name = 'movie.bin') => startSeeds(fx.dir, nodes, count, size, name, { maxUploadRate: rate });

  async function leech(peers: Node[], name = 'leech', init: Parameters<typeof startNode>[1] = {}): Promise<Node> {
    const n = await startNode(path.join(fx.dir, name), { peers: peers.map((p) => ({ host: '127.0.0.1', port: p.port })), ...init });
    nodes.push(n);
    return n;
  }

  const info = (n: Node, h: string): DownloadInfo => n.listDownloads().find((d) => d.infohash === h)!;
  const seedUploaded = (s: Node, h: string) => s.status().torrents.find((t) => t.infohash === h)?.uploaded ?? 0;
  const seedPeers = (s: Node, h: string) => s.status().torrents.find((t) => t.infohash === h)?.peers ?? 0;

  describe('pause and resume', () => {
    it('pause stops all traffic and keeps the .part; resume finishes with identical bytes; states come in order', async () => {
      const { seeds: [seed], digest } = await seeds(1, 12 * MiB, 2 * MiB);
      const l = await leech([seed!]);
      const states: string[] = [];
      l.on('download-state', (i) => states.push(i.state));
      const h = await l.download('movie.bin');
      await waitFor(() => info(l, h).verified >= 2, 20_000, 'two pieces');
      expect(await l.pause(h)).to.equal(true);
      expect(await l.pause(h), 'already paused').to.equal(false);
      expect(info(l, h).state).to.equal('paused');
      expect(info(l, h).eta).to.equal(null);
      expect(info(l, h).peers).to.equal(0);
      // Let whatever was in flight settle, then watch: nothing may move.
      await waitFor(() => seedPeers(seed!, h) === 0, 5_000, 'the seed to see the connection closed');
      await sleep(300);
      const before = { got: info(l, h).downloaded, sent: seedUploaded(seed!, h), verified: info(l, h).verified };
      await sleep(1_500);
      expect(info(l, h).downloaded, 'no bytes received while paused').to.equal(before.got);
      expect(seedUploaded(seed!, h), 'no bytes sent while paused').to.equal(before.sent);
      expect(info(l, h).verified).to.equal(before.verified);
      expect(info(l, h).peers).to.equal(0);
      expect(seedPeers(seed!, h)).to.equal(0);
      expect(await exists(path.join(l.downloadDir, 'movie.bin.part')), '.part kept').to.equal(true);
      expect(await exists(path.join(l.downloadDir, '.shoal', 'resume', `${h}.json`)), 'resume record kept').to.equal(true);
      expect(before.verified).to.be.lessThan(info(l, h).pieces);

      expect(await l.resume(h)).to.equal(true);
      expect(await l.resume(h), 'already running').to.equal(false);
      expect(await sha1File(await l.whenDone(h))).to.equal(digest);
      await waitFor(() => states.includes('done'), 5_000, 'the done state');
      expect(states).to.deep.equal(['downloading', 'paused', 'downloading', 'done']);
      expect(await l.pause(h), 'nothing to pause once done').to.equal(false);
    });

    it('cancel while paused removes the .part and the resume record, and says so', async () => {
      const { seeds: [seed] } = await seeds(1, 8 * MiB, 1 * MiB, 'c.bin');
      const l = await leech([seed!]);
      const removed: string[] = [];
      l.on('download-removed', (h) => removed.push(h));
      const h = await l.download('c.bin');
      await waitFor(() => info(l, h).verified >= 1, 20_000, 'first piece');
      expect(await l.pause(h)).to.equal(true);
      const part = path.join(l.downloadDir, 'c.bin.part');
      const record = path.join(l.downloadDir, '.shoal', 'resume', `${h}.json`);
      expect(await exists(part)).to.equal(true);
      expect(await l.cancel(h)).to.equal(true);
      expect(await exists(part), '.part removed').to.equal(false);
      expect(await exists(record), 'resume record removed').to.equal(false);
      expect(await exists(path.join(l.downloadDir, '.shoal', 'resume', `${h}.paused`)), 'pause marker removed').to.equal(false);
      expect(removed).to.deep.equal([h]);
      expect(l.listDownloads()).to.deep.equal([]);
      expect(await l.resume(h)).to.equal(false);
      expect(await l.cancel(h)).to.equal(false);
    });

    it('a paused download stays paused across a restart, then resumes and finishes', async () => {
      const { seeds: [seed], digest } = await seeds(1, 8 * MiB, 2 * MiB, 'r.bin');
      const first = await leech([seed!]);
      const h = await first.download('r.bin');
      await waitFor(() => info(first, h).verified >= 1, 20_000, 'first piece');
      expect(await first.pause(h)).to.equal(true);
      const kept = info(first, h).verified;
      await first.stop();
      nodes.splice(nodes.indexOf(first), 1);

      const again = await leech([seed!]);
      await waitFor(() => again.listDownloads().find((d) => d.infohash === h), 10_000, 'the download to be listed again');
      expect(info(again, h).state).to.equal('paused');
      expect(info(again, h).verified).to.be.at.least(kept);
      await sleep(1_000);
      expect(info(again, h).peers, 'no connections while paused').to.equal(0);
      expect(await again.resume(h)).to.equal(true);
      expect(await sha1File(await again.whenDone(h))).to.equal(digest);
    });
  });

  describe('numbers for the views', () => {
    it('downloadDetail: per-peer counters add up to the download, every seed named as Shoal; totals count seeding', async () => {
      const size = 12 * MiB;
      const { seeds: s, digest } = await seeds(3, size, 1 * MiB, 'd.bin');
      const l = await leech(s);
      const startedBefore = Date.now();
      const h = await l.download('d.bin');
      const detail = await waitFor(
        () => {
          const d = l.downloadDetail(h);
          return d && d.peerList.length === 3 && d.verified >= 2 && d.peerList.every((p) => p.downloaded > 0) ? d : null;
        },
        20_000,
        'three peers each having sent something',
      );
      const sum = detail.peerList.reduce((a, p) => a + p.downloaded, 0);
      expect(sum).to.be.at.most(detail.downloaded);
      expect(sum).to.be.at.least(0.9 * detail.downloaded);
      for (const p of detail.peerList) {
        expect(p.client).to.equal('Shoal 0.1.0');
        expect(p.has).to.equal(1);
        expect(p.outgoing).to.equal(true);
        expect(p.address).to.match(/^127\.0\.0\.1:\d+$/);
        expect(p.downloadRate).to.be.at.least(0);
        expect(p.uploaded).to.equal(0);
      }
      expect(detail.peerList.reduce((a, p) => a + p.downloadRate, 0), 'the peers are sending').to.be.greaterThan(0);
      expect(detail.state).to.equal('downloading');
      expect(detail.startedAt).to.be.within(startedBefore - 1000, Date.now());
      // Downloading with bytes coming in: the ETA is a number of seconds, never null.
      expect(detail.downloadRate).to.be.greaterThan(0);
      expect(Number.isInteger(detail.eta) && detail.eta! >= 0, `eta ${detail.eta}`).to.equal(true);
      expect(detail.bitfield.length).to.equal(Math.ceil(detail.pieces / 8));
      let bits = 0;
      for (const byte of detail.bitfield) for (let b = 0; b < 8; b++) bits += (byte >> b) & 1;
      expect(bits).to.be.at.least(detail.verified); // a copy taken at the same moment, or later pieces
      expect(l.downloadDetail('0'.repeat(40))).to.equal(undefined);

      expect(await sha1File(await l.whenDone(h))).to.equal(digest);
      const done = l.downloadDetail(h)!;
      expect(done.state).to.equal('done');
      expect(done.eta).to.equal(null);
      expect(l.totals().downloaded).to.be.at.least(size);
      const seeded = s.map((n) => n.totals().uploaded);
      expect(seeded.reduce((a, b) => a + b)).to.be.at.least(size);
      for (const u of seeded) expect(u, `every seed counted its uploads: ${seeded}`).to.be.greaterThan(0);
      expect(s[0]!.totals().downloaded).to.equal(0);
      expect(l.startedAt).to.be.at.most(Date.now());
    });

    it('decodes client names from peer ids', () => {
      const id = (s: string) => Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(20 - s.length, 0x41)]);
      expect(clientName(id('-SH0100-'))).to.equal('Shoal 0.1.0');
      expect(clientName(id('-qB4630-'))).to.equal('qBittorrent 4.6.3');
      expect(clientName(id('-TR4060-'))).to.equal('Transmission 4.0.6');
      expect(clientName(id('-WW0208-'))).to.equal('WebTorrent 0.2.0.8');
      expect(clientName(id('-LT2090-'))).to.equal('libtorrent 2.0.9');
      expect(clientName(id('-UT355W-'))).to.match(/^µTorrent 3\.5\.5/);
      expect(clientName(id('-DE13F0-'))).to.match(/^Deluge 1\.3\./);
      expect(clientName(id('-AR1370-'))).to.equal('aria2 1.3.7');
      expect(clientName(id('A2-1-37-0-'))).to.equal('aria2 1.37.0');
      expect(clientName(id('-ZZ1234-'))).to.equal('-ZZ1234-');
      expect(clientName(Buffer.from([0, 1, 2, 0x4d, 0x34, 0x2d, 0x34, 0x2d]))).to.equal('M4-4-');
      expect(clientName(null)).to.equal('unknown');
    });
  });

  describe('holders', () => {
    it('counts the nodes sharing a file after refreshHolders and after a search; drops one that removed it', async () => {
      const common = path.join(fx.dir, 'common.bin');
      await randomFile(common, 200_000);
      const share = (name: string, files: Record<string, string | number>) => startSharing(fx.dir, nodes, name, files);
      const b = await share('b', { 'common.bin': common });
      const c = await share('c', { 'videos/common.bin': common });
      const d = await share('d', { 'other.bin': 5000 });
      const h = b.files()[0]!.metainfo.infoHashHex;
      const other = d.files()[0]!.metainfo.infoHashHex;
      const peers = [b, c, d].map((n) => ({ host: '127.0.0.1', port: n.port }));
      const a = await startNode(path.join(fx.dir, 'a'), { peers, holdersListIntervalMs: 0 });
      nodes.push(a);
      const events: Array<[string, number]> = [];
      a.on('holders', (x, n) => events.push([x, n]));
      expect(a.holders(h)).to.equal(0);
      a.refreshHolders();
      await waitFor(() => a.holders(h) === 2 && a.holders(other) === 1, 10_000, 'holders after a refresh');
      expect(events).to.deep.include([h, 2]);

      // b removes the file: the next refresh (its list no longer names it) drops b.
      await fsp.rm(path.join(fx.dir, 'b', 'shared', 'common.bin'));
      await b.rescan();
      expect(b.file(h)).to.equal(undefined);
      a.refreshHolders();
      await waitFor(() => a.holders(h) === 1, 10_000, 'b dropped after the next refresh');
      expect(events.at(-1)).to.deep.equal([h, 1]);
      expect(a.holders(other)).to.equal(1);

      // A search feeds the count too, without any list request.
      const e = await startNode(path.join(fx.dir, 'e'), { peers: [peers[1]!, peers[2]!] });
      nodes.push(e);
      expect(e.holders(h)).to.equal(0);
      const results = await e.search('common');
      expect(results.find((r) => r.infohash === h)?.peers.length).to.equal(1);
      expect(e.holders(h)).to.equal(1);
      expect(e.holders(other)).to.equal(0);
    });

    it('asks each peer for its list at most once per interval', async () => {
      const b = await startSharing(fx.dir, nodes, 'b', { 'x.bin': 3000 });
      const x = b.files()[0]!.metainfo.infoHashHex;
      const a = await startNode(path.join(fx.dir, 'a'), { peers: [{ host: '127.0.0.1', port: b.port }] });
      nodes.push(a);
      a.refreshHolders();
      await waitFor(() => a.holders(x) === 1, 10_000, 'the first list from b');
      await randomFile(path.join(b.sharedDir, 'y.bin'), 3000);
      await b.rescan();
      const y = b.files().find((f) => f.name === 'y.bin')!.metainfo.infoHashHex;
      a.refreshHolders(); // within the minute: not asked again
      await sleep(500);
      expect(a.holders(y)).to.equal(0);
    });
  });

  describe('accessors', () => {
    it('torrentFile and magnet for a shared file and a download; undefined otherwise', async () => {
      const { seeds: [seed] } = await seeds(1, 1 * MiB, 0, 'm.bin');
      const m = seed!.files()[0]!.metainfo;
      const t = seed!.torrentFile(m.infoHashHex)!;
      expect(t).to.be.instanceOf(Buffer);
      expect(seed!.magnet(m.infoHashHex)).to.equal(
        `magnet:?xt=urn:btih:${m.infoHashHex}&dn=m.bin&xl=${m.length}&x.pe=${encodeURIComponent(`127.0.0.1:${seed!.port}`)}`,
      );
      expect(seed!.torrentFile('f'.repeat(40))).to.equal(undefined);
      expect(seed!.magnet('f'.repeat(40))).to.equal(undefined);
      const l = await leech([seed!]);
      const h = await l.download(m.infoHashHex);
      expect(l.torrentFile(h)!.equals(t)).to.equal(true);
      await l.whenDone(h);
    });
  });
});
