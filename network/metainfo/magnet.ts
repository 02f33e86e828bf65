/**
 * Magnet links (BEP 9): `magnet:?xt=urn:btih:<infohash>&dn=<name>&tr=<tracker>&x.pe=<host:port>`.
 * The infohash is 40 hex digits or 32 base32 characters. We keep the HTTP(S) trackers, the
 * only kind Shoal speaks; udp:// and other trackers are dropped rather than refused, since
 * most magnets in the wild carry some and are still good links. Other keys are ignored.
 */
import net from 'node:net';
import type { Metainfo } from './metainfo.js';

export interface Magnet {
  /** 40 lower-case hex digits. */
  infoHash: string;
  name?: string;
  trackers: string[];
  peers: Array<{ host: string; port: number }>;
}

export class MagnetError extends Error {
  override name = 'MagnetError';
}

/** Bounds, so a pasted link cannot make us keep arbitrarily much. */
const MAX_MAGNET_LENGTH = 64 * 1024;
const MAX_TRACKERS = 100;
const MAX_PEERS = 200;
const MAX_NAME = 1024;

export function parseMagnet(uri: string): Magnet {
  const text = uri.trim();
  if (text.length > MAX_MAGNET_LENGTH) throw new MagnetError(`bad magnet link: longer than ${MAX_MAGNET_LENGTH} characters`);
  const m = /^magnet:\?(.*)$/is.exec(text);
  if (!m) throw new MagnetError('bad magnet link: must start with "magnet:?"');
  let infoHash: string | undefined;
  let name: string | undefined;
  const trackers: string[] = [];
  const peers: Array<{ host: string; port: number }> = [];
  const otherXt: string[] = [];
  for (const part of m[1]!.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    const value = decode(eq < 0 ? '' : part.slice(eq + 1), key);
    // Keys may carry a ".N" suffix when repeated (xt.1, tr.2): BEP 9 allows both forms.
    const base = key === 'x.pe' ? key : key.replace(/\.\d+$/, '');
    if (base === 'xt') {
      const btih = /^urn:btih:(.*)$/i.exec(value);
      if (!btih) {
        otherXt.push(value);
        continue;
      }
      const h = parseInfoHash(btih[1]!);
      if (infoHash !== undefined && infoHash !== h) throw new MagnetError('bad magnet link: two different btih infohashes');
      infoHash = h;
    } else if (base === 'dn') {
      if (value.length > MAX_NAME) throw new MagnetError(`bad magnet link: dn longer than ${MAX_NAME} characters`);
      if (value !== '') name = value;
    } else if (base === 'tr') {
      if (/^https?:\/\//i.test(value) && URL.canParse(value) && !trackers.includes(value) && trackers.length < MAX_TRACKERS) trackers.push(value);
    } else if (base === 'x.pe') {
      const peer = parsePeer(value);
      if (!peers.some((p) => p.host === peer.host && p.port === peer.port) && peers.length < MAX_PEERS) peers.push(peer);
    }
  }
  if (infoHash === undefined) {
    const why = otherXt.length > 0 ? ` (only ${otherXt.map((x) => x.split(':').slice(0, 2).join(':')).join(', ')}, which Shoal does not speak)` : '';
    throw new MagnetError(`bad magnet link: no xt=urn:btih: infohash${why}`);
  }
  return { infoHash, name, trackers, peers };
}

/** A magnet link for a metainfo: infohash, name, exact length, its trackers, and optional peers. */
export function makeMagnet(m: Metainfo, opts: { peers?: Array<{ host: string; port: number }> } = {}): string {
  const parts = [`xt=urn:btih:${m.infoHashHex}`, `dn=${encodeURIComponent(m.name)}`, `xl=${m.length}`];
  for (const url of m.announce) parts.push(`tr=${encodeURIComponent(url)}`);
  for (const p of opts.peers ?? []) {
    const host = net.isIPv6(p.host) ? `[${p.host}]` : p.host;
    parts.push(`x.pe=${encodeURIComponent(`${host}:${p.port}`)}`);
  }
  return `magnet:?${parts.join('&')}`;
}

function decode(raw: string, key: string): string {
  try {
    // '+' means a space in a form-encoded dn; in a URL or address it would be literal.
    return decodeURIComponent(key.startsWith('dn') ? raw.replace(/\+/g, ' ') : raw);
  } catch {
    throw new MagnetError(`bad magnet link: bad percent-encoding in ${key}`);
  }
}

function parseInfoHash(s: string): string {
  if (/^[0-9a-f]{40}$/i.test(s)) return s.toLowerCase();
  if (/^[a-z2-7]{32}$/i.test(s)) return base32ToHex(s.toUpperCase());
  throw new MagnetError(`bad magnet link: btih must be 40 hex or 32 base32 characters, got ${JSON.stringify(s.slice(0, 64))}`);
}

/** RFC 4648 base32, no padding: 32 characters are exactly 160 bits. */
function base32ToHex(s: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out = Buffer.alloc(20);
  let bits = 0;
  let acc = 0;
  let i = 0;
  for (const c of s) {
    acc = ((acc << 5) | alphabet.indexOf(c)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[i++] = (acc >>> bits) & 0xff;
    }
  }
  return out.toString('hex');
}

/** `host:port`, `1.2.3.4:port` or `[v6]:port`. */
function parsePeer(s: string): { host: string; port: number } {
  const bad = () => new MagnetError(`bad magnet link: x.pe must be host:port or [ipv6]:port, got ${JSON.stringify(s.slice(0, 300))}`);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) throw bad();
  const port = Number(m[3]);
  const v6 = m[1];
  const name = m[2] ?? '';
  if (port < 1 || port > 65535) throw bad();
  if (v6 !== undefined) {
    if (!net.isIPv6(v6)) throw bad();
    return { host: v6.toLowerCase(), port };
  }
  if (!net.isIPv4(name) && !isHostname(name)) throw bad();
  return { host: name, port };
}

function isHostname(s: string): boolean {
  return s.length <= 253 && /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(s);
}
