/**
 * The mixed swarm of issue 15: two real seeds (libtorrent and Transmission; WebTorrent when
 * one of them is missing) and a Shoal seed, each in its own namespace, serve one torrent to a
 * Shoal downloader and an aria2c downloader that start at the same moment. Every peer finds
 * the others through the LAN's opentracker; both downloads are compared with the original.
 */
import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { randomFile } from '../helpers.js';
import { aria2c } from '../interop/clients/aria2c.js';
import { libtorrent } from '../interop/clients/libtorrent.js';
import { transmission } from '../interop/clients/transmission.js';
import { webtorrent } from '../interop/clients/webtorrent.js';
import type { InteropClient, Seeding } from '../interop/client.js';
import { createInteropLan, lanMissing, type InteropLan } from '../interop/lan.js';
import { CaseError, Matrix } from '../interop/matrix.js';
import { describeFetch, linksOf, sameFiles, shoalCreate, shoalGet, startShoalSeed, type ShoalSeed } from '../interop/shoal.js';
import { torrentIdentity, TRANSFER_MS } from '../interop/suite.js';

const SIZE = 12 * 1024 * 1024 + 4321;
const PIECE = 256 * 1024;
const CASE = 'mixed-swarm';

/** The addresses a node's `peer connected` records name. */
function peersOf(stderr: string[]): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < stderr.length; i++)
    if (/ DEBUG \(.*\): peer connected$/.test(stderr[i]!)) {
      const m = /^\s+peer: "([\d.]+):\d+"$/.exec(stderr[i + 1] ?? '');
      if (m) out.add(m[1]!);
    }
  return out;
}

describe('interop: a mixed swarm (two real seeds and a Shoal seed to a Shoal and an aria2c downloader at once)', function () {
  this.timeout(TRANSFER_MS + 120_000);
  const matrix = new Matrix('interop-swarm');
  let l: InteropLan | undefined;
  let seeds: InteropClient[] = [];
  let unavailable: string | null = null;
  const running: Array<Seeding | ShoalSeed> = [];

  before(async function () {
    this.timeout(120_000);
    matrix.begin();
    unavailable = lanMissing() ?? (await aria2c.missing());
    if (unavailable) return;
    for (const c of [libtorrent, transmission, webtorrent]) if (seeds.length < 2 && (await c.missing()) === null) seeds.push(c);
    if (seeds.length < 2) {
      unavailable = 'needs two of libtorrent, Transmission and WebTorrent installed';
      return;
    }
    for (const c of [aria2c, ...seeds]) matrix.client(c.name, await c.version());
    // Host 1: tracker and Shoal seed; 2, 3: the real seeds; 4: aria2c; 5: the Shoal downloader.
    l = await createInteropLan('shoal-is', 4, '10.85.0.0/24');
    for (const [i, c] of seeds.entries()) await c.setUp?.(l, l.clients[i]!);
  });

  after(async function () {
    this.timeout(60_000);
    for (const s of running) await s.stop().catch(() => {});
    for (const c of seeds) await c.tearDown?.().catch(() => {});
    await l?.destroy();
    await matrix.save();
  });

  it('real seeds (libtorrent, Transmission) and a Shoal seed serve a Shoal and an aria2c downloader at once; bytes compared', async function () {
    if (unavailable) {
      matrix.record({ client: 'mixed swarm', direction: 'to-shoal', case: CASE, status: 'skip', note: unavailable });
      console.log(`      (skipped: ${unavailable})`);
      this.skip();
    }
    const lan = l!;
    const [shoalHost, seedA, seedB, ariaHost, getterHost] = [lan.shoal, lan.clients[0]!, lan.clients[1]!, lan.clients[2]!, lan.clients[3]!];
    const seedCwd = path.join(lan.dir, 'shoal-seed');
    const original = path.join(seedCwd, 's', 'swarm.bin');
    await randomFile(original, SIZE);
    const torrent = path.join(lan.dir, 'swarm.torrent');
    await shoalCreate(original, torrent, PIECE, lan.tracker.url);
    const { infohash, name } = await torrentIdentity(torrent);
    await lan.tracker.allow(infohash);

    // The seeds: Shoal on host 1, each real client from its own copy of the data.
    const shoalSeed = await startShoalSeed(lan, { cwd: seedCwd, pieceLength: PIECE });
    running.push(shoalSeed);
    for (const [i, c] of seeds.entries()) {
      const dataDir = path.join(lan.dir, `seed-${c.name}`);
      await fsp.mkdir(dataDir, { recursive: true });
      await fsp.copyFile(original, path.join(dataDir, name));
      running.push(await c.seed(lan, [seedA, seedB][i]!, { infohash, name, torrent }, dataDir, 'defaults'));
    }
    await lan.tracker.waitSeeders(infohash, 3);

    // Both downloaders at once.
    const ariaInto = path.join(lan.dir, 'aria2c');
    await fsp.mkdir(ariaInto, { recursive: true });
    const getCwd = path.join(lan.dir, 'shoal-get');
    const t0 = Date.now();
    const [shoal, aria] = await Promise.allSettled([
      shoalGet(lan, { cwd: getCwd, target: torrent, ms: TRANSFER_MS, host: getterHost }),
      aria2c.fetch(lan, ariaHost, { infohash, name, torrent }, ariaInto, 'defaults', TRANSFER_MS).then(() => (Date.now() - t0) / 1000),
    ]);

    const sources = [shoalHost, seedA, seedB, ariaHost].filter((h) => shoal.status === 'fulfilled' && peersOf(shoal.value.cli.stderr).has(h.ip));
    const names = new Map([[shoalHost.ip, 'Shoal seed'], [seedA.ip, seeds[0]!.name], [seedB.ip, seeds[1]!.name], [ariaHost.ip, 'aria2c']]);
    const connected = `connected to ${sources.map((h) => names.get(h.ip)).join(', ') || 'nobody'}`;
    try {
      if (shoal.status === 'rejected') throw shoal.reason;
      expect(shoal.value.code, describeFetch(shoal.value, TRANSFER_MS)).to.equal(0);
      await sameFiles(torrent, original, path.join(getCwd, 'd', name));
      // A swarm, not a pair: the downloader took a connection from more than one seed.
      expect(sources.filter((h) => h !== ariaHost).length, connected).to.be.at.least(2);
      matrix.record({ client: 'mixed swarm', direction: 'to-shoal', case: CASE, status: 'pass', seconds: shoal.value.seconds, note: `Shoal downloader ${connected}; ${linksOf(shoal.value.cli.stderr) ?? ''}` });
    } catch (err) {
      matrix.record({ client: 'mixed swarm', direction: 'to-shoal', case: CASE, status: 'fail', seconds: (Date.now() - t0) / 1000, note: (err as Error).message.split('\n')[0]!.slice(0, 300) });
      throw err;
    }
    try {
      if (aria.status === 'rejected') throw new CaseError((aria.reason as Error).message, (Date.now() - t0) / 1000);
      await sameFiles(torrent, original, path.join(ariaInto, name));
      matrix.record({ client: 'mixed swarm', direction: 'from-shoal', case: CASE, status: 'pass', seconds: aria.value, note: `aria2c downloader; Shoal seed: ${shoalSeed.links() ?? 'no connection'}` });
    } catch (err) {
      matrix.record({ client: 'mixed swarm', direction: 'from-shoal', case: CASE, status: 'fail', seconds: (Date.now() - t0) / 1000, note: (err as Error).message.split('\n')[0]!.slice(0, 300) });
      throw err;
    }
  });
});
