/**
 * The BitTorrent HTTP tracker's wire format in both directions, pure: strings and bytes in,
 * checked values out, no sockets. A client (network/tracker) builds announce URLs and decodes
 * answers; a tracker (bootstrap/tracker.ts) parses queries and encodes answers.
 *
 *   GET /announce?info_hash=<20 bytes %-escaped>&peer_id=<20 bytes>&port=N[&uploaded=N]
 *       [&downloaded=N][&left=N][&event=started|completed|stopped][&compact=0|1][&numwant=N]
 *       [&no_peer_id=1][&ip=<addr>, honoured from loopback only]
 *     → d8:completei..e10:incompletei..e8:intervali..e12:min intervali..e5:peers<6n bytes>
 *       [6:peers6<18n bytes>]e   (BEP 3, 23 compact, 7 peers6; compact=0: a list of
 *       {ip, peer id?, port} dicts; a tracker may add `warning message`)
 *   GET /scrape?info_hash=..[&info_hash=..]   (BEP 48; at least one, at most MAX_SCRAPE)
 *     → d5:filesd20:<hash>d8:completei..e10:downloadedi..e10:incompletei..eeee
 *   errors → d14:failure reason..e (from our tracker with a 4xx or 503)
 *
 * Queries are parsed by hand: a generic parser would decode info_hash as UTF-8 text and
 * mangle every byte ≥ 0x80. Hard limits at parse time, both ways: query length, parameter
 * count, exact 20-byte hashes, numwant capped; an answer's peers counted and checked.
 */
import { isIP } from 'node:net';
import bencode from 'bencode';
import { isLoopbackAddress, normalizeAddress } from '../util/addresses.js';
import { decodeCompactPeers, encodeCompactPeers } from './compact-peers.js';

export const DEFAULT_NUMWANT = 50;
export const MAX_NUMWANT = 200;
export const MAX_QUERY_BYTES = 4096;
/** Parameters in one query: room for a full scrape and a few more, so that a scrape's own bound is what refuses one info_hash too many. */
export const MAX_PARAMS = 80;
export const MAX_SCRAPE = 64;
/** Interval a client assumes when a tracker sends none (30 min, the customary default). */
export const ASSUMED_INTERVAL_S = 1800;
/** Longest interval a client honours: a day, which also keeps setTimeout in range. */
export const MAX_INTERVAL_S = 24 * 3600;
/** Most peers a client takes from one answer. */
export const MAX_TRACKER_PEERS = 1000;

/** The tracker refused us (its `failure reason`) or answered something that is not a tracker answer. */
export class TrackerError extends Error {
  override name = 'TrackerError';
}

/** What a client did wrong, as a `failure reason`; `status` is the HTTP status. */
export class TrackerRequestError extends Error {
  override name = 'TrackerRequestError';
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

// ---- client side: the query we send, the answer we read -----------------------------------

/** One announce as a client sends it. */
export interface AnnounceQuery {
  /** The tracker's announce URL; it may carry a query of its own (a passkey). */
  url: string;
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  event?: 'started' | 'completed' | 'stopped';
  numwant?: number;
}

export interface AnnounceResult {
  /** Seconds until the tracker wants to hear from us again. */
  interval: number;
  minInterval?: number;
  complete?: number;
  incomplete?: number;
  peers: Array<{ host: string; port: number }>;
  warning?: string;
}

/** Percent-encode every byte that is not unreserved: raw binary, not UTF-8 of a string. */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function announceUrl(req: AnnounceQuery): string {
  if (req.infoHash.length !== 20 || req.peerId.length !== 20) throw new TypeError('info_hash and peer_id must be 20 bytes');
  const params = [
    `info_hash=${percentEncodeBytes(req.infoHash)}`,
    `peer_id=${percentEncodeBytes(req.peerId)}`,
    `port=${req.port}`,
    `uploaded=${Math.max(0, Math.floor(req.uploaded))}`,
    `downloaded=${Math.max(0, Math.floor(req.downloaded))}`,
    `left=${Math.max(0, Math.floor(req.left))}`,
    'compact=1',
    `numwant=${req.numwant ?? DEFAULT_NUMWANT}`,
  ];
  if (req.event) params.push(`event=${req.event}`);
  // A tracker URL may carry its own query (a passkey): extend it, keep any fragment out.
  const base = req.url.split('#')[0]!;
  return base + (base.includes('?') ? '&' : '?') + params.join('&');
}

/** Decode a tracker's answer (`status`: its HTTP status). Each peer it names is checked before anyone dials it. */
export function parseAnnounceResponse(body: Buffer, status = 200): AnnounceResult {
  let decoded: unknown;
  try {
    decoded = bencode.decode(body);
  } catch {
    decoded = undefined;
  }
  if (!isDict(decoded)) {
    throw new TrackerError(status === 200 ? 'tracker answer is not a bencoded dictionary' : `tracker answered HTTP ${status}`);
  }
  const failure = decoded['failure reason'];
  if (failure !== undefined) throw new TrackerError(text(failure, 1024) ?? 'tracker failed without a reason');
  if (status !== 200) throw new TrackerError(`tracker answered HTTP ${status}`);
  const interval = count(decoded.interval);
  const minInterval = count(decoded['min interval']);
  const result: AnnounceResult = {
    interval: Math.min(MAX_INTERVAL_S, interval && interval > 0 ? interval : ASSUMED_INTERVAL_S),
    peers: [],
  };
  if (minInterval !== undefined) result.minInterval = Math.min(MAX_INTERVAL_S, minInterval);
  const complete = count(decoded.complete);
  const incomplete = count(decoded.incomplete);
  if (complete !== undefined) result.complete = complete;
  if (incomplete !== undefined) result.incomplete = incomplete;
  const warning = text(decoded['warning message'], 1024);
  if (warning !== undefined) result.warning = warning;
  const seen = new Set<string>();
  const add = (host: string, port: number) => {
    const key = `${host}|${port}`;
    if (port < 1 || port > 65535 || seen.has(key) || result.peers.length >= MAX_TRACKER_PEERS) return;
    seen.add(key);
    result.peers.push({ host, port });
  };
  const peers = decoded.peers;
  if (peers instanceof Uint8Array) {
    for (const p of decodeCompactPeers(peers, 6)) add(p.host, p.port);
  } else if (Array.isArray(peers)) {
    for (const p of peers) {
      if (!isDict(p)) continue;
      const host = text(p.ip, 255);
      const port = count(p.port);
      if (host !== undefined && port !== undefined && isIP(host) !== 0) add(host.toLowerCase(), port);
    }
  }
  const peers6 = decoded.peers6;
  if (peers6 instanceof Uint8Array) for (const p of decodeCompactPeers(peers6, 18)) add(p.host, p.port);
  return result;
}

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function text(v: unknown, max: number): string | undefined {
  if (!(v instanceof Uint8Array)) return undefined;
  return Buffer.from(v.subarray(0, max)).toString('utf8');
}

// ---- server side: the query we read, the answer we send -----------------------------------

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | '';

/** One announce as a tracker received it, checked. */
export interface AnnounceParams {
  /** 40 lower-case hex digits. */
  infoHash: string;
  peerId: Buffer;
  /** Where peers dial it: the request's source address (or `ip`, from loopback only). */
  host: string;
  port: number;
  /** The socket's address, for the per-address bound. */
  source: string;
  uploaded: number;
  downloaded: number;
  left: number;
  event: AnnounceEvent;
  numwant: number;
  compact: boolean;
  noPeerId: boolean;
}

/** Percent-decode to raw bytes; '+' is a space as in any form query. Null when malformed. */
export function percentDecode(s: string): Buffer | null {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(s.charCodeAt(i + 1));
      const lo = hexValue(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return null;
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else if (c === 0x2b) out[n++] = 0x20;
    else if (c < 0x80) out[n++] = c;
    else return null; // raw non-ASCII in a query is not something an honest client sends
  }
  return out.subarray(0, n);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Split a raw query into (key, raw value) pairs, with the length and count limits. */
function splitQuery(raw: string): Array<[string, string]> {
  if (raw.length > MAX_QUERY_BYTES) throw new TrackerRequestError(`query longer than ${MAX_QUERY_BYTES} bytes`);
  const pairs: Array<[string, string]> = [];
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf('&', start);
    if (end < 0) end = raw.length;
    if (end > start) {
      if (pairs.length >= MAX_PARAMS) throw new TrackerRequestError(`more than ${MAX_PARAMS} query parameters`);
      const eq = raw.indexOf('=', start);
      const part = eq >= 0 && eq < end;
      pairs.push([raw.slice(start, part ? eq : end), part ? raw.slice(eq + 1, end) : '']);
    }
    start = end + 1;
  }
  return pairs;
}

function bytes20(value: string, what: string): Buffer {
  const b = percentDecode(value);
  if (!b || b.length !== 20) throw new TrackerRequestError(`${what} must be 20 bytes, percent-encoded`);
  return b;
}

function integer(value: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d{1,16}$/.test(value)) throw new TrackerRequestError(`${what} must be a non-negative integer`);
  const n = Number(value);
  if (n > max) throw new TrackerRequestError(`${what} must be at most ${max}`);
  return n;
}

/** Check an announce; throws TrackerRequestError with a reason the client will show. */
export function parseAnnounce(rawQuery: string, remoteAddress: string): AnnounceParams {
  const source = normalizeAddress(remoteAddress);
  let infoHash: Buffer | undefined;
  let peerId: Buffer | undefined;
  let port = -1;
  let uploaded = 0;
  let downloaded = 0;
  let left = -1;
  let event: AnnounceEvent = '';
  let numwant = DEFAULT_NUMWANT;
  let compact = true;
  let noPeerId = false;
  let ip: string | undefined;
  for (const [key, value] of splitQuery(rawQuery)) {
    switch (key) {
      case 'info_hash':
        infoHash = bytes20(value, 'info_hash');
        break;
      case 'peer_id':
        peerId = bytes20(value, 'peer_id');
        break;
      case 'port':
        port = integer(value, 'port', 65535);
        break;
      case 'uploaded':
        uploaded = integer(value, 'uploaded');
        break;
      case 'downloaded':
        downloaded = integer(value, 'downloaded');
        break;
      case 'left':
        left = integer(value, 'left');
        break;
      case 'numwant':
        numwant = Math.min(MAX_NUMWANT, integer(value, 'numwant'));
        break;
      case 'compact':
        compact = value !== '0';
        break;
      case 'no_peer_id':
        noPeerId = value === '1';
        break;
      case 'event':
        if (value === 'started' || value === 'completed' || value === 'stopped' || value === '' || value === 'empty') event = value === 'empty' ? '' : value;
        else throw new TrackerRequestError('event must be started, completed or stopped');
        break;
      case 'ip':
        ip = percentDecode(value)?.toString('latin1');
        break;
    }
  }
  if (!infoHash) throw new TrackerRequestError('missing info_hash');
  if (!peerId) throw new TrackerRequestError('missing peer_id');
  if (port < 1) throw new TrackerRequestError('missing or invalid port (1..65535)');
  // `ip` lets a client name another address: only the server's own machine may (a local
  // node advertising its LAN address); from elsewhere it would point swarms at strangers.
  let host = source;
  if (ip !== undefined && isLoopbackAddress(source) && isIP(ip) !== 0) host = normalizeAddress(ip);
  return { infoHash: infoHash.toString('hex'), peerId, host, port, source, uploaded, downloaded, left: left < 0 ? 1 : left, event, numwant, compact, noPeerId };
}

/** The info hashes of a scrape (hex): at least one (no full scrapes), at most MAX_SCRAPE. */
export function parseScrape(rawQuery: string): string[] {
  const hashes: string[] = [];
  for (const [key, value] of splitQuery(rawQuery)) {
    if (key !== 'info_hash') continue;
    if (hashes.length >= MAX_SCRAPE) throw new TrackerRequestError(`at most ${MAX_SCRAPE} info_hash per scrape`);
    hashes.push(bytes20(value, 'info_hash').toString('hex'));
  }
  if (hashes.length === 0) throw new TrackerRequestError('missing info_hash (full scrapes are not served)');
  return hashes;
}

/** What a tracker answers an announce with. */
export interface AnnounceAnswer {
  complete: number;
  incomplete: number;
  interval: number;
  minInterval: number;
  peers: Array<{ host: string; port: number; peerId?: Buffer }>;
  /** The asker's `compact` and `no_peer_id`. */
  compact: boolean;
  noPeerId: boolean;
}

export function encodeAnnounceResponse(a: AnnounceAnswer): Buffer {
  const answer: Record<string, unknown> = { complete: a.complete, incomplete: a.incomplete, interval: a.interval, 'min interval': a.minInterval };
  if (a.compact) {
    answer.peers = encodeCompactPeers(a.peers.filter((x) => isIP(x.host) === 4), 6);
    const v6 = a.peers.filter((x) => isIP(x.host) === 6);
    if (v6.length > 0) answer.peers6 = encodeCompactPeers(v6, 18);
  } else {
    answer.peers = a.peers.map((x) => (a.noPeerId || !x.peerId ? { ip: x.host, port: x.port } : { ip: x.host, 'peer id': x.peerId, port: x.port }));
  }
  return Buffer.from(bencode.encode(answer));
}

/** `files`: hex infohash → its counts. */
export function encodeScrapeResponse(files: ReadonlyMap<string, { complete: number; incomplete: number; downloaded: number }>): Buffer {
  // Keys are raw 20-byte hashes, sorted as bytes (as their hex is), written by hand, since a
  // JS object key would be encoded as UTF-8 text.
  const entries = [...files.keys()].sort().map((h) => {
    const { complete, incomplete, downloaded } = files.get(h)!;
    return Buffer.concat([Buffer.from('20:'), Buffer.from(h, 'hex'), Buffer.from(bencode.encode({ complete, incomplete, downloaded }))]);
  });
  return Buffer.concat([Buffer.from('d5:filesd'), ...entries, Buffer.from('ee')]);
}

export function encodeFailure(reason: string): Buffer {
  return Buffer.from(bencode.encode({ 'failure reason': reason }));
}
