/**
 * Multicast discovery end to end: real node-cli processes on one host finding each other
 * by beacons, forgetting one killed with SIGKILL, and dropping one at once on its GOODBYE.
 * Runs only inside the private network namespace `npm test` makes, so no beacon ever
 * leaves this machine (the beacons go over that namespace's loopback).
 */
import { expect } from 'chai';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { spawnCli, Children, randomFile, sha1File, tempDirPerTest, type CliChild } from '../helpers.js';
import { inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';

const INTERVAL_S = 0.4;

describe('multicast discovery between node-cli processes on one host', function () {
  this.timeout(60_000);
  const children = new Children();
  const fx = tempDirPerTest('shoal-discovery-', () => children.killAll());

  before(function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
  });

  async function start(name: string, extra: string[] = [], port = 0): Promise<CliChild & { id: string; port: number }> {
    const cwd = path.join(fx.dir, name);
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const c = spawnCli(['127.0.0.1', String(port), '--shared', 's', '--downloads', 'd', '--name', name, '--beacon-interval', String(INTERVAL_S), ...extra], cwd);
    children.track(c.proc);
    const l = await c.waitEvent('listening');
    return Object.assign(c, { id: l.id as string, port: l.port as number });
  }

  /** Matches events about `other`. */
  const about = (other: { id: string }) => (e: Record<string, unknown>) => e.id === other.id;

  it('two nodes find each other by their beacons, each with the other\'s id, port and source multicast', async () => {
    const a = await start('alpha');
    const b = await start('beta');
    const aSeesB = await a.waitEvent('peer-up', 5000, about(b));
    const bSeesA = await b.waitEvent('peer-up', 5000, about(a));
    expect(aSeesB).to.include({ host: '127.0.0.1', port: b.port, name: 'beta' });
    expect(aSeesB.sources).to.deep.equal(['multicast']);
    expect(bSeesA).to.include({ host: '127.0.0.1', port: a.port, name: 'alpha' });
    expect(a.events.filter((e) => e.event === 'peer-up' && e.id === a.id), 'never itself').to.have.length(0);
  });

  it('three nodes: a killed one (SIGKILL, no GOODBYE) is forgotten after a few missed beacons; a stopped one at once', async () => {
    const [a, b, c] = [await start('a'), await start('b'), await start('c')];
    for (const [x, y] of [[a, b], [a, c], [b, a], [b, c], [c, a], [c, b]] as const) await x.waitEvent('peer-up', 5000, about(y));
    const killedAt = Date.now();
    c.proc.kill('SIGKILL');
    const downs = await Promise.all([a, b].map((x) => x.waitEvent('peer-down', 10_000, about(c)).then(() => Date.now() - killedAt)));
    for (const ms of downs) {
      expect(ms, 'not before two missed beacons').to.be.at.least(2 * INTERVAL_S * 1000);
      expect(ms, 'within about three missed beacons').to.be.below(6 * INTERVAL_S * 1000 + 1000);
    }
    const stoppedAt = Date.now();
    b.proc.kill('SIGTERM');
    await a.waitEvent('peer-down', 5000, about(b));
    expect(Date.now() - stoppedAt, 'GOODBYE removes it well before expiry').to.be.below(2 * INTERVAL_S * 1000);
    expect((await b.exited).code).to.equal(0);
  });

  it('a restarted node is seen again at once, and a node with --no-multicast is not seen at all', async () => {
    const a = await start('a');
    const quiet = await start('quiet', ['--no-multicast']);
    // A long interval: only the prompt answer to a new instance can make this quick.
    const b1 = await start('b', ['--beacon-interval', '30'], 47311);
    await a.waitEvent('peer-up', 5000, about(b1));
    b1.proc.kill('SIGKILL');
    await b1.exited;
    // Same folder and port, so the same node id, with a new instance id.
    const b2 = await start('b', ['--beacon-interval', '30'], 47311);
    expect(b2.id).to.equal(b1.id);
    const aSeesB2 = await b2.waitEvent('peer-up', 3000, about(a));
    expect(aSeesB2.port).to.equal(a.port);
    // a still lists b (same id) and was not told it went down: it restarted, not left.
    expect(a.events.filter((e) => e.event === 'peer-down' && e.id === b1.id)).to.have.length(0);
    await new Promise((r) => setTimeout(r, 3 * INTERVAL_S * 1000));
    expect(a.events.some((e) => e.id === quiet.id)).to.equal(false);
    expect(quiet.events.some((e) => e.event === 'peer-up')).to.equal(false);
  });

  it('search and a multi-source download between nodes that met by multicast only', async () => {
    const file = path.join(fx.dir, 'song.bin');
    await randomFile(file, 3_000_000);
    for (const n of ['s1', 's2']) {
      await fsp.mkdir(path.join(fx.dir, n, 's'), { recursive: true });
      await fsp.copyFile(file, path.join(fx.dir, n, 's', 'song.bin'));
    }
    const s1 = await start('s1', ['--piece-length', '64k']);
    const s2 = await start('s2', ['--piece-length', '64k']);
    const g = await start('getter', ['--get', 'song.bin', '--exit-when-done']);
    const done = await g.waitEvent('done', 30_000);
    expect(await sha1File(done.path as string)).to.equal(await sha1File(file));
    expect((await g.exited).code).to.equal(0);
    for (const s of [s1, s2]) expect(g.events.some((e) => e.event === 'peer-up' && e.id === s.id)).to.equal(true);
  });
});
