/**
 * A node's identity: an Ed25519 key pair made at its first start and kept in its state
 * folder (`node-key.pem`, PKCS#8, mode 0600), and the node id derived from the public key.
 * Whatever a node signs (beacons, bootstrap requests, reports) names that id, and anyone can
 * check the signature against the key and the key against the id: no node can speak for
 * another's id without its private key, whatever else it knows (instance ids, addresses).
 *
 * The id, as Syncthing's device ids: a digest of the public key in base32. Ours is the
 * first 160 bits of SHA-256(raw 32-byte public key), as 32 characters of RFC 4648 base32
 * (A-Z 2-7, no padding). Why 160 bits: posing as a given node means finding a key whose
 * digest starts with that node's 160 bits, a second preimage (2^160 work: out of reach);
 * a birthday collision (2^80) would only give an attacker two keys of its own with one id,
 * which lets it pose as nobody but itself. 160 bits keep the id short enough to read, type
 * and show in a table (Syncthing's full 256 bits need 56 characters with check digits), and
 * fit every place an id already goes (1..64 of [A-Za-z0-9_-]).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { writeFileAtomic } from '../util/atomic.js';

export const PUBLIC_KEY_BYTES = 32;
export const SIGNATURE_BYTES = 64;
/** Bits of SHA-256(public key) an id keeps (see the top of this file). */
export const NODE_ID_BITS = 160;
export const NODE_ID_LENGTH = NODE_ID_BITS / 5;
/** What a key-derived node id looks like. */
export const NODE_ID_PATTERN = /^[A-Z2-7]{32}$/;
/** The key's file in the state folder. */
export const KEY_FILE = 'node-key.pem';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows it. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The key file cannot be read, is not an Ed25519 private key, or cannot be written. */
export class IdentityError extends Error {
  override name = 'IdentityError';
}

function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** The node id of a raw Ed25519 public key (32 bytes). */
export function nodeIdOf(publicKey: Uint8Array): string {
  if (publicKey.length !== PUBLIC_KEY_BYTES) throw new RangeError(`an Ed25519 public key has ${PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`);
  return base32(createHash('sha256').update(publicKey).digest().subarray(0, NODE_ID_BITS / 8));
}

/** Is `id` the id of `publicKey`? False for anything malformed. */
export function idMatchesKey(id: string, publicKey: Uint8Array): boolean {
  return publicKey.length === PUBLIC_KEY_BYTES && NODE_ID_PATTERN.test(id) && nodeIdOf(publicKey) === id;
}

/**
 * Does `signature` sign `data` under the raw Ed25519 `publicKey`? False (never a throw)
 * for a key or signature of the wrong size or that is not a valid encoding: this takes
 * bytes straight from the network.
 */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES) return false;
  try {
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
    return edVerify(null, data, key, signature);
  } catch {
    return false;
  }
}

/** What signs for a node: its id, its public key, and a signing function. */
export interface Signer {
  readonly id: string;
  /** Raw Ed25519 public key, 32 bytes. */
  readonly publicKey: Buffer;
  sign(data: Uint8Array): Buffer;
}

/** A node's key pair and the id derived from it. */
export class Identity implements Signer {
  readonly id: string;
  readonly publicKey: Buffer;

  private constructor(private readonly privateKey: KeyObject) {
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    this.publicKey = Buffer.from(spki.subarray(SPKI_PREFIX.length));
    this.id = nodeIdOf(this.publicKey);
  }

  /** A new key pair (kept nowhere until `save`). */
  static generate(): Identity {
    return new Identity(generateKeyPairSync('ed25519').privateKey);
  }

  /** From a PKCS#8 PEM; IdentityError if it is not an Ed25519 private key. */
  static fromPem(pem: string, where = 'the key'): Identity {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch (err) {
      throw new IdentityError(`${where} is not a private key in PEM (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new IdentityError(`${where} is a ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`);
    return new Identity(key);
  }

  sign(data: Uint8Array): Buffer {
    return edSign(null, data, this.privateKey);
  }

  toPem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }
}

/** The identity kept in `stateDir`, and whether it was just made (then `keepIdentity` must write it). */
export interface LoadedIdentity {
  identity: Identity;
  fresh: boolean;
  file: string;
  /** The file is readable by others than its owner: worth a warning. */
  exposed: boolean;
}

/**
 * The node's key from `<stateDir>/node-key.pem`, or a new one when there is none (written
 * by `keepIdentity` once the node holds its state folder). Synchronous: the node's id is
 * known from its constructor on. IdentityError when the file exists but is no Ed25519 key:
 * never replaced, since that would change the node's id behind the user's back.
 */
export function loadIdentity(stateDir: string): LoadedIdentity {
  const file = path.join(stateDir, KEY_FILE);
  let pem: string;
  let exposed = false;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new IdentityError(`${file} is not a file`);
    if (st.size > 64 * 1024) throw new IdentityError(`${file} is too large to be a key (${st.size} bytes)`);
    exposed = process.platform !== 'win32' && (st.mode & 0o077) !== 0;
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof IdentityError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { identity: Identity.generate(), fresh: true, file, exposed: false };
    throw new IdentityError(`${file}: cannot read the node key (${(err as Error).message})`);
  }
  return { identity: Identity.fromPem(pem, file), fresh: false, file, exposed };
}

/** Write a fresh identity's key (mode 0600, atomically). IdentityError when it cannot be written. */
export async function keepIdentity(loaded: LoadedIdentity): Promise<void> {
  try {
    await writeFileAtomic(loaded.file, loaded.identity.toPem(), { mode: 0o600 });
  } catch (err) {
    throw new IdentityError(`${loaded.file}: cannot save the node key (${(err as Error).message})`);
  }
}

/** A short form of an id for tight tables (the first 8 characters); the full id elsewhere. */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}
