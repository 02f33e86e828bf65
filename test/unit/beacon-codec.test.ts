/** The multicast beacon codec on its own: versioned binary beacons, refused before any field is read when too large. */
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { BeaconError, decodeBeacon, encodeBeacon, MAX_BEACON_BYTES, type Beacon } from '../../network/wire/beacon-codec.js';

const HELLO: Beacon = { type: 'HELLO', id: 'node-A_1', instance: 'inst1', name: 'café ☃', port: 9000, host: '192.168.1.7', intervalMs: 5000 };

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
  const valid = encodeBeacon(HELLO);

  it('round-trips HELLO and GOODBYE, with and without a host', () => {
    expect(decodeBeacon(valid)).to.deep.equal(HELLO);
    const bye: Beacon = { type: 'GOODBYE', id: 'x', instance: 'y', name: '', port: 65535, intervalMs: 10 };
    expect(decodeBeacon(encodeBeacon(bye))).to.deep.equal(bye);
    expect(decodeBeacon(encodeBeacon({ ...bye, host: '0.0.0.0' }))).to.deep.equal(bye);
    const longest = { ...HELLO, id: 'i'.repeat(64), instance: 'j'.repeat(64), name: '€'.repeat(21) };
    expect(decodeBeacon(encodeBeacon(longest))).to.deep.equal(longest);
  });

  it('names each broken rule', () => {
    const patch = (at: number, byte: number): Buffer => {
      const b = Buffer.from(valid);
      b[at] = byte;
      return b;
    };
    expect(decodeError(patch(0, 0x58))).to.match(/wrong magic/);
    expect(decodeError(patch(4, 2))).to.match(/unknown version 2/);
    expect(decodeError(patch(5, 9))).to.match(/unknown type 9/);
    expect(decodeError(Buffer.concat([valid, Buffer.from([0])]))).to.match(/trailing bytes: 1/);
    expect(decodeError(Buffer.alloc(MAX_BEACON_BYTES + 1))).to.match(/oversize/);
    const port0 = Buffer.from(valid);
    port0.writeUInt16BE(0, 6);
    expect(decodeError(port0)).to.match(/port must be 1\.\.65535, got 0/);
    expect(decodeError(patch(8, 224))).to.match(/not a unicast address/);
    const slow = Buffer.from(valid);
    slow.writeUInt32BE(3_600_001, 12);
    expect(decodeError(slow)).to.match(/interval/);
    expect(decodeError(patch(17, 0x2e))).to.match(/node id may only contain/); // '.'
    expect(decodeError(patch(16, 0))).to.match(/node id must be 1\.\.64/);
  });

  it('refuses bad names: control characters and broken UTF-8', () => {
    const nameAt = 16 + 1 + HELLO.id.length + 1 + HELLO.instance.length;
    const withName = (bytes: Buffer): Buffer => Buffer.concat([valid.subarray(0, nameAt), Buffer.from([bytes.length]), bytes]);
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
      if (i % 2 === 0) valid.copy(junk, 0, 0, Math.min(16, junk.length)); // get past the header checks
      try {
        decodeBeacon(junk);
      } catch (err) {
        if (!(err instanceof BeaconError)) throw err;
      }
    }
  });

  it('encodes only what it would decode', () => {
    expect(() => encodeBeacon({ ...HELLO, port: 0 })).to.throw(BeaconError, /port/);
    expect(() => encodeBeacon({ ...HELLO, id: 'a b' })).to.throw(BeaconError, /node id/);
    expect(() => encodeBeacon({ ...HELLO, instance: '' })).to.throw(BeaconError, /instance id/);
    expect(() => encodeBeacon({ ...HELLO, name: 'x'.repeat(65) })).to.throw(BeaconError, /name/);
    expect(() => encodeBeacon({ ...HELLO, host: 'example.org' })).to.throw(BeaconError, /host/);
  });
});
