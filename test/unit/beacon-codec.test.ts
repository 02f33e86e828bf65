/** The multicast beacon codec on its own: versioned, signed binary beacons, refused before any field is read when too large. */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Identity } from '../../network/security/identity.js';
import { BeaconError, decodeBeacon, beaconContext, signingInput, MAX_BEACON_BYTES } from '../../network/wire/beacon-codec.js';
import { verifySignature } from '../../network/security/identity.js';
import { beaconOf } from '../beacons.js';

const who = Identity.generate();
const fields = { type: 'HELLO' as const, instance: 'inst1', name: 'café ☃', port: 9000, host: '192.168.1.7', intervalMs: 5000 };
const opts = { port: 10000 };
const HEADER = 66;

function decodeError(buf: Buffer): string {
  try {
    decodeBeacon(buf);
  } catch (err) {
    expect(err).to.be.instanceOf(BeaconError);
    return (err as Error).message;
  }
  throw new Error('decoded what it should have refused');
}

describe('beacon codec', () => {
  const valid = beaconOf(who, { ...fields, timestamp: 1_700_000_000_123 }, opts);

  it('round-trips HELLO and GOODBYE, with and without a host, signed over the group and port', () => {
    const d = decodeBeacon(valid);
    expect(d).to.deep.include({ ...fields, id: who.id, timestamp: 1_700_000_000_123 });
    expect(d.publicKey.equals(who.publicKey)).to.equal(true);
    expect(d.mac).to.equal(undefined);
    expect(verifySignature(d.publicKey, signingInput(beaconContext('224.1.1.1', 10000), d.signed), d.signature)).to.equal(true);
    expect(verifySignature(d.publicKey, signingInput(beaconContext('224.1.1.2', 10000), d.signed), d.signature), 'another group').to.equal(false);
    expect(verifySignature(d.publicKey, signingInput(beaconContext('224.1.1.1', 10001), d.signed), d.signature), 'another port').to.equal(false);
    const bye = decodeBeacon(beaconOf(who, { type: 'GOODBYE', instance: 'y', name: '', port: 65535, intervalMs: 10 }, opts));
    expect(bye).to.include({ type: 'GOODBYE', port: 65535, intervalMs: 10 });
    expect(bye.host).to.equal(undefined);
    expect(decodeBeacon(beaconOf(who, { ...fields, host: '0.0.0.0' }, opts)).host).to.equal(undefined);
    const longest = beaconOf(who, { ...fields, id: 'i'.repeat(64), instance: 'j'.repeat(64), name: `${'€'.repeat(21)}a` }, { ...opts, macKey: randomBytes(32) });
    expect(longest.length, 'the largest beacon').to.equal(357);
    expect(decodeBeacon(longest)).to.include({ id: 'i'.repeat(64), name: `${'€'.repeat(21)}a` });
    expect(decodeBeacon(longest).mac).to.have.length(32);
  });

  it('names each broken rule', () => {
    const patch = (at: number, byte: number): Buffer => {
      const b = Buffer.from(valid);
      b[at] = byte;
      return b;
    };
    expect(decodeError(patch(0, 0x58))).to.match(/wrong magic/);
    expect(decodeError(patch(4, 1))).to.match(/version 1: an unsigned beacon/);
    expect(decodeError(patch(4, 3))).to.match(/unknown version 3/);
    expect(decodeError(patch(5, 9))).to.match(/unknown type 9/);
    expect(decodeError(patch(6, 2))).to.match(/unknown flags/);
    expect(decodeError(patch(6, 1)), 'an hmac announced but missing').to.match(/truncated/);
    expect(decodeError(Buffer.concat([valid, Buffer.from([0])]))).to.match(/trailing bytes: 1/);
    expect(decodeError(Buffer.alloc(MAX_BEACON_BYTES + 1))).to.match(/oversize/);
    const port0 = Buffer.from(valid);
    port0.writeUInt16BE(0, 8);
    expect(decodeError(port0)).to.match(/port must be 1\.\.65535, got 0/);
    expect(decodeError(patch(10, 224))).to.match(/not a unicast address/);
    const slow = Buffer.from(valid);
    slow.writeUInt32BE(3_600_001, 14);
    expect(decodeError(slow)).to.match(/interval/);
    expect(decodeError(patch(18, 0xff))).to.match(/timestamp beyond 2\^53/);
    expect(decodeError(patch(HEADER + 1, 0x2e))).to.match(/node id may only contain/); // '.'
    expect(decodeError(patch(HEADER, 0))).to.match(/node id must be 1\.\.64/);
  });

  it('refuses bad names: control characters and broken UTF-8', () => {
    const nameAt = HEADER + 1 + who.id.length + 1 + fields.instance.length;
    const withName = (bytes: Buffer): Buffer => Buffer.concat([valid.subarray(0, nameAt), Buffer.from([bytes.length]), bytes, Buffer.alloc(64)]);
    expect(decodeBeacon(withName(Buffer.from('ok name'))).name).to.equal('ok name');
    expect(decodeError(withName(Buffer.from('a\u0007b')))).to.match(/control character/);
    expect(decodeError(withName(Buffer.from([0x61, 0xc3])))).to.match(/not valid UTF-8/);
    expect(decodeError(withName(Buffer.alloc(65, 0x61)))).to.match(/at most 64 bytes/);
  });

  it('refuses every truncation of a valid beacon', () => {
    for (let n = 0; n < valid.length; n++) {
      expect(decodeError(valid.subarray(0, n)), `length ${n}`).to.match(/truncated|wrong magic/);
    }
  });

  it('throws nothing but BeaconError on random garbage, with or without a valid header', () => {
    for (let i = 0; i < 5000; i++) {
      const junk = randomBytes(Math.floor(Math.random() * 600));
      if (i % 2 === 0) valid.copy(junk, 0, 0, Math.min(HEADER, junk.length)); // get past the header checks
      try {
        decodeBeacon(junk);
      } catch (err) {
        if (!(err instanceof BeaconError)) throw err;
      }
    }
  });

  it('encodes only what it would decode', () => {
    expect(() => beaconOf(who, { ...fields, port: 0 }, opts)).to.throw(BeaconError, /port/);
    expect(() => beaconOf(who, { ...fields, id: 'a b' }, opts)).to.throw(BeaconError, /node id/);
    expect(() => beaconOf(who, { ...fields, instance: '' }, opts)).to.throw(BeaconError, /instance id/);
    expect(() => beaconOf(who, { ...fields, name: 'x'.repeat(65) }, opts)).to.throw(BeaconError, /name/);
    expect(() => beaconOf(who, { ...fields, host: 'example.org' }, opts)).to.throw(BeaconError, /host/);
    expect(() => beaconOf(who, { ...fields, timestamp: -1 }, opts)).to.throw(BeaconError, /timestamp/);
    expect(() => beaconOf(who, { ...fields, nonce: Buffer.alloc(7) }, opts)).to.throw(BeaconError, /nonce/);
  });
});
