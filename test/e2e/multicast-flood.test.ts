/**
 * Forged beacons against a real node (attack 6 of issue 14): 2,000 HELLOs, each signed by a
 * key of its own (keys cost nothing), all naming one victim address. Before, every fake was
 * dialled (peer exchange at once, then each search), a flood of SYNs to an address of the
 * attacker's choice, and the fakes spread through `peers` answers. Now at most
 * MAX_UNVERIFIED_PER_HOST of them are listed at that host, each costs a few dials before it
 * counts as not answering, none is passed on, and an honest node on the group is found and
 * searched as before. Runs in the private network namespace of `npm test` (only `lo`).
 */
import { expect } from 'chai';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import { promises as fsp } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Identity } from '../../network/security/identity.js';
import { MAX_UNVERIFIED_PER_HOST, UNREACHABLE_AFTER } from '../../network/discovery/peer-registry.js';
import { controlRequest } from '../../network/control/control-client.js';
import { inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { cleanup, randomFile, startNode, tempDir, waitFor } from '../helpers.js';
import { beaconOf } from '../beacons.js';
import type { Node } from '../../network/index.js';

const FAKES = 2000;
const SOURCES = 10;
const VICTIM = '127.0.0.9';

describe('multicast: a flood of forged beacons naming a victim address', function () {
  this.timeout(60_000);
  let dir = '';
  const nodes: Node[] = [];
  const closers: Array<() => void> = [];

  before(function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    for (const close of closers.splice(0)) close();
    if (dir) await cleanup(dir);
  });

  it(`dials the victim at most ${UNREACHABLE_AFTER} x MAX_UNVERIFIED_PER_HOST (${MAX_UNVERIFIED_PER_HOST}) times, passes no fake on, and still finds the honest node`, async function () {
    dir = await tempDir('shoal-beacon-flood-');
    const groupPort = 23_456;
    const multicast = { interfaces: ['lo'], port: groupPort, intervalMs: 200 };
    // The victim: something listening at the address the fakes name, counting connections.
    let dials = 0;
    const victim = net.createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((r) => victim.listen(0, VICTIM, r));
    closers.push(() => victim.close());
    const victimPort = (victim.address() as net.AddressInfo).port;

    await fsp.mkdir(path.join(dir, 'honest', 'shared'), { recursive: true });
    await randomFile(path.join(dir, 'honest', 'shared', 'needle.bin'), 10_000);
    const honest = await startNode(path.join(dir, 'honest'), { multicast, name: 'honest' });
    nodes.push(honest);
    const target = await startNode(path.join(dir, 'target'), { multicast, name: 'target' });
    nodes.push(target);

    // The fakes, from ten source addresses (the beacon checks take 200 a second from each).
    const senders = await Promise.all(
      Array.from({ length: SOURCES }, (_, i) =>
        new Promise<dgram.Socket>((resolve) => {
          const s = dgram.createSocket('udp4');
          s.bind(0, `127.0.0.${20 + i}`, () => {
            s.setMulticastInterface('127.0.0.1');
            resolve(s);
          });
        }),
      ),
    );
    for (const s of senders) closers.push(() => s.close());
    for (let i = 0; i < FAKES; i++) {
      const fake = Identity.generate();
      const beacon = beaconOf(fake, { type: 'HELLO', instance: 'fake', name: `fake${i}`, port: victimPort, host: VICTIM, intervalMs: 300_000 }, { port: groupPort });
      senders[i % SOURCES]!.send(beacon, groupPort, '224.1.1.1');
      if (i % 200 === 199) await sleep(120);
    }
    await waitFor(() => target.peer(honest.id), 10_000, 'the target to find the honest node through the flood');
    await sleep(1000); // the exchange of peers with every newcomer
    const listed = target.knownPeers().filter((p) => p.host === VICTIM);
    expect(listed.length, 'fakes listed at the victim address').to.be.at.most(MAX_UNVERIFIED_PER_HOST);
    // Each search asks every peer not known to be silent: the fakes run out of chances.
    for (let i = 0; i < UNREACHABLE_AFTER + 1; i++) {
      const hits = await target.search('needle');
      expect(hits.map((h) => h.name), 'the honest node answers every search').to.deep.equal(['needle.bin']);
    }
    await sleep(500);
    expect(dials, `connections to the victim for ${FAKES} forged beacons`).to.be.at.most(UNREACHABLE_AFTER * MAX_UNVERIFIED_PER_HOST);
    // Nothing fake is passed on to other nodes.
    const told = await controlRequest('127.0.0.1', target.port, { type: 'peers' });
    expect(told.type === 'PEERS' && told.peers.map((p) => p.host)).to.deep.equal(['127.0.0.1']);
    expect(told.type === 'PEERS' && told.peers[0]!.id).to.equal(honest.id);
  });
});
