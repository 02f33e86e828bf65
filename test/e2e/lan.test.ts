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
import { tempDir, cleanup, randomFile, sha1File, type CliChild } from '../helpers.js';
import { execFileSync } from 'node:child_process';
import { createLan, netnsSupport, spawnCliIn, addressOf, existingNamespaces, type Lan, type LanHost } from '../netns.js';

const INTERVAL_S = 0.5;
const PORT = 9000;
/** Large enough, with each seed capped at 2 MiB/s, that one seed alone would need 4 s. */
const FILE_SIZE = 8 * 1024 * 1024;
const SEED_RATE = '2M';

type LanNode = CliChild & { id: string; host: LanHost };

/**
 * Run inside a namespace with `node --input-type=module -e`: `recv` prints the first
 * datagram it gets on the beacon group, `send` sends a few; `listen` / `dial` check TCP.
 */
const PROBE = `
import dgram from 'node:dgram';
import net from 'node:net';
const [mode, ip, peer] = process.argv.slice(1);
const exitSoon = () => setTimeout(() => process.exit(0), 50);
if (mode === 'recv') {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  s.on('message', (m, r) => { console.log(r.address + ' ' + m); exitSoon(); });
  s.bind(10000, () => { s.addMembership('224.1.1.1', ip); console.log('ready'); });
} else if (mode === 'send') {
  const s = dgram.createSocket('udp4');
  s.bind(0, ip, () => {
    s.setMulticastInterface(ip);
    let n = 0;
    const t = setInterval(() => { s.send('hello from ' + ip, 10000, '224.1.1.1'); if (++n === 10) { clearInterval(t); s.close(); } }, 100);
  });
} else if (mode === 'listen') {
  net.createServer((c) => { c.end('hi from ' + ip); exitSoon(); }).listen(7000, ip, () => console.log('ready'));
} else {
  net.connect(7000, peer).on('data', (d) => { console.log(String(d)); exitSoon(); });
}
`;

describe('test/netns.ts: a LAN of network namespaces', function () {
  this.timeout(30_000);
  let lan: Lan | undefined;

  before(function () {
    const support = netnsSupport();
    if (!support.ok) {
      console.log(`      (skipped: ${support.reason})`);
      this.skip();
    }
  });
  after(async () => {
    await lan?.destroy();
  });

  const probe = (host: LanHost, ...args: string[]) => lan!.exec(host, [process.execPath, '--input-type=module', '-e', PROBE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const firstLines = (c: ReturnType<typeof probe>, n: number) =>
    new Promise<string[]>((resolve, reject) => {
      const lines: string[] = [];
      c.stdout!.setEncoding('utf8').on('data', (d: string) => {
        lines.push(...d.split('\n').filter(Boolean));
        if (lines.length >= n) resolve(lines);
      });
      c.once('exit', () => (lines.length >= n ? resolve(lines) : reject(new Error(`probe exited after ${JSON.stringify(lines)}`))));
    });

  it('hosts get their addresses, reach each other by TCP and by multicast, and nothing lands in our namespace', async () => {
    const ourLinks = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    lan = await createLan({ prefix: 'shoal-p', hosts: 3, subnet: '10.78.0.0/24' });
    expect(lan.hosts.map((h) => h.ip)).to.deep.equal(['10.78.0.1', '10.78.0.2', '10.78.0.3']);
    for (const h of lan.hosts) expect(addressOf(h)).to.equal(h.ip);
    expect(execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' }), 'no interface in our namespace').to.equal(ourLinks);
    const [a, b, c] = lan.hosts as [LanHost, LanHost, LanHost];

    const server = probe(b, 'listen', b.ip);
    const serverLines = firstLines(server, 1);
    expect((await serverLines)[0]).to.equal('ready');
    expect(await firstLines(probe(a, 'dial', a.ip, b.ip), 1)).to.deep.equal([`hi from ${b.ip}`]);

    const receivers = [b, c].map((h) => firstLines(probe(h, 'recv', h.ip), 2));
    await new Promise((r) => setTimeout(r, 300)); // let them join the group
    probe(a, 'send', a.ip);
    for (const got of await Promise.all(receivers)) expect(got).to.deep.equal(['ready', `${a.ip} hello from ${a.ip}`]);
  });

  it('destroy() kills what runs in the LAN and deletes every namespace', async () => {
    expect(lan, 'the LAN of the previous test').to.not.equal(undefined);
    const sleeper = lan!.exec(lan!.hosts[0]!, ['sleep', '60']);
    await new Promise((r) => setTimeout(r, 100));
    await lan!.destroy();
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null, 'the process is gone').to.equal(true);
    expect(existingNamespaces(lan!)).to.deep.equal([]);
  });
});

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
