/**
 * Signed beacons for tests: what a node would send, from an identity of the test's own, and
 * the group context they are bound to. Tests that forge or replay beacons start from these.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { Identity } from '../network/security/identity.js';
import { beaconContext, encodeBeacon, type Beacon } from '../network/wire/beacon-codec.js';

/** A beacon's fields without what the sender's identity and clock give. */
export type BeaconFields = Omit<Beacon, 'id' | 'publicKey' | 'timestamp' | 'nonce'> & Partial<Pick<Beacon, 'id' | 'timestamp' | 'nonce'>>;

export interface BeaconOptions {
  group?: string;
  port: number;
  /** A private swarm's beacon key: the HMAC is added. */
  macKey?: Buffer;
  /** Sign with this key instead of the identity's (a forgery). */
  signWith?: Identity;
}

/** A beacon as `who` sends it to group:port (224.1.1.1 by default), signed, stamped now unless told. */
export function beaconOf(who: Identity, fields: BeaconFields, opts: BeaconOptions): Buffer {
  const context = beaconContext(opts.group ?? '224.1.1.1', opts.port);
  const signer = opts.signWith ?? who;
  const key = opts.macKey;
  return encodeBeacon(
    { id: who.id, timestamp: Date.now(), nonce: randomBytes(8), ...fields, publicKey: who.publicKey },
    { context, sign: (d) => signer.sign(d), mac: key ? (d) => createHmac('sha256', key).update(d).digest() : undefined },
  );
}
