/**
 * Multicast beacons, bytes apart from meaning: a pure codec, no sockets. A node sends a
 * HELLO every few seconds and a GOODBYE when it stops cleanly, as one UDP datagram each.
 *
 * Wire format, version 1 (all integers big-endian; the whole datagram is the beacon):
 *
 *   offset  size  field
 *   0       4     magic        "SHOA" (0x53 0x48 0x4f 0x41)
 *   4       1     version      1; anything else is refused, so a new layout gets a new number
 *   5       1     type         1 = HELLO, 2 = GOODBYE
 *   6       2     port         the sender's peer (TCP) port, 1..65535
 *   8       4     host         IPv4 address the sender advertises; 0.0.0.0 = unspecified, and
 *                              receivers then use the datagram's source address
 *   12      4     interval     the sender's beacon interval in ms, 10..3 600 000: receivers
 *                              expire the sender after a few of *its* intervals, not theirs
 *   16      1+n   node id      length byte, then 1..64 bytes of [A-Za-z0-9_-]; stable across restarts
 *   ..      1+n   instance id  length byte, then 1..64 bytes of [A-Za-z0-9_-]; new at every start
 *   ..      1+n   name         length byte, then 0..64 bytes of UTF-8 without control characters
 *
 * Nothing may follow the name, and no datagram longer than MAX_BEACON_BYTES is parsed at
 * all. The largest valid beacon is 211 bytes, well inside one unfragmented datagram.
 */

export const BEACON_MAGIC = Buffer.from('SHOA', 'ascii');
export const BEACON_VERSION = 1;
/** Longer datagrams are refused before any field is read. */
export const MAX_BEACON_BYTES = 512;
export const MAX_ID_LENGTH = 64;
export const MAX_NAME_BYTES = 64;
export const MIN_BEACON_INTERVAL_MS = 10;
export const MAX_BEACON_INTERVAL_MS = 3_600_000;

export type BeaconType = 'HELLO' | 'GOODBYE';

export interface Beacon {
  type: BeaconType;
  /** Stable node id. */
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
}

/** A datagram that is not a valid beacon; the message says which rule it broke. */
export class BeaconError extends Error {
  override name = 'BeaconError';
}

const TYPE_CODES: Record<BeaconType, number> = { HELLO: 1, GOODBYE: 2 };
const TYPES_BY_CODE = new Map<number, BeaconType>([[1, 'HELLO'], [2, 'GOODBYE']]);
const HEADER_BYTES = 16;
const ID_RE = /^[A-Za-z0-9_-]+$/;
// C0 controls, DEL and C1 controls: a name ends up on consoles and web pages.
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

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

/** Multicast (224/4) and reserved (240/4) addresses can never be a peer's address. */
function checkHost(host: string): void {
  if (!IPV4_RE.test(host)) throw new BeaconError(`host must be an IPv4 dotted quad, got ${JSON.stringify(host)}`);
  if (Number(host.split('.')[0]) >= 224) throw new BeaconError(`host ${host} is not a unicast address`);
}

/** Encodes a beacon, refusing anything decodeBeacon would refuse. */
export function encodeBeacon(b: Beacon): Buffer {
  const code = TYPE_CODES[b.type];
  if (code === undefined) throw new BeaconError(`unknown beacon type ${String(b.type)}`);
  checkId('node id', b.id);
  checkId('instance id', b.instance);
  checkName(b.name);
  checkPort(b.port);
  checkInterval(b.intervalMs);
  const host = b.host === undefined || b.host === '0.0.0.0' ? undefined : b.host;
  if (host !== undefined) checkHost(host);

  const id = Buffer.from(b.id, 'ascii');
  const instance = Buffer.from(b.instance, 'ascii');
  const name = Buffer.from(b.name, 'utf8');
  const buf = Buffer.alloc(HEADER_BYTES + 3 + id.length + instance.length + name.length);
  BEACON_MAGIC.copy(buf, 0);
  buf[4] = BEACON_VERSION;
  buf[5] = code;
  buf.writeUInt16BE(b.port, 6);
  if (host !== undefined) host.split('.').forEach((octet, i) => (buf[8 + i] = Number(octet)));
  buf.writeUInt32BE(b.intervalMs, 12);
  let at = HEADER_BYTES;
  for (const field of [id, instance, name]) {
    buf[at] = field.length;
    field.copy(buf, at + 1);
    at += 1 + field.length;
  }
  return buf;
}

/** Decodes one datagram into a validated beacon, or throws BeaconError saying why not. */
export function decodeBeacon(buf: Buffer): Beacon {
  if (buf.length > MAX_BEACON_BYTES) throw new BeaconError(`oversize: ${buf.length} bytes, at most ${MAX_BEACON_BYTES}`);
  if (buf.length < BEACON_MAGIC.length || !buf.subarray(0, BEACON_MAGIC.length).equals(BEACON_MAGIC)) {
    throw new BeaconError('wrong magic: not a Shoal beacon');
  }
  if (buf.length < HEADER_BYTES) throw new BeaconError(`truncated: ${buf.length} bytes, the header alone is ${HEADER_BYTES}`);
  if (buf[4] !== BEACON_VERSION) throw new BeaconError(`unknown version ${buf[4]!}, this node speaks ${BEACON_VERSION}`);
  const type = TYPES_BY_CODE.get(buf[5]!);
  if (type === undefined) throw new BeaconError(`unknown type ${buf[5]!}`);
  const port = buf.readUInt16BE(6);
  checkPort(port);
  const octets = [...buf.subarray(8, 12)];
  const host = octets.every((o) => o === 0) ? undefined : octets.join('.');
  if (host !== undefined) checkHost(host);
  const intervalMs = buf.readUInt32BE(12);
  checkInterval(intervalMs);

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
  if (at !== buf.length) throw new BeaconError(`trailing bytes: ${buf.length - at} after the name`);

  const beacon: Beacon = { type, id, instance, name, port, intervalMs };
  if (host !== undefined) beacon.host = host;
  return beacon;
}
