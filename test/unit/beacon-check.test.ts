/**
 * Which beacons a node believes (network/discovery/beacon-check.ts), without sockets: the id
 * must be the key's, the signature must hold for this group and port, the time must be near
 * ours and newer than the sender's last, and in a private swarm the HMAC must be the swarm's.
 */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Identity } from '../../network/security/identity.js';
import { SwarmSecret } from '../../network/security/secret.js';
import { beaconContext, decodeBeacon } from '../../network/wire/beacon-codec.js';
import { BeaconCheck, type BeaconCheckInit, type BeaconVerdict } from '../../network/discovery/beacon-check.js';
import { beaconOf, type BeaconFields } from '../beacons.js';

const me = Identity.generate();
const alice = Identity.generate();
const mallory = Identity.generate();
const PORT = 10000;
const hello: BeaconFields = { type: 'HELLO', instance: 'i1', name: 'n', port: 9000, intervalMs: 5000 };

function checker(extra: Partial<BeaconCheckInit> = {}): BeaconCheck {
  return new BeaconCheck({ context: beaconContext('224.1.1.1', PORT), self: { id: me.id, publicKey: me.publicKey }, ...extra });
}
const reason = (v: BeaconVerdict) => (v.ok ? 'ok' : v.reason);

describe('beacon checks', () => {
  it('believes a signed beacon once, and names what is wrong with the others', () => {
    const c = checker();
    const now = Date.now();
    const good = beaconOf(alice, { ...hello, timestamp: now }, { port: PORT });
    expect(reason(c.check(decodeBeacon(good), '10.0.0.2', now))).to.equal('ok');
    expect(reason(c.check(decodeBeacon(good), '10.0.0.66', now)), 'the same datagram again, from anywhere').to.equal('replayed');
    const older = beaconOf(alice, { ...hello, timestamp: now - 1000 }, { port: PORT });
    expect(reason(c.check(decodeBeacon(older), '10.0.0.2', now)), 'older than the last one believed').to.equal('replayed');
    // Another node's id with one's own key: the id is not the key's.
    expect(reason(c.check(decodeBeacon(beaconOf(mallory, { ...hello, id: alice.id }, { port: PORT })), '10.0.0.66', now))).to.equal('forged-id');
    // Alice's id and key, signed by another key.
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now + 5 }, { port: PORT, signWith: mallory })), '10.0.0.66', now))).to.equal('bad-signature');
    // A beacon of alice's made for another group or port.
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now + 6 }, { port: PORT + 1 })), '10.0.0.2', now))).to.equal('bad-signature');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now + 7 }, { group: '224.1.1.9', port: PORT })), '10.0.0.2', now))).to.equal('bad-signature');
    // Ours comes back by loopback; our id with another key is someone posing as us.
    expect(reason(c.check(decodeBeacon(beaconOf(me, hello, { port: PORT })), '127.0.0.1', now))).to.equal('self');
    expect(reason(c.check(decodeBeacon(beaconOf(mallory, { ...hello, id: me.id }, { port: PORT })), '10.0.0.66', now))).to.equal('impersonation');
  });

  it('refuses a beacon too far from our clock, either way', () => {
    const c = checker({ maxSkewMs: 60_000 });
    const now = Date.now();
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now - 61_000 }, { port: PORT })), 'a', now))).to.equal('stale');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now + 61_000 }, { port: PORT })), 'a', now))).to.equal('stale');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now - 59_000 }, { port: PORT })), 'a', now))).to.equal('ok');
  });

  it('takes the copies a node sends on several links at one time (new nonces), each once', () => {
    const c = checker();
    const now = Date.now();
    const copies = [0, 1, 2].map(() => beaconOf(alice, { ...hello, timestamp: now }, { port: PORT }));
    for (const [i, b] of copies.entries()) expect(reason(c.check(decodeBeacon(b), `10.0.${i}.2`, now))).to.equal('ok');
    for (const b of copies) expect(reason(c.check(decodeBeacon(b), '10.9.9.9', now))).to.equal('replayed');
  });

  it('a forgery stamped in the future does not lock the real node out (only believed beacons move the clock on)', () => {
    const c = checker();
    const now = Date.now();
    const forged = beaconOf(alice, { ...hello, timestamp: now + 200_000 }, { port: PORT, signWith: mallory });
    expect(reason(c.check(decodeBeacon(forged), 'x', now))).to.equal('bad-signature');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, { ...hello, timestamp: now }, { port: PORT })), 'y', now))).to.equal('ok');
  });

  it('in a private swarm: no hmac, another secret, or another group is refused; without a secret, private beacons are ignored', () => {
    const ours = SwarmSecret.from('correct horse battery staple');
    const theirs = SwarmSecret.from('another swarm entirely');
    const c = checker({ macKey: ours.beaconKey });
    const now = Date.now();
    let t = now;
    const at = () => ({ ...hello, timestamp: ++t });
    expect(reason(c.check(decodeBeacon(beaconOf(alice, at(), { port: PORT })), 'a', now))).to.equal('unauthenticated');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, at(), { port: PORT, macKey: theirs.beaconKey })), 'a', now))).to.equal('unauthenticated');
    // The right secret, but sent to (and so bound to) another group: copied here, it fails.
    expect(reason(c.check(decodeBeacon(beaconOf(alice, at(), { group: '224.1.1.2', port: PORT, macKey: ours.beaconKey })), 'a', now))).to.equal('unauthenticated');
    expect(reason(c.check(decodeBeacon(beaconOf(alice, at(), { port: PORT, macKey: ours.beaconKey })), 'a', now))).to.equal('ok');
    const open = checker();
    expect(reason(open.check(decodeBeacon(beaconOf(alice, at(), { port: PORT, macKey: ours.beaconKey })), 'a', now))).to.equal('private');
  });

  it('checks at most so many signatures a second, fewer from one source', () => {
    const c = checker({ verifyPerSecond: 10, verifyPerSourcePerSecond: 4 });
    const now = 1_000_000_000_000;
    const one = () => beaconOf(Identity.generate(), { ...hello, timestamp: now }, { port: PORT });
    const fromA = [1, 2, 3, 4, 5].map(() => reason(c.check(decodeBeacon(one()), 'A', now)));
    expect(fromA).to.deep.equal(['ok', 'ok', 'ok', 'ok', 'rate-limited']);
    const others = Array.from({ length: 8 }, (_, i) => reason(c.check(decodeBeacon(one()), `S${i}`, now)));
    expect(others.filter((r) => r === 'ok')).to.have.length(6);
    expect(reason(c.check(decodeBeacon(one()), 'B', now + 1000)), 'a new second').to.equal('ok');
  });

  it('forgets the oldest ids past its bound, never more', () => {
    const c = checker({ replayIds: 2 });
    const now = Date.now();
    const ids = [Identity.generate(), Identity.generate(), Identity.generate()];
    const first = beaconOf(ids[0]!, { ...hello, timestamp: now }, { port: PORT });
    expect(reason(c.check(decodeBeacon(first), 'a', now))).to.equal('ok');
    for (const id of ids.slice(1)) expect(reason(c.check(decodeBeacon(beaconOf(id, { ...hello, timestamp: now }, { port: PORT })), 'a', now))).to.equal('ok');
    // The first id was forgotten: its old beacon is taken again (within the time window only).
    expect(reason(c.check(decodeBeacon(first), 'a', now))).to.equal('ok');
    expect(randomBytes(1)).to.have.length(1);
  });
});
