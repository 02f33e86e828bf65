/**
 * Multicast discovery on a real LAN: four network namespaces cabled to one bridge (see
 * test/netns.ts), one node-cli per namespace on its own address, no bootstrap server and no
 * --peer. The nodes must find each other by their beacons alone, a fourth must find and
 * download a file that three of them share from more than one of them at once, and a node
 * that dies or stops must disappear from every other node's list.
 *
 * Needs root and iproute2 (skipped with the reason otherwise). Nothing leaves the LAN's
 * namespaces: the bridge has a namespace of its own.
 */
import { expect } from 'chai';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { tempDir, cleanup, randomFile, sha1File, type CliChild } from './helpers.js';
import { createLan, netnsSupport, spawnCliIn, type Lan, type LanHost } from './netns.js';

const INTERVAL_S = 0.5;
const PORT = 9000;
/** Large enough, with each seed capped at 2 MiB/s, that one seed alone would need 4 s. */
const FILE_SIZE = 8 * 1024 * 1024;
const SEED_RATE = '2M';

type LanNode = CliChild & { id: string; host: LanHost };

describe('a LAN of network namespaces: multicast discovery, search, multi-source download', function () {
  this.timeout(120_000);
  let lan: Lan | undefined;
  let dir: string;
  let original: string;
  const seeds: LanNode[] = [];

  before(async function () {
    const support = netnsSupport();
    if (!support.ok) {
      console.log(`      (skipped: ${support.reason})`);
      this.skip();
    }
    dir = await tempDir('shoal-lan-');
    original = path.join(dir, 'album.flac');
    await randomFile(original, FILE_SIZE);
    lan = await createLan({ prefix: 'shoal-t', hosts: 4 });
  });

  after(async () => {
    await lan?.destroy();
    if (dir) await cleanup(dir);
  });

  /** node-cli on `host`'s LAN address, its folders under dir/<ns index>. */
  async function start(host: LanHost, extra: string[] = []): Promise<LanNode> {
    const cwd = path.join(dir, `h${host.index}`);
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const c = spawnCliIn(lan!, host, [host.ip, String(PORT), '--shared', 's', '--downloads', 'd', '--name', `h${host.index}`, '--beacon-interval', String(INTERVAL_S), '--no-folder-watch', ...extra], cwd);
    const l = await c.waitEvent('listening', 30_000);
    return Object.assign(c, { id: l.id as string, host });
  }

  const about = (other: LanNode) => (e: Record<string, unknown>) => e.id === other.id;

  it('every node lists every other by multicast, at the address of its namespace', async () => {
    for (const host of lan!.hosts.slice(0, 3)) {
      await fsp.mkdir(path.join(dir, `h${host.index}`, 's'), { recursive: true });
      await fsp.copyFile(original, path.join(dir, `h${host.index}`, 's', 'album.flac'));
      seeds.push(await start(host, ['--max-upload-rate', SEED_RATE]));
    }
    for (const a of seeds) {
      for (const b of seeds) {
        if (a === b) continue;
        const up = await a.waitEvent('peer-up', 10 * INTERVAL_S * 1000, about(b));
        expect(up, `${a.host.ns} sees ${b.host.ns}`).to.include({ host: b.host.ip, port: PORT, name: `h${b.host.index}` });
        // A newcomer may hear of a third node from the first one that answers it (gossip,
        // source 'peer') a moment before that node's own beacon arrives; peer-up is emitted
        // once, for the first sighting. Nothing but beacons and gossip can name a node here.
        expect(['multicast', 'peer']).to.include.members(up.sources as string[]);
      }
      const ups = a.events.filter((e) => e.event === 'peer-up');
      // Gossip needs a peer first: the first node anyone meets, it met by its beacon.
      expect(ups[0]!.sources, `${a.host.ns} met its first peer by multicast`).to.deep.equal(['multicast']);
      expect(ups.some((e) => e.id === a.id), 'never lists itself').to.equal(false);
    }
  });

  it('a search from a fourth namespace downloads the file the three share, from several of them, verified', async () => {
    expect(seeds, 'the three seeds of the previous test').to.have.length(3);
    const startedAt = Date.now();
    const getter = await start(lan!.hosts[3]!, ['--get', 'album.flac', '--exit-when-done']);
    const done = await getter.waitEvent('done', 60_000);
    const seconds = (Date.now() - startedAt) / 1000;
    expect(await sha1File(done.path as string)).to.equal(await sha1File(original));
    expect((await getter.exited).code).to.equal(0);
    const peersUsed = Math.max(0, ...getter.events.filter((e) => e.event === 'progress').map((e) => Number(e.peers)));
    expect(peersUsed, `peers in progress events (download took ${seconds.toFixed(1)} s)`).to.be.at.least(2);
    for (const s of seeds) expect(getter.events.some((e) => e.event === 'peer-up' && e.id === s.id && e.host === s.host.ip)).to.equal(true);
  });

  it('a node killed with SIGKILL (no GOODBYE) is dropped by every other within about three intervals', async () => {
    const [a, b, victim] = seeds as [LanNode, LanNode, LanNode];
    const killedAt = Date.now();
    victim.proc.kill('SIGKILL');
    const after = await Promise.all([a, b].map((x) => x.waitEvent('peer-down', 10_000, about(victim)).then(() => Date.now() - killedAt)));
    for (const ms of after) {
      expect(ms, 'not before two missed beacons').to.be.at.least(2 * INTERVAL_S * 1000);
      expect(ms, 'within about three missed beacons, plus slack').to.be.below(6 * INTERVAL_S * 1000 + 1000);
    }
  });

  it('a node stopped with SIGTERM says GOODBYE and is dropped at once', async () => {
    const [a, stopped] = seeds as [LanNode, LanNode];
    const stoppedAt = Date.now();
    stopped.proc.kill('SIGTERM');
    await a.waitEvent('peer-down', 5000, about(stopped));
    expect(Date.now() - stoppedAt, 'well before expiry').to.be.below(2 * INTERVAL_S * 1000);
    expect((await stopped.exited).code).to.equal(0);
  });
});
