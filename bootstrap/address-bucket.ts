/**
 * The share an address counts in, for every per-address bound of the bootstrap server (the
 * registry's nodes, files and bytes; the tracker's peers; request rates): IPv4 as it is, IPv6
 * by its /64 (what one host or one customer gets: a /64 holds more addresses than anyone
 * could register), and this machine's loopback as a whole (every 127.x.y.z and ::1 are one
 * host).
 */
import { isLoopbackAddress, normalizeAddress } from '../network/util/addresses.js';

export const LOOPBACK_BUCKET = 'loopback';

export function addressBucket(address: string): string {
  const a = normalizeAddress(address);
  if (isLoopbackAddress(a)) return LOOPBACK_BUCKET;
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
