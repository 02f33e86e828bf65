/**
 * Multicast beacons, bytes apart from meaning: a pure codec, no sockets, no keys. A node sends
 * a HELLO every few seconds and a GOODBYE when it stops cleanly, as one UDP datagram each,
 * signed with its node key; in a private swarm an HMAC keyed from the secret follows.
 *
 * Wire format, version 2 (all integers big-endian; the whole datagram is the beacon):
 *
 *   offset  size  field
 *   0       4     magic        "SHOA" (0x53 0x48 0x4f 0x41)
 *   4       1     version      2; anything else is refused, so a new layout gets a new number
 *                              (version 1 was the same beacon unsigned)
 *   5       1     type         1 = HELLO, 2 = GOODBYE
 *   6       1     flags        bit 0: an HMAC follows the signature (a private swarm); other bits 0
 *   7       1     reserved     0
 *   8       2     port         the sender's peer (TCP) port, 1..65535
 *   10      4     host         IPv4 address the sender advertises; 0.0.0.0 = unspecified, and
 *                              receivers then use the datagram's source address
 *   14      4     interval     the sender's beacon interval in ms, 10..3 600 000: receivers
 *                              expire the sender after a few of *its* intervals (within bounds)
 *   18      8     timestamp    ms since the epoch when sent, below 2^53: receivers refuse a
 *                              beacon too far from their clock, or not newer than the last one
 *                              of that node (replays)
 *   26      8     nonce        random, new for every datagram (two copies sent on two links
 *                              at one timestamp differ by it)
 *   34      32    public key   the sender's Ed25519 key; its node id is derived from it
 *   66      1+n   node id      length byte, then 1..64 bytes of [A-Za-z0-9_-]
 *   ..      1+n   instance id  length byte, then 1..64 bytes of [A-Za-z0-9_-]; new at every start
 *   ..      1+n   name         length byte, then 0..64 bytes of UTF-8 without control characters
 *   ..      64    signature    Ed25519 over signingInput(context, every byte before it)
 *   ..      32    hmac         (flag bit 0) HMAC-SHA256 with the swarm's beacon key over
 *                              macInput(context, every byte before it, signature included)
 *
 * `context` is the group address and UDP port the beacon is sent to (6 bytes), so a beacon
 * copied onto another group or port fails both checks. Nothing may follow, and no datagram
 * longer than MAX_BEACON_BYTES is parsed at all. The largest valid beacon is 357 bytes, well
 * inside one unfragmented datagram. What the checks mean (id from key, windows, replays) is
 * network/discovery/beacon-check.ts; this file only says where the bytes are.
 */

export const BEACON_MAGIC = Buffer.from('SHOA', 'ascii');
export const BEACON_VERSION = 2;
/** Longer datagrams are refused before any field is read. */
export const MAX_BEACON_BYTES = 512;
export const MAX_ID_LENGTH = 64;
export const MAX_NAME_BYTES = 64;
export const MIN_BEACON_INTERVAL_MS = 10;
export const MAX_BEACON_INTERVAL_MS = 3_600_000;
export const BEACON_KEY_BYTES = 32;
export const BEACON_SIGNATURE_BYTES = 64;
export const BEACON_MAC_BYTES = 32;
export const BEACON_NONCE_BYTES = 8;

const SIGNING_LABEL = Buffer.from('shoal beacon v2\0', 'ascii');
const MAC_LABEL = Buffer.from('shoal beacon mac v2\0', 'ascii');
const FLAG_MAC = 1;

export type BeaconType = 'HELLO' | 'GOODBYE';

/** What a beacon says; `publicKey`, `timestamp` and `nonce` are what make it checkable. */
export interface Beacon {
  type: BeaconType;
  /** Stable node id, derived from `publicKey`. */
  id: string;
  /** Changes at every start of the sender. */
  instance: string;
  name: string;
  /** Peer port. */
  port: number;
  /** Advertised IPv4 address; undefined = unspecified (use the packet's source). */
  host?: string;
  /** The sender's beacon interval (ms). */
  intervalMs: number;
  /** When it was sent (ms since the epoch). */
  timestamp: number;
  /** 8 random bytes. */
  nonce: Buffer;
  /** Raw Ed25519 public key, 32 bytes. */
  publicKey: Buffer;
}

/** A decoded beacon with the bytes its signature and HMAC cover. */
export interface DecodedBeacon extends Beacon {
  signature: Buffer;
  /** Every byte before the signature. */
  signed: Buffer;
  /** The HMAC, when the sender is in a private swarm. */
  mac?: Buffer;
  /** Every byte before the HMAC (the signature included). */
  macked: Buffer;
}

/** How a beacon is authenticated when encoded: the sender's key, and the swarm's HMAC when private. */
export interface BeaconAuth {
  /** The group address and port it goes to (see beaconContext). */
  context: Buffer;
  sign(data: Buffer): Buffer;
  mac?: (data: Buffer) => Buffer;
}

/** A datagram that is not a valid beacon; the message says which rule it broke. */
export class BeaconError extends Error {
  override name = 'BeaconError';
}

const TYPE_CODES: Record<BeaconType, number> = { HELLO: 1, GOODBYE: 2 };
const TYPES_BY_CODE = new Map<number, BeaconType>([[1, 'HELLO'], [2, 'GOODBYE']]);
const HEADER_BYTES = 66;
const ID_RE = /^[A-Za-z0-9_-]+$/;
// C0 controls, DEL and C1 controls: a name ends up on consoles and web pages.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The 6 bytes that bind a beacon to where it is sent: group address and UDP port. */
export function beaconContext(group: string, port: number): Buffer {
  const buf = Buffer.alloc(6);
  group.split('.').forEach((octet, i) => (buf[i] = Number(octet) & 0xff));
  buf.writeUInt16BE(port & 0xffff, 4);
  return buf;
}

/** What the sender's key signs: a label, the context, then the beacon up to its signature. */
export function signingInput(context: Buffer, signed: Buffer): Buffer {
  return Buffer.concat([SIGNING_LABEL, context, signed]);
}

/** What the swarm's HMAC covers: a label, the context, then the beacon up to its HMAC. */
export function macInput(context: Buffer, macked: Buffer): Buffer {
  return Buffer.concat([MAC_LABEL, context, macked]);
}

function checkId(what: string, id: string): void {
  if (id.length < 1 || id.length > MAX_ID_LENGTH) throw new BeaconError(`${what} must be 1..${MAX_ID_LENGTH} characters, got ${id.length}`);
  if (!ID_RE.test(id)) throw new BeaconError(`${what} may only contain A-Z a-z 0-9 _ -`);
}

function checkName(name: string): void {
  const n = Buffer.byteLength(name, 'utf8');
  if (n > MAX_NAME_BYTES) throw new BeaconError(`name must be at most ${MAX_NAME_BYTES} bytes of UTF-8, got ${n}`);
  if (CONTROL_RE.test(name)) throw new BeaconError('name contains a control character');
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BeaconError(`port must be 1..65535, got ${port}`);
}

function checkInterval(ms: number): void {
  if (!Number.isInteger(ms) || ms < MIN_BEACON_INTERVAL_MS || ms > MAX_BEACON_INTERVAL_MS) {
    throw new BeaconError(`interval must be ${MIN_BEACON_INTERVAL_MS}..${MAX_BEACON_INTERVAL_MS} ms, got ${ms}`);
  }
}

function checkTimestamp(ms: number): void {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new BeaconError(`timestamp must be a whole number of ms below 2^53, got ${ms}`);
}

/** Multicast (224/4) and reserved (240/4) addresses can never be a peer's address. */
function checkHost(host: string): void {
  if (!IPV4_RE.test(host)) throw new BeaconError(`host must be an IPv4 dotted quad, got ${JSON.stringify(host)}`);
  if (Number(host.split('.')[0]) >= 224) throw new BeaconError(`host ${host} is not a unicast address`);
}

/** Encodes and signs a beacon (and adds the HMAC when `auth.mac` is given), refusing anything decodeBeacon would refuse. */
export function encodeBeacon(b: Beacon, auth: BeaconAuth): Buffer {
  const code = TYPE_CODES[b.type];
  if (code === undefined) throw new BeaconError(`unknown beacon type ${String(b.type)}`);
  checkId('node id', b.id);
  checkId('instance id', b.instance);
  checkName(b.name);
  checkPort(b.port);
  checkInterval(b.intervalMs);
  checkTimestamp(b.timestamp);
  if (b.nonce.length !== BEACON_NONCE_BYTES) throw new BeaconError(`nonce must be ${BEACON_NONCE_BYTES} bytes, got ${b.nonce.length}`);
  if (b.publicKey.length !== BEACON_KEY_BYTES) throw new BeaconError(`public key must be ${BEACON_KEY_BYTES} bytes, got ${b.publicKey.length}`);
  const host = b.host === undefined || b.host === '0.0.0.0' ? undefined : b.host;
  if (host !== undefined) checkHost(host);

  const id = Buffer.from(b.id, 'ascii');
  const instance = Buffer.from(b.instance, 'ascii');
  const name = Buffer.from(b.name, 'utf8');
  const head = Buffer.alloc(HEADER_BYTES + 3 + id.length + instance.length + name.length);
  BEACON_MAGIC.copy(head, 0);
  head[4] = BEACON_VERSION;
  head[5] = code;
  head[6] = auth.mac ? FLAG_MAC : 0;
  head.writeUInt16BE(b.port, 8);
  if (host !== undefined) host.split('.').forEach((octet, i) => (head[10 + i] = Number(octet)));
  head.writeUInt32BE(b.intervalMs, 14);
  head.writeBigUInt64BE(BigInt(b.timestamp), 18);
  b.nonce.copy(head, 26);
  b.publicKey.copy(head, 34);
  let at = HEADER_BYTES;
  for (const field of [id, instance, name]) {
    head[at] = field.length;
    field.copy(head, at + 1);
    at += 1 + field.length;
  }
  const signature = auth.sign(signingInput(auth.context, head));
  if (signature.length !== BEACON_SIGNATURE_BYTES) throw new BeaconError(`signature must be ${BEACON_SIGNATURE_BYTES} bytes, got ${signature.length}`);
  const signedBeacon = Buffer.concat([head, signature]);
  if (!auth.mac) return signedBeacon;
  const mac = auth.mac(macInput(auth.context, signedBeacon));
  if (mac.length !== BEACON_MAC_BYTES) throw new BeaconError(`hmac must be ${BEACON_MAC_BYTES} bytes, got ${mac.length}`);
  return Buffer.concat([signedBeacon, mac]);
}

/**
 * Decodes one datagram into a beacon whose every field is valid, or throws BeaconError
 * saying why not. It checks no signature: that needs the context and the keys
 * (discovery/beacon-check.ts).
 */
export function decodeBeacon(buf: Buffer): DecodedBeacon {
  if (buf.length > MAX_BEACON_BYTES) throw new BeaconError(`oversize: ${buf.length} bytes, at most ${MAX_BEACON_BYTES}`);
  if (buf.length < BEACON_MAGIC.length || !buf.subarray(0, BEACON_MAGIC.length).equals(BEACON_MAGIC)) {
    throw new BeaconError('wrong magic: not a Shoal beacon');
  }
  if (buf.length < 5) throw new BeaconError(`truncated: ${buf.length} bytes`);
  if (buf[4] !== BEACON_VERSION) {
    throw new BeaconError(buf[4] === 1 ? 'version 1: an unsigned beacon of an older Shoal' : `unknown version ${buf[4]!}, this node speaks ${BEACON_VERSION}`);
  }
  if (buf.length < HEADER_BYTES) throw new BeaconError(`truncated: ${buf.length} bytes, the header alone is ${HEADER_BYTES}`);
  const type = TYPES_BY_CODE.get(buf[5]!);
  if (type === undefined) throw new BeaconError(`unknown type ${buf[5]!}`);
  const flags = buf[6]!;
  if ((flags & ~FLAG_MAC) !== 0 || buf[7] !== 0) throw new BeaconError(`unknown flags ${flags}/${buf[7]!}`);
  const port = buf.readUInt16BE(8);
  checkPort(port);
  const octets = [...buf.subarray(10, 14)];
  const host = octets.every((o) => o === 0) ? undefined : octets.join('.');
  if (host !== undefined) checkHost(host);
  const intervalMs = buf.readUInt32BE(14);
  checkInterval(intervalMs);
  const big = buf.readBigUInt64BE(18);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new BeaconError('timestamp beyond 2^53 ms');
  const timestamp = Number(big);
  const nonce = Buffer.from(buf.subarray(26, 34));
  const publicKey = Buffer.from(buf.subarray(34, 66));

  let at = HEADER_BYTES;
  const field = (what: string): Buffer => {
    if (at >= buf.length) throw new BeaconError(`truncated: ${what} length missing`);
    const len = buf[at]!;
    if (at + 1 + len > buf.length) throw new BeaconError(`truncated: ${what} needs ${len} bytes, ${buf.length - at - 1} left`);
    const bytes = buf.subarray(at + 1, at + 1 + len);
    at += 1 + len;
    return bytes;
  };
  const id = field('node id').toString('latin1');
  checkId('node id', id);
  const instance = field('instance id').toString('latin1');
  checkId('instance id', instance);
  let name: string;
  try {
    name = utf8.decode(field('name'));
  } catch (err) {
    if (err instanceof BeaconError) throw err;
    throw new BeaconError('name is not valid UTF-8');
  }
  checkName(name);
  const hasMac = (flags & FLAG_MAC) !== 0;
  const expected = at + BEACON_SIGNATURE_BYTES + (hasMac ? BEACON_MAC_BYTES : 0);
  if (buf.length < expected) throw new BeaconError(`truncated: the signature${hasMac ? ' and hmac need' : ' needs'} ${expected - at} bytes, ${buf.length - at} left`);
  if (buf.length > expected) throw new BeaconError(`trailing bytes: ${buf.length - expected} after the ${hasMac ? 'hmac' : 'signature'}`);
  const signed = Buffer.from(buf.subarray(0, at));
  const signature = Buffer.from(buf.subarray(at, at + BEACON_SIGNATURE_BYTES));
  const macked = Buffer.from(buf.subarray(0, at + BEACON_SIGNATURE_BYTES));

  const beacon: DecodedBeacon = { type, id, instance, name, port, intervalMs, timestamp, nonce, publicKey, signature, signed, macked };
  if (host !== undefined) beacon.host = host;
  if (hasMac) beacon.mac = Buffer.from(buf.subarray(at + BEACON_SIGNATURE_BYTES, expected));
  return beacon;
}
