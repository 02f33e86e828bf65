/**
 * A node bound to one address (`node-cli 127.0.0.1 9000`) advertises that address and
 * beacons only where it is reachable: on loopback for a loopback address, on the interface
 * that holds a LAN address, never elsewhere with another address as the source (other nodes
 * would record an address where nothing listens). `--peer-ip` still says what is advertised.
 * The same rule holds for the bootstrap registration and for magnets (x.pe).
 *
 * The first part runs real node-cli processes in a LAN of network namespaces (test/netns.ts),
 * h1 with loopback, its LAN card and a second veth card, h2 across the bridge; the second part
 * runs nodes in this process in the private namespace of `npm test`, with a veth card beside
 * loopback. Nothing leaves the namespaces the tests make.
 */
import { expect } from 'chai';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanup, tempDir, randomFile, waitFor, startNode, ROOT, type CliChild } from '../helpers.js';
import { addVeth, inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { createLan, netnsSupport, spawnCliIn, type Lan, type LanHost } from '../netns.js';
import { BootstrapServer } from '../../bootstrap/server.js';
import type { Node } from '../../network/index.js';

const INTERVAL_S = 0.5;
const CODEC = pathToFileURL(path.join(ROOT, 'dist', 'network', 'wire', 'beacon-codec.js')).href;

/**
 * Joins the beacon group on every address given and prints each beacon heard as a JSON
 * line: the datagram's source address (which link it came by) and what it says.
 */
const PROBE = `
import dgram from 'node:dgram';
const { decodeBeacon } = await import(${JSON.stringify(CODEC)});
const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
s.on('message', (m, r) => {
  try {
    const b = decodeBeacon(m);
    console.log(JSON.stringify({ from: r.address, id: b.id, host: b.host ?? null, port: b.port }));
  } catch {}
});
s.bind(10000, '224.1.1.1', () => {
  for (const a of process.argv.slice(1)) s.addMembership('224.1.1.1', a);
  console.log(JSON.stringify({ ready: true }));
});
`;

interface Heard {
  from: string;
  id: string;
  host: string | null;
  port: number;
}

type LanNode = CliChild & { id: string };

describe('a node bound to one address, in a LAN of namespaces: beacons only where that address is reachable', function () {
  this.timeout(120_000);
  let lan: Lan | undefined;
  let dir = '';
  let probe: ChildProcess | undefined;
  const heard: Heard[] = [];

  before(async function () {
    const support = netnsSupport();
    if (!support.ok) {
      console.log(`      (skipped: ${support.reason})`);
      this.skip();
    }
    dir = await tempDir('shoal-bound-');
    lan = await createLan({ prefix: 'shoal-b', hosts: 2 });
    // A second card in h1, beside lo and eth0: the bug sent beacons out of every card.
    const ns = lan.hosts[0]!.ns;
    execFileSync('ip', ['-n', ns, 'link', 'add', 'v2', 'type', 'veth', 'peer', 'name', 'v2p']);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.78.0.1/24', 'dev', 'v2']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'v2p', 'up']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'v2', 'up']);
  });

  after(async () => {
    await lan?.destroy();
    if (dir) await cleanup(dir);
  });

  async function start(host: LanHost, name: string, args: string[]): Promise<LanNode> {
    const cwd = path.join(dir, name);
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const c = spawnCliIn(lan!, host, [...args, '--shared', 's', '--downloads', 'd', '--name', name, '--beacon-interval', String(INTERVAL_S), '--no-folder-watch'], cwd);
    const l = await c.waitEvent('listening', 30_000);
    return Object.assign(c, { id: l.id as string });
  }

  it('bound to 127.0.0.1: seen on loopback at 127.0.0.1, by no one across the LAN; bound to the LAN address: beacons there only', async () => {
    const [h1, h2] = lan!.hosts as [LanHost, LanHost];
    probe = lan!.exec(h1, [process.execPath, '--input-type=module', '-e', PROBE, '127.0.0.1', h1.ip, '10.78.0.1'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let ready = false;
    readline.createInterface({ input: probe.stdout! }).on('line', (l) => {
      const j = JSON.parse(l) as Heard & { ready?: boolean };
      if (j.ready) ready = true;
      else heard.push(j);
    });
    await waitFor(() => ready, 10_000, 'the probe to join');

    const across = await start(h2, 'across', ['9000']); // listens everywhere, on h2's side of the bridge
    const local = await start(h1, 'local', ['127.0.0.1', '9001']); // a neighbour on h1's loopback
    const loop = await start(h1, 'loop', ['127.0.0.1', '9000']);
    const lanNode = await start(h1, 'lan', [h1.ip, '9002']);
    const forwarded = await start(h1, 'forwarded', ['127.0.0.1', '9003', '--peer-ip', h1.ip]);

    const seen = await local.waitEvent('peer-up', 10_000, (e) => e.id === loop.id);
    expect(seen, 'the loopback neighbour has it where it listens').to.include({ host: '127.0.0.1', port: 9000 });
    expect((await local.waitEvent('peer-up', 10_000, (e) => e.id === forwarded.id)), '--peer-ip is what is advertised').to.include({ host: h1.ip, port: 9003 });
    expect((await across.waitEvent('peer-up', 10_000, (e) => e.id === lanNode.id)), 'across the bridge, at its LAN address').to.include({ host: h1.ip, port: 9002 });

    await sleep(8 * INTERVAL_S * 1000); // several more rounds of beacons from everyone
    for (const quiet of [loop, local]) {
      const ups = across.events.filter((e) => e.event === 'peer-up' && e.id === quiet.id);
      expect(ups, `a node on h2 never hears of ${String(quiet.events[0]?.name ?? quiet.id)}, which listens on h1's loopback`).to.deep.equal([]);
    }

    const of = (n: LanNode) => heard.filter((b) => b.id === n.id);
    const links = (n: LanNode) => [...new Set(of(n).map((b) => `${b.from} says ${b.host ?? 'nothing'}`))].sort();
    expect(of(loop).length, 'beacons of the 127.0.0.1 node were heard').to.be.at.least(3);
    expect(links(loop), 'bound to 127.0.0.1: loopback only, naming 127.0.0.1').to.deep.equal(['127.0.0.1 says 127.0.0.1']);
    expect(links(forwarded), 'with --peer-ip: loopback only, naming the --peer-ip address').to.deep.equal([`127.0.0.1 says ${h1.ip}`]);
    expect(links(lanNode), 'bound to the LAN address: that card only, naming it').to.deep.equal([`${h1.ip} says ${h1.ip}`]);
    expect(links(across).length, 'the probe hears h2 across the bridge too').to.be.at.least(1);

    for (const n of [loop, local, lanNode, forwarded, across]) n.proc.kill('SIGTERM');
    for (const n of [loop, local, lanNode, forwarded, across]) expect((await n.exited).code).to.equal(0);
  });
});

describe('a node bound to one address, beside a LAN card: magnets and the bootstrap registration name that address', function () {
  this.timeout(60_000);
  let dir = '';
  let remove: (() => void) | null = null;
  let server: BootstrapServer | undefined;
  const nodes: Node[] = [];

  before(async function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
    remove = addVeth('shoalbound', '10.79.0.1/24');
    if (!remove) this.skip(); // no veth here
    dir = await tempDir('shoal-bound-');
  });

  after(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await server?.stop();
    remove?.();
    if (dir) await cleanup(dir);
  });

  it('a magnet of a node bound to 127.0.0.1 names 127.0.0.1 (not the LAN card), unless --peer-ip says otherwise', async () => {
    await randomFile(path.join(dir, 'm', 'shared', 'm.bin'), 100_000);
    const node = await startNode(path.join(dir, 'm'), { listenHost: '127.0.0.1', announceHost: undefined });
    nodes.push(node);
    const f = node.files()[0]!;
    expect(node.announceHost).to.equal('127.0.0.1');
    expect(node.magnet(f.metainfo.infoHashHex)).to.contain(`x.pe=${encodeURIComponent(`127.0.0.1:${node.port}`)}`);
    const told = await startNode(path.join(dir, 't'), { listenHost: '127.0.0.1', announceHost: '10.79.0.1' });
    nodes.push(told);
    expect(told.announceHost).to.equal('10.79.0.1');
  });

  it('a node bound to the LAN card registers that address with a bootstrap server on loopback, and others get it there', async () => {
    server = new BootstrapServer({ port: 0, host: '127.0.0.1', heartbeatMs: 500 });
    await server.start();
    const onCard = await startNode(path.join(dir, 'card'), { listenHost: '10.79.0.1', announceHost: undefined, bootstrap: server.url, name: 'card' });
    nodes.push(onCard);
    const onLoop = await startNode(path.join(dir, 'loop'), { listenHost: '127.0.0.1', announceHost: undefined, bootstrap: server.url, name: 'loop' });
    nodes.push(onLoop);
    const card = await waitFor(() => onLoop.peer(onCard.id), 10_000, 'the loopback node to learn the other from the server');
    expect({ host: card.host, port: card.port }, 'where the node really listens').to.deep.equal({ host: '10.79.0.1', port: onCard.port });
    const loop = await waitFor(() => onCard.peer(onLoop.id), 10_000, 'the card node to learn the loopback one');
    expect({ host: loop.host, port: loop.port }).to.deep.equal({ host: '127.0.0.1', port: onLoop.port });
  });
});
