/**
 * Multicast discovery (what beacons mean) with real nodes on real sockets; the codec is
 * test/unit/beacon-codec.test.ts, the socket layer multicast-socket.test.ts. These tests
 * run only inside the private network namespace that `npm test` makes (only `lo`,
 * plus the veth pairs a test adds), so no datagram ever reaches the host's network.
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DiscoveredPeer, DiscoveryHealth, LostReason } from '../../network/discovery/discovery.js';
import { MulticastDiscovery, type MulticastInit } from '../../network/discovery/multicast.js';
import { PeerRegistry } from '../../network/discovery/peer-registry.js';
import { decodeBeacon, MAX_BEACON_BYTES, type Beacon } from '../../network/wire/beacon-codec.js';
import { Identity } from '../../network/security/identity.js';
import { discoveryCompliance } from '../discovery-compliance.js';
import { addVeth, inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { captureLog, waitFor } from '../helpers.js';
import { beaconOf, type BeaconFields } from '../beacons.js';

const HELLO: BeaconFields = { type: 'HELLO', instance: 'inst1', name: 'café ☃', port: 9000, host: '192.168.1.7', intervalMs: 5000 };


// ---- real sockets, private network namespace only ---------------------------------------------

interface Probe {
  d: MulticastDiscovery;
  identity: Identity;
  id: string;
  instance: string;
  peerPort: number;
  peers: DiscoveredPeer[];
  lost: Array<{ id: string; reason: LostReason; at: number }>;
  /** When each peer's latest beacon arrived, by id. */
  heardAt: Map<string, number>;
  health: DiscoveryHealth[];
  sees(id: string): DiscoveredPeer | undefined;
}

/** Loopback multicast to 224.1.1.1 on 127.0.0.1, as the nodes send it. */
function sender(): dgram.Socket {
  const s = dgram.createSocket('udp4');
  s.bind(0, '127.0.0.1', () => s.setMulticastInterface('127.0.0.1'));
  return s;
}

describe('multicast discovery (real sockets)', function () {
  let groupPort = 21000;
  const live: MulticastDiscovery[] = [];
  const closers: Array<() => void> = [];

  before(function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
  });

  afterEach(async () => {
    await Promise.all(live.splice(0).map((d) => d.stop()));
    for (const close of closers.splice(0)) close();
  });

  let counter = 0;
  function node(init: Partial<MulticastInit> & { identity?: Identity; peerPort?: number; host?: string } = {}): Probe {
    const identity = init.identity ?? Identity.generate();
    const id = identity.id;
    const instance = randomBytes(6).toString('hex');
    const peerPort = init.peerPort ?? 9000 + ++counter;
    const d = new MulticastDiscovery({
      interfaces: ['lo'],
      port: groupPort,
      intervalMs: 200,
      ...init,
      self: { id, instance, name: `test ${id.slice(0, 8)}`, port: peerPort, host: init.host, signer: identity },
    });
    live.push(d);
    const p: Probe = {
      d, identity, id, instance, peerPort, peers: [], lost: [], heardAt: new Map(), health: [],
      sees: (other) => [...p.peers].reverse().find((x) => x.id === other),
    };
    d.on('peer', (peer) => {
      p.peers.push(peer);
      p.heardAt.set(peer.id, Date.now());
    });
    d.on('lost', (lostId, reason) => p.lost.push({ id: lostId, reason, at: Date.now() }));
    d.on('health', (h) => p.health.push(h));
    return p;
  }

  beforeEach(() => {
    groupPort++; // each test its own group port: nothing lingers from the one before
  });

  discoveryCompliance(
    'multicast',
    async () => {
      const a = node();
      const b = node();
      return {
        a: a.d, b: b.d,
        aSelf: { id: a.id, port: a.peerPort },
        bSelf: { id: b.id, port: b.peerPort },
        restartB: () => node({ identity: b.identity, peerPort: b.peerPort }).d,
        cleanup: async () => {},
      };
    },
    { lostWithinMs: 500 },
  );

  const allSeeEachOther = (nodes: Probe[], ms: number): Promise<unknown> =>
    waitFor(() => nodes.every((n) => nodes.every((m) => m === n || n.sees(m.id))), ms, 'every node to see every other');

  it('three nodes on one host all see each other', async () => {
    const nodes = [node(), node(), node()];
    await Promise.all(nodes.map((n) => n.d.start()));
    await allSeeEachOther(nodes, 3000);
    for (const n of nodes) expect(n.peers.map((p) => p.id)).to.not.include(n.id);
    expect(nodes[0]!.sees(nodes[1]!.id)).to.include({ host: '127.0.0.1', port: nodes[1]!.peerPort, name: `test ${nodes[1]!.id.slice(0, 8)}` });
  });

  it('a clean stop is noticed at once through GOODBYE, well under one interval', async () => {
    const nodes = [node({ intervalMs: 2000 }), node({ intervalMs: 2000 }), node({ intervalMs: 2000 })];
    await Promise.all(nodes.map((n) => n.d.start()));
    await allSeeEachOther(nodes, 3000);
    const t0 = Date.now();
    await nodes[2]!.d.stop();
    for (const n of nodes.slice(0, 2)) {
      const lost = await waitFor(() => n.lost.find((l) => l.id === nodes[2]!.id), 1000, 'GOODBYE');
      expect(lost.reason).to.equal('goodbye');
      expect(lost.at - t0, 'well under one interval (2 s)').to.be.below(1000);
    }
    expect(nodes[2]!.d.health().state).to.equal('stopped');
    expect(nodes[2]!.lost.map((l) => l.reason)).to.deep.equal(['gone', 'gone']); // its own sightings end with it
  });

  it('a killed node (no GOODBYE) expires about 3 intervals after its last beacon', async () => {
    const interval = 300;
    const nodes = [node({ intervalMs: interval }), node({ intervalMs: interval }), node({ intervalMs: interval })];
    await Promise.all(nodes.map((n) => n.d.start()));
    await allSeeEachOther(nodes, 3000);
    await nodes[2]!.d.stop({ goodbye: false });
    const lost = await waitFor(() => nodes[0]!.lost.find((l) => l.id === nodes[2]!.id), 3000, 'expiry');
    expect(lost.reason).to.equal('expired');
    // Timed from the last beacon heard, not from the kill: a late round (a loaded machine)
    // leaves a longer gap before the kill, and that gap counts towards the missed intervals.
    const silentFor = lost.at - nodes[0]!.heardAt.get(nodes[2]!.id)!;
    expect(silentFor, 'not before 3 intervals of silence, nor long after').to.be.within(3 * interval - 50, 4 * interval);
    expect(nodes[1]!.lost.find((l) => l.id === nodes[2]!.id)?.reason).to.equal('expired');
  });

  it("answers a newcomer's HELLO promptly, once for a burst of newcomers", async () => {
    const old = node({ intervalMs: 5000 });
    await old.d.start();
    await sleep(300); // its start-up HELLO is gone, the next one is ~4.5 s away
    const heard: Beacon[] = [];
    const sniff = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    closers.push(() => sniff.close());
    sniff.on('message', (msg) => heard.push(decodeBeacon(msg)));
    await new Promise<void>((resolve) => sniff.bind(groupPort, '224.1.1.1', resolve));
    sniff.addMembership('224.1.1.1', '127.0.0.1');

    const t0 = Date.now();
    const fresh = [node({ intervalMs: 5000 }), node({ intervalMs: 5000 }), node({ intervalMs: 5000 })];
    await Promise.all(fresh.map((n) => n.d.start()));
    // Well before the old node's next beacon (~4.5 s after its start), with room for a loaded machine.
    for (const n of fresh) await waitFor(() => n.sees(old.id), 2000, 'the newcomer to learn the old node');
    expect(Date.now() - t0).to.be.below(2000);
    await sleep(700);
    expect(heard.filter((b) => b.id === old.id && b.type === 'HELLO')).to.have.length(1);
  });

  it('a restarted peer (same id, new instance) is seen at once', async () => {
    const a = node({ intervalMs: 5000 });
    const b = node({ intervalMs: 5000 });
    await Promise.all([a.d.start(), b.d.start()]);
    await waitFor(() => a.sees(b.id), 1000, 'a to see b');
    await b.d.stop({ goodbye: false }); // a crash: a still believes in the old instance
    const b2 = node({ identity: b.identity, peerPort: b.peerPort, intervalMs: 5000 });
    const t0 = Date.now();
    await b2.d.start();
    // At once: long before the next beacon of either (4.5-5 s), with room for a loaded machine.
    await waitFor(() => a.sees(b.id)?.instance === b2.instance, 2000, 'a to see the new instance');
    await waitFor(() => b2.sees(a.id), 2000, 'the new instance to see a');
    expect(Date.now() - t0).to.be.below(2000);
    expect(a.lost).to.deep.equal([]);
  });

  it('uses the announced host, and the source address when none is announced', async () => {
    const plain = node();
    const announced = node({ host: '10.1.2.3' });
    await Promise.all([plain.d.start(), announced.d.start()]);
    expect((await waitFor(() => plain.sees(announced.id), 2000, 'announced host')).host).to.equal('10.1.2.3');
    expect((await waitFor(() => announced.sees(plain.id), 2000, 'source address')).host).to.equal('127.0.0.1');
  });

  it('reports a node beaconing on two interfaces at each source address as heard; the registry keeps it at one', async function () {
    const ifname = `shoalw${groupPort % 1000}`;
    const remove = addVeth(ifname, '10.78.0.1/24');
    if (!remove) this.skip(); // no veth support here
    closers.push(remove!);
    const a = node({ interfaces: ['lo', ifname] });
    const b = node({ interfaces: ['lo', ifname] });
    // What the node does with b's sightings: the registry alone decides which address a
    // node seen at two keeps (it moves only on a restart or when that one stops answering).
    const registry = new PeerRegistry();
    const changed: string[] = [];
    registry.on('peer-changed', (p, what) => changed.push(`${p.id} ${what}`));
    b.d.on('peer', (p) => registry.see('multicast', p));
    await Promise.all([a.d.start(), b.d.start()]);
    const hostsOfA = () => new Set(b.peers.filter((p) => p.id === a.id).map((p) => p.host));
    await waitFor(() => hostsOfA().size === 2, 2000, 'b to hear a from both links');
    expect([...hostsOfA()].sort()).to.deep.equal(['10.78.0.1', '127.0.0.1']);
    const first = b.peers.find((p) => p.id === a.id)!.host;
    const heardBefore = b.peers.length;
    await sleep(1000); // five more rounds from both links
    const later = b.peers.slice(heardBefore).filter((p) => p.id === a.id);
    expect(new Set(later.map((p) => p.host)).size, 'still both addresses, as heard').to.equal(2);
    expect(registry.get(a.id)!.host, 'the first address heard').to.equal(first);
    expect(registry.size).to.equal(1);
    expect(changed, 'no flapping between the two').to.deep.equal([]);
    expect(b.d.stats().rejected, 'each link\'s copy is its own beacon, not a replay').to.deep.equal({});
  });

  it('tracks at most maxPeers nodes: a newcomer takes the place of the longest-listed one that never answered; one that answered stays', async () => {
    const log = captureLog();
    const answered = new Set<string>();
    const table = node({ maxPeers: 2, logger: log.logger, answered: (id) => answered.has(id) });
    await table.d.start();
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const x = [1, 2, 3, 4].map(() => Identity.generate());
    const beacon = (who: Identity, type: 'HELLO' | 'GOODBYE' = 'HELLO') =>
      s.send(beaconOf(who, { type, instance: `${who.id.slice(0, 6)}-1`, name: 'x', port: 9600, intervalMs: 60_000 }, { port: groupPort }), groupPort, '224.1.1.1');
    const seen = () => table.peers.map((p) => p.id);
    const lost = () => table.lost.map((l) => `${l.id} ${l.reason}`);
    beacon(x[0]!);
    await waitFor(() => seen().includes(x[0]!.id), 2000, 'x0');
    beacon(x[1]!);
    await waitFor(() => seen().includes(x[1]!.id), 2000, 'x1');
    answered.add(x[1]!.id); // x1 answered us; x0 never did
    beacon(x[2]!);
    await waitFor(() => seen().includes(x[2]!.id), 2000, 'x2 in x0\'s place');
    expect(lost()).to.deep.equal([`${x[0]!.id} expired`]);
    answered.add(x[2]!.id);
    beacon(x[3]!); // every listed peer answered: no room
    await waitFor(() => log.warnings().some((m) => /peer table full \(2, every one answered us\)/.test(m)), 2000, 'the warning');
    expect(seen()).to.not.include(x[3]!.id);
    expect(table.d.stats().rejected['table-full']).to.equal(1);
    beacon(x[1]!, 'GOODBYE');
    await waitFor(() => lost().includes(`${x[1]!.id} goodbye`), 2000, 'x1 left');
    beacon(x[3]!);
    await waitFor(() => seen().includes(x[3]!.id), 2000, 'x3 once there is room');
  });

  it('expires a peer after at most maxIntervalMs x 3, whatever interval its beacon claims', async () => {
    const table = node({ maxIntervalMs: 300 });
    await table.d.start();
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const liar = Identity.generate();
    const t0 = Date.now();
    s.send(beaconOf(liar, { type: 'HELLO', instance: 'l1', name: 'liar', port: 9601, intervalMs: 3_600_000 }, { port: groupPort }), groupPort, '224.1.1.1');
    await waitFor(() => table.sees(liar.id), 2000, 'the liar');
    const gone = await waitFor(() => table.lost.find((l) => l.id === liar.id), 3000, 'the liar to expire');
    expect(gone.reason).to.equal('expired');
    expect(gone.at - t0, 'three ceilings (900 ms), not three hours').to.be.below(2500);
  });

  it('a GOODBYE only removes its signer, and a HELLO with another node\'s id cannot re-point it: both ignored and counted', async () => {
    const log = captureLog();
    const a = node({ logger: log.logger });
    const b = node({ intervalMs: 5000 });
    await Promise.all([a.d.start(), b.d.start()]);
    await waitFor(() => a.sees(b.id), 2000, 'a to see b');
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const mallory = Identity.generate();
    const sniffed = { instance: b.instance, name: 'x', port: 6666, intervalMs: 5000 };
    // b's id and instance (both sniffed off the group), with mallory's key: not b's id.
    s.send(beaconOf(mallory, { ...sniffed, type: 'GOODBYE', id: b.id }, { port: groupPort }), groupPort, '224.1.1.1');
    s.send(beaconOf(mallory, { ...sniffed, type: 'HELLO', id: b.id, host: '10.66.66.66' }, { port: groupPort }), groupPort, '224.1.1.1');
    // b's id and key, signed by mallory.
    s.send(beaconOf(b.identity, { ...sniffed, type: 'GOODBYE' }, { port: groupPort, signWith: mallory }), groupPort, '224.1.1.1');
    await waitFor(() => (a.d.stats().rejected['forged-id'] ?? 0) === 2 && a.d.stats().rejected['bad-signature'] === 1, 2000, 'three forgeries counted');
    expect(a.lost).to.deep.equal([]);
    expect(a.peers.filter((p) => p.id === b.id).every((p) => p.host === '127.0.0.1' && p.port === b.peerPort)).to.equal(true);
    expect(a.d.health().rejected).to.deep.include({ 'forged-id': 2, 'bad-signature': 1 });
    expect(log.warnings().filter((m) => /ignored a bad beacon from 127\.0\.0\.1 \(forged-id, 1 so far\)/.test(m))).to.have.length(1);
    await b.d.stop(); // its own GOODBYE still works
    await waitFor(() => a.lost.find((l) => l.id === b.id && l.reason === 'goodbye'), 2000, 'b\'s real GOODBYE');
  });

  it('ignores and counts a replayed beacon: the same datagram again, or an old one', async () => {
    const a = node();
    await a.d.start();
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const c = Identity.generate();
    const now = Date.now();
    const first = beaconOf(c, { type: 'HELLO', instance: 'c1', name: 'c', port: 9602, intervalMs: 60_000, timestamp: now }, { port: groupPort });
    const old = beaconOf(c, { type: 'HELLO', instance: 'c1', name: 'c', port: 9602, intervalMs: 60_000, timestamp: now - 10 * 60_000 }, { port: groupPort });
    s.send(first, groupPort, '224.1.1.1');
    await waitFor(() => a.sees(c.id), 2000, 'c');
    s.send(first, groupPort, '224.1.1.1');
    s.send(old, groupPort, '224.1.1.1');
    await waitFor(() => a.d.stats().rejected.replayed === 1 && a.d.stats().rejected.stale === 1, 2000, 'the replays counted');
    expect(a.peers.filter((p) => p.id === c.id)).to.have.length(1);
  });

  it('in a private swarm, takes only beacons with the swarm\'s hmac: none, another secret, or another group are ignored and counted', async () => {
    const { SwarmSecret } = await import('../../network/security/secret.js');
    const ours = SwarmSecret.from('our swarm secret');
    const other = SwarmSecret.from('some other secret');
    const a = node({ beaconKey: ours.beaconKey });
    const b = node({ beaconKey: ours.beaconKey });
    const outsider = node();
    const wrong = node({ beaconKey: other.beaconKey });
    // What anyone on the LAN hears of a private node: its beacons, which name nobody.
    const heard: Buffer[] = [];
    const listener = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    closers.push(() => listener.close());
    await new Promise<void>((resolve) => listener.bind(groupPort, () => (listener.addMembership('224.1.1.1', '127.0.0.1'), resolve())));
    listener.on('message', (m: Buffer) => heard.push(m));
    await Promise.all([a, b, outsider, wrong].map((n) => n.d.start()));
    await allSeeEachOther([a, b], 2000);
    expect(a.sees(b.id)!.name, 'a private beacon carries no name').to.equal('');
    const fromA = heard.map((m) => decodeBeacon(m)).filter((x) => x.id === a.id);
    expect(fromA.length).to.be.at.least(1);
    expect(fromA.every((x) => x.name === '')).to.equal(true);
    expect(heard.some((m) => m.includes(Buffer.from(`test ${a.id.slice(0, 8)}`)))).to.equal(false);
    expect(outsider.sees(a.id)).to.equal(undefined);
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const eve = Identity.generate();
    // Eve holds the secret but beacons to another group: her copy replayed here fails.
    s.send(beaconOf(eve, { type: 'HELLO', instance: 'e1', name: 'eve', port: 9603, intervalMs: 200 }, { group: '224.1.1.2', port: groupPort, macKey: ours.beaconKey }), groupPort, '224.1.1.1');
    await sleep(1000); // five rounds of everyone
    expect(a.sees(outsider.id)).to.equal(undefined);
    expect(a.sees(wrong.id)).to.equal(undefined);
    expect(a.sees(eve.id)).to.equal(undefined);
    expect(a.d.stats().rejected.unauthenticated).to.be.at.least(3);
    expect(outsider.sees(a.id), 'an open node ignores private beacons').to.equal(undefined);
    expect(outsider.d.stats().rejected.private).to.be.at.least(2);
    expect(wrong.sees(a.id)).to.equal(undefined);
  });

  it('logs garbage (rate-limited), ignores it, and keeps working', async () => {
    const log = captureLog();
    const a = node({ logger: log.logger });
    const b = node();
    await Promise.all([a.d.start(), b.d.start()]);
    await waitFor(() => a.sees(b.id), 2000, 'a to see b');
    const s = sender();
    closers.push(() => s.close());
    await sleep(50);
    const evil = Identity.generate();
    const junk = [
      Buffer.from('not a beacon'),
      randomBytes(40),
      Buffer.alloc(MAX_BEACON_BYTES + 100, 0x53),
      Buffer.concat([beaconOf(evil, HELLO, { port: groupPort }), Buffer.from('x')]),
      Buffer.from(beaconOf(evil, HELLO, { port: groupPort })).fill(0, 8, 10), // port 0
    ];
    for (const buf of junk) s.send(buf, groupPort, '224.1.1.1');
    const probeKey = Identity.generate();
    s.send(beaconOf(probeKey, { ...HELLO, host: undefined }, { port: groupPort }), groupPort, '224.1.1.1');
    const probe = await waitFor(() => a.sees(probeKey.id), 2000, 'the valid beacon after the junk');
    expect(probe.host).to.equal('127.0.0.1');
    expect(a.sees(evil.id)).to.equal(undefined);
    expect(a.d.stats().rejected.malformed).to.equal(junk.length);
    const bad = log.records.filter((l) => /ignored a (bad )?beacon/.test(l.msg));
    expect(bad).to.have.length(junk.length);
    expect(log.warnings().filter((m) => /bad beacon/.test(m))).to.have.length(1); // one per source a minute
    const since = a.peers.length;
    await waitFor(() => a.peers.slice(since).some((p) => p.id === b.id), 2000, 'b still seen');
    expect(a.d.health().state).to.equal('ok');
  });

  it('an unusable interface: health failing, one warning, start() resolves, the others carry on', async () => {
    const log = captureLog();
    const missing = node({ interfaces: ['nosuchif0'], logger: log.logger });
    const log2 = captureLog();
    const unassigned = node({ interfaces: ['10.255.255.1'], logger: log2.logger });
    const a = node();
    const b = node();
    await Promise.all([missing.d.start(), unassigned.d.start(), a.d.start(), b.d.start()]);
    expect(missing.d.health()).to.include({ state: 'failing' });
    expect(missing.d.health().detail).to.match(/nosuchif0/);
    expect(unassigned.d.health().detail).to.match(/10\.255\.255\.1 is not an address/);
    await sleep(3500); // several beacon rounds and back-off retries (1 s, 2 s)
    expect(log.warnings()).to.have.length(1);
    expect(log.warnings()[0]).to.match(/nosuchif0/);
    expect(log2.warnings()).to.have.length(1);
    expect(missing.health.map((h) => h.state)).to.deep.equal(['starting', 'failing']);
    expect(a.sees(b.id)).to.not.equal(undefined);
    expect(b.sees(a.id)).to.not.equal(undefined);
    expect(missing.peers).to.deep.equal([]);
    expect(a.sees(missing.id)).to.equal(undefined);
  });

  it('follows an interface that appears and goes away', async function () {
    const ifname = `shoalv${groupPort % 1000}`;
    try {
      execFileSync('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`], { stdio: 'pipe' });
    } catch {
      this.skip(); // no veth support here
    }
    execFileSync('ip', ['link', 'del', ifname]);
    const log = captureLog();
    const x = node({ interfaces: [ifname], logger: log.logger });
    const y = node({ interfaces: [ifname] });
    await Promise.all([x.d.start(), y.d.start()]);
    expect(x.d.health().state).to.equal('failing');

    closers.push(() => execFileSync('ip', ['link', 'del', ifname], { stdio: 'ignore' }));
    execFileSync('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`]);
    execFileSync('ip', ['addr', 'add', '10.77.0.1/24', 'dev', ifname]);
    execFileSync('ip', ['link', 'set', `${ifname}p`, 'up']);
    execFileSync('ip', ['link', 'set', ifname, 'up']);
    await waitFor(() => x.d.health().state === 'ok', 2000, 'x to work on the new interface');
    expect((await waitFor(() => x.sees(y.id), 2000, 'x to see y there')).host).to.equal('10.77.0.1');
    await waitFor(() => y.sees(x.id), 2000, 'y to see x there');
    expect(log.records.filter((l) => l.level === 30 && /ok again/.test(l.msg))).to.have.length(1);

    closers.pop();
    execFileSync('ip', ['link', 'del', ifname]);
    await waitFor(() => x.d.health().state === 'failing', 2000, 'x to notice the interface is gone');
    expect(x.d.health().detail).to.match(new RegExp(ifname));
    await waitFor(() => y.lost.find((l) => l.id === x.id), 2000, 'y to expire x');
  });

  it('honours group and port: other groups and ports stay apart', async () => {
    const base = groupPort;
    const a1 = node({ group: '224.1.1.2', port: base });
    const a2 = node({ group: '224.1.1.2', port: base });
    const otherGroup = node({ group: '224.1.1.3', port: base });
    const otherPort = node({ group: '224.1.1.2', port: base + 500 });
    const nodes = [a1, a2, otherGroup, otherPort];
    await Promise.all(nodes.map((n) => n.d.start()));
    await allSeeEachOther([a1, a2], 2000);
    await sleep(600); // three of their intervals
    expect(a1.peers.some((p) => p.id === otherGroup.id || p.id === otherPort.id)).to.equal(false);
    expect(otherGroup.peers).to.deep.equal([]);
    expect(otherPort.peers).to.deep.equal([]);
  });

  it('with no interfaces named, uses what is usable (here only lo)', async () => {
    const a = node({ interfaces: undefined });
    const b = node({ interfaces: undefined });
    await Promise.all([a.d.start(), b.d.start()]);
    await allSeeEachOther([a, b], 2000);
    expect(a.d.health()).to.include({ state: 'ok' });
    expect(a.d.health().detail).to.match(/on lo/);
  });
});
