/**
 * The multicast socket layer on its own: bytes out on every link, bytes in to the owner,
 * and what it does when an interface is missing. Real sockets, only inside the private
 * network namespace `npm test` makes, so no datagram reaches the host's network.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MulticastSocket, type MulticastSocketInit } from '../../network/discovery/multicast-socket.js';
import { addVeth, inPrivateNetns, NETNS_SKIP_REASON } from '../helpers-netns.js';
import { captureLog, waitFor } from '../helpers.js';

const GROUP = '224.1.1.1';

describe('multicast socket: options', () => {
  const base = { port: 1, ttl: 1, logger: captureLog().logger, onDatagram: () => {} };

  it('refuses a group outside 224.0.0.0/4, a port outside 1..65535 and a TTL outside 0..255', () => {
    expect(() => new MulticastSocket({ ...base, group: '192.168.1.1' })).to.throw(RangeError, /multicast group/);
    expect(() => new MulticastSocket({ ...base, group: '240.0.0.1' })).to.throw(RangeError, /multicast group/);
    expect(() => new MulticastSocket({ ...base, group: GROUP, port: 0 })).to.throw(RangeError, /port must be 1..65535/);
    expect(() => new MulticastSocket({ ...base, group: GROUP, port: 65536 })).to.throw(RangeError, /port must be 1..65535/);
    expect(() => new MulticastSocket({ ...base, group: GROUP, ttl: 256 })).to.throw(RangeError, /TTL must be 0..255/);
    expect(() => new MulticastSocket({ ...base, group: GROUP, ttl: 0 })).to.not.throw();
  });
});

describe('multicast socket (real sockets)', function () {
  let groupPort = 22100;
  const opened: MulticastSocket[] = [];
  const closers: Array<() => void> = [];

  before(function () {
    if (!inPrivateNetns()) {
      console.log(`      (skipped: ${NETNS_SKIP_REASON})`);
      this.skip();
    }
  });

  beforeEach(() => {
    groupPort++; // each test its own group port: nothing lingers from the one before
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
    for (const close of closers.splice(0)) close();
  });

  function socket(init: Partial<MulticastSocketInit> = {}) {
    const heard: Array<{ msg: Buffer; from: string }> = [];
    const log = captureLog();
    const s = new MulticastSocket({
      group: GROUP, port: groupPort, ttl: 1, interfaces: ['lo'], logger: log.logger,
      onDatagram: (msg, from) => heard.push({ msg, from }),
      ...init,
    });
    opened.push(s);
    s.open();
    const heardOf = (payload: Buffer) => heard.filter((h) => h.msg.equals(payload));
    return { s, heard, heardOf, log };
  }

  it('hands its owner each datagram sent on loopback, with its bytes and source address (its own too)', async () => {
    const a = socket();
    const b = socket();
    expect(await a.s.refresh(), 'a link just became usable').to.equal(true);
    expect(await b.s.refresh()).to.equal(true);
    expect(await a.s.refresh(), 'nothing new the second time').to.equal(false);
    const payload = randomBytes(100);
    await a.s.send(payload);
    const got = await waitFor(() => b.heardOf(payload)[0], 2000, 'b to hear it');
    expect(got.from).to.equal('127.0.0.1');
    // Loopback stays on so nodes on one host hear each other, the sender included.
    await waitFor(() => a.heardOf(payload).length === 1, 2000, 'a to hear its own');
    expect(a.s.status()).to.deep.equal({ state: 'ok', detail: `${GROUP}:${groupPort} on lo` });
    expect(a.s.lastSentAt).to.be.a('number');
  });

  it('sends one buffer on every link, each copy leaving from that link\'s address', async function () {
    const ifname = `shoalm${groupPort % 1000}`;
    const remove = addVeth(ifname, '10.79.0.1/24');
    if (!remove) this.skip(); // no veth support here
    closers.push(remove!);
    const a = socket({ interfaces: ['lo', ifname] });
    const b = socket({ interfaces: ['lo', ifname] });
    await Promise.all([a.s.refresh(), b.s.refresh()]);
    expect(a.s.status().detail).to.equal(`${GROUP}:${groupPort} on lo, ${ifname}`);
    const payload = randomBytes(32);
    await a.s.send(payload);
    await waitFor(() => b.heardOf(payload).length === 2, 2000, 'a copy from each link');
    expect(b.heardOf(payload).map((h) => h.from).sort()).to.deep.equal(['10.79.0.1', '127.0.0.1']);
  });

  it('joined nowhere, hands over nothing, though the kernel delivers the group to its bound socket', async () => {
    // Linux delivers group:port to every socket bound there once any socket on the host
    // joined the group (IP_MULTICAST_ALL): the receiver of `nowhere` is bound, never joined.
    const nowhere = socket({ interfaces: ['nosuchif0'] });
    const lo = socket();
    await nowhere.s.refresh();
    await lo.s.refresh();
    const payload = randomBytes(16);
    await lo.s.send(payload);
    await waitFor(() => lo.heardOf(payload).length === 1, 2000, 'the joined socket to hear it');
    await sleep(200);
    expect(nowhere.heard).to.deep.equal([]);
  });

  it('reports a wanted interface that does not exist: failing, one warning, retried with a growing back-off', async () => {
    const missing = socket({ interfaces: ['nosuchif0'] });
    const unassigned = socket({ interfaces: ['10.255.255.1'] });
    /** The back-off a refresh armed: bracketed by the clock before and after it, so load cannot skew it. */
    const backoffOf = async (): Promise<{ atLeast: number; atMost: number }> => {
      const before = Date.now();
      await missing.s.refresh();
      const after = Date.now();
      return { atLeast: missing.s.retryAt()! - after, atMost: missing.s.retryAt()! - before };
    };
    const first = await backoffOf();
    expect(await unassigned.s.refresh()).to.equal(false);
    expect(missing.s.status()).to.deep.equal({ state: 'failing', detail: 'no interface named nosuchif0 (or it has no address)' });
    expect(unassigned.s.status()).to.deep.equal({ state: 'failing', detail: '10.255.255.1 is not an address of any interface here' });
    expect(missing.log.warnings()).to.deep.equal(['multicast: no interface named nosuchif0 (or it has no address); retrying in the background']);
    expect(first.atMost, 'the first back-off: 1 s').to.be.at.least(1000);
    expect(first.atLeast).to.be.at.most(1000);

    const due = missing.s.retryAt()!;
    await missing.s.refresh(); // before the back-off ends: not retried, not re-armed
    expect(missing.s.retryAt()).to.equal(due);
    await sleep(due - Date.now() + 50);
    const second = await backoffOf();
    expect(second.atMost, 'doubled: 2 s').to.be.at.least(2000);
    expect(second.atLeast).to.be.at.most(2000);
    expect(missing.log.warnings(), 'the same problem is not logged again').to.have.length(1);
    await missing.s.send(randomBytes(8)); // no link: nothing to send on, and no throw
    expect(missing.s.lastSentAt).to.equal(undefined);
  });

  it('close() sends a farewell on every link first, then hands over nothing more', async () => {
    const a = socket();
    const b = socket();
    await Promise.all([a.s.refresh(), b.s.refresh()]);
    const farewell = randomBytes(24);
    await a.s.close(farewell);
    await waitFor(() => b.heardOf(farewell).length === 1, 2000, 'the farewell');
    expect(await a.s.refresh(), 'a closed socket opens nothing').to.equal(false);

    await b.s.close();
    const c = socket();
    await c.s.refresh();
    const late = randomBytes(24);
    await c.s.send(late);
    await waitFor(() => c.heardOf(late).length === 1, 2000, 'c to hear itself');
    await sleep(100);
    expect(b.heardOf(late)).to.deep.equal([]);
  });
});
