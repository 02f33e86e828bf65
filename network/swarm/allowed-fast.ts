import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { normalizeAddress } from '../util/addresses.js';

/** Pieces in the set we grant each peer that speaks the fast extension (BEP 6 suggests 10; libtorrent uses 5). */
export const DEFAULT_ALLOWED_FAST = 10;
/** Largest set we grant, or take from a peer: a set beyond it is a free download, not a start. */
export const MAX_ALLOWED_FAST = 64;

/**
 * The canonical allowed-fast set (BEP 6) of `k` pieces that a peer at `address` may download
 * from us while we choke it:
 *
 *     x = (ip & 0xFFFFFF00) ++ infohash
 *     while |set| < k: x = SHA1(x); each of x's five big-endian u32 words, mod pieceCount, joins the set
 *
 * The address is masked to its /24 so that a peer cannot earn more pieces by coming back from
 * its neighbour's address. BEP 6 defines it for IPv4 only (an IPv4 peer on a dual-stack socket,
 * `::ffff:a.b.c.d`, counts as IPv4). For IPv6 we use the analogue that keeps its purpose: the
 * first 6 bytes (the /48, the largest prefix commonly delegated to one site, so one subscriber
 * gets one set however many addresses it has) followed by the infohash, hashed the same way.
 * An address that is not an IP (a host name) gets no set. When `k` covers the torrent, every
 * piece is in the set (as libtorrent does; the loop would never end otherwise).
 */
export function allowedFastSet(address: string, infoHash: Buffer, pieceCount: number, k = DEFAULT_ALLOWED_FAST): number[] {
  k = Math.min(k, MAX_ALLOWED_FAST);
  if (k <= 0 || pieceCount <= 0) return [];
  if (k >= pieceCount) return Array.from({ length: pieceCount }, (_, i) => i);
  const prefix = addressPrefix(address);
  if (!prefix) return [];
  const set: number[] = [];
  let x: Buffer = Buffer.concat([prefix, infoHash]);
  while (set.length < k) {
    x = createHash('sha1').update(x).digest();
    for (let i = 0; i < 5 && set.length < k; i++) {
      const index = x.readUInt32BE(i * 4) % pieceCount;
      if (!set.includes(index)) set.push(index);
    }
  }
  return set;
}

/** The masked bytes of an address: the /24 of an IPv4 address, the /48 of an IPv6 one; null for a name. */
function addressPrefix(address: string): Buffer | null {
  const a = normalizeAddress(address);
  if (isIP(a) === 4) {
    const b = Buffer.from(a.split('.').map(Number));
    b[3] = 0;
    return b;
  }
  if (isIP(a) === 6) return ipv6Bytes(a)?.subarray(0, 6) ?? null;
  return null;
}

/** The 16 bytes of an IPv6 address in text (with `::` and a trailing dotted IPv4 allowed), or null. */
export function ipv6Bytes(address: string): Buffer | null {
  let text = address.split('%')[0]!; // a zone (fe80::1%eth0) is not part of the address
  if (isIP(text) !== 6) return null;
  const groups: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const part = (s: string | undefined) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const front = part(head);
  const back = part(tail);
  groups.push(...front);
  if (tail !== undefined) for (let i = front.length + back.length; i < 8; i++) groups.push(0);
  groups.push(...back);
  if (groups.length !== 8) return null;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}
