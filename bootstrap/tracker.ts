/**
 * The bootstrap server's BitTorrent HTTP tracker, in three parts after bittorrent-tracker:
 * a pure request parser (raw query string in, checked parameters out), a swappable swarm
 * store, and a request handler that plain `http` or Express can mount.
 *
 *   GET /announce?info_hash=<20 bytes %-escaped>&peer_id=<20 bytes>&port=N[&uploaded=N]
 *       [&downloaded=N][&left=N][&event=started|completed|stopped][&compact=0|1][&numwant=N]
 *       [&no_peer_id=1][&ip=<addr>, honoured from loopback only]
 *     → d8:completei..e10:incompletei..e8:intervali..e12:min intervali..e5:peers<6n bytes>
 *       [6:peers6<18n bytes>]e     (BEP 3, 23 compact, 7 peers6; compact=0 gives dicts)
 *   GET /scrape?info_hash=..[&info_hash=..]   (BEP 48; at least one, at most MAX_SCRAPE)
 *     → d5:filesd20:<hash>d8:completei..e10:downloadedi..e10:incompletei..eeee
 *   errors → 4xx/503 with d14:failure reason..e
 *
 * The query is parsed by hand: a generic parser would decode info_hash as UTF-8 text and
 * mangle every byte ≥ 0x80. Hard limits at parse time: query length, parameter count,
 * exact 20-byte hashes, numwant capped. Nothing here logs per request: a tracker is hot.
 */
import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import bencode from 'bencode';
import { isLoopbackAddress, normalizeAddress } from '../network/util/addresses.js';

export const MAX_QUERY_BYTES = 4096;
export const MAX_PARAMS = 64;
export const MAX_SCRAPE = 64;
export const DEFAULT_NUMWANT = 50;
export const MAX_NUMWANT = 200;
export const DEFAULT_INTERVAL_S = 60;
export const DEFAULT_MAX_TORRENTS = 100_000;
export const DEFAULT_MAX_PEERS_PER_TORRENT = 1000;
export const DEFAULT_MAX_PEERS_PER_ADDRESS = 1000;

/** What the client did wrong, as a `failure reason`; `status` is the HTTP status. */
export class TrackerRequestError extends Error {
  override name = 'TrackerRequestError';
  constructor(message: string, readonly status = 400) {
    super(message);
  }
}

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | '';

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

// ---- parser ------------------------------------------------------------------------------

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

// ---- swarm store -----------------------------------------------------------------------

export interface SwarmPeer {
  /** `host|port`: what a peer is dialled by, and all an announce can speak for. */
  key: string;
  host: string;
  port: number;
  peerId: Buffer;
  seeder: boolean;
  source: string;
  expiresAt: number;
}

export interface SwarmCounts {
  complete: number;
  incomplete: number;
  downloaded: number;
}

/** Where announced peers live; swap in another (shared, persistent) store behind this. */
export interface SwarmStore {
  /** Apply an announce; throws TrackerRequestError (503) past a bound. */
  announce(p: AnnounceParams, expiresAt: number): void;
  /** Up to `want` live peers of a torrent, other than `exceptKey`; seeders left out when `noSeeders`. */
  peers(infoHash: string, want: number, exceptKey: string, noSeeders: boolean, now: number): SwarmPeer[];
  has(infoHash: string, key: string): boolean;
  counts(infoHash: string): SwarmCounts;
  /** Drop peers that stopped announcing; returns how many. */
  expire(now: number): number;
}

/** A peer as the store keeps it: also where it sits in its swarm's `slots`. */
interface StoredPeer extends SwarmPeer {
  slot: number;
}

interface Swarm {
  /** Insertion order is last-announce order: the first entry is the stalest. */
  peers: Map<string, StoredPeer>;
  /** The same peers in an array, so an answer starts at a random one without walking there. */
  slots: StoredPeer[];
  complete: number;
  downloaded: number;
}

export interface MemorySwarmStoreInit {
  maxTorrents?: number;
  maxPeersPerTorrent?: number;
  maxPeersPerAddress?: number;
}

export class MemorySwarmStore implements SwarmStore {
  private readonly swarms = new Map<string, Swarm>();
  private readonly perAddress = new Map<string, number>();
  private readonly maxTorrents: number;
  private readonly maxPeersPerTorrent: number;
  private readonly maxPeersPerAddress: number;

  constructor(init: MemorySwarmStoreInit = {}) {
    this.maxTorrents = init.maxTorrents ?? DEFAULT_MAX_TORRENTS;
    this.maxPeersPerTorrent = init.maxPeersPerTorrent ?? DEFAULT_MAX_PEERS_PER_TORRENT;
    this.maxPeersPerAddress = init.maxPeersPerAddress ?? DEFAULT_MAX_PEERS_PER_ADDRESS;
  }

  get torrents(): number {
    return this.swarms.size;
  }

  announce(p: AnnounceParams, expiresAt: number): void {
    const key = `${p.host}|${p.port}`;
    let swarm = this.swarms.get(p.infoHash);
    if (p.event === 'stopped') {
      if (swarm) this.drop(p.infoHash, swarm, key);
      return;
    }
    if (!swarm) {
      if (this.swarms.size >= this.maxTorrents) throw new TrackerRequestError('the tracker tracks as many torrents as it can', 503);
      swarm = { peers: new Map(), slots: [], complete: 0, downloaded: 0 };
      this.swarms.set(p.infoHash, swarm);
    }
    const seeder = p.left === 0;
    const old = swarm.peers.get(key);
    if (old) {
      swarm.peers.delete(key); // re-inserted below: keeps the map in staleness order
      if (old.seeder !== seeder) swarm.complete += seeder ? 1 : -1;
      if (p.event === 'completed' && !old.seeder) swarm.downloaded++;
      old.peerId = p.peerId;
      old.seeder = seeder;
      old.expiresAt = expiresAt;
      swarm.peers.set(key, old);
      return;
    }
    const fromHere = this.perAddress.get(p.source) ?? 0;
    if (fromHere >= this.maxPeersPerAddress) {
      if (swarm.peers.size === 0) this.swarms.delete(p.infoHash);
      throw new TrackerRequestError('too many announces from this address', 503);
    }
    if (swarm.peers.size >= this.maxPeersPerTorrent) {
      const stalest = swarm.peers.keys().next().value;
      if (stalest !== undefined) this.drop(p.infoHash, swarm, stalest);
      if (!this.swarms.has(p.infoHash)) this.swarms.set(p.infoHash, swarm);
    }
    const peer: StoredPeer = { key, host: p.host, port: p.port, peerId: p.peerId, seeder, source: p.source, expiresAt, slot: swarm.slots.length };
    swarm.peers.set(key, peer);
    swarm.slots.push(peer);
    this.perAddress.set(p.source, fromHere + 1);
    if (seeder) swarm.complete++;
    if (p.event === 'completed') swarm.downloaded++;
  }

  peers(infoHash: string, want: number, exceptKey: string, noSeeders: boolean, now: number): SwarmPeer[] {
    const swarm = this.swarms.get(infoHash);
    const out: SwarmPeer[] = [];
    if (!swarm || want <= 0) return out;
    // From a random starting point, so a large swarm hands different peers to each asker.
    const { slots } = swarm;
    const n = slots.length;
    const start = n > want ? Math.floor(Math.random() * n) : 0;
    for (let i = 0; i < n && out.length < want; i++) {
      const peer = slots[(start + i) % n]!;
      if (peer.key === exceptKey || peer.expiresAt <= now || (noSeeders && peer.seeder)) continue;
      out.push(peer);
    }
    return out;
  }

  has(infoHash: string, key: string): boolean {
    return this.swarms.get(infoHash)?.peers.has(key) ?? false;
  }

  counts(infoHash: string): SwarmCounts {
    const swarm = this.swarms.get(infoHash);
    if (!swarm) return { complete: 0, incomplete: 0, downloaded: 0 };
    return { complete: swarm.complete, incomplete: swarm.peers.size - swarm.complete, downloaded: swarm.downloaded };
  }

  expire(now: number): number {
    let dropped = 0;
    for (const [infoHash, swarm] of this.swarms) {
      for (const peer of swarm.peers.values()) {
        if (peer.expiresAt > now) continue;
        this.drop(infoHash, swarm, peer.key);
        dropped++;
      }
    }
    return dropped;
  }

  private drop(infoHash: string, swarm: Swarm, key: string): void {
    const peer = swarm.peers.get(key);
    if (!peer) return;
    swarm.peers.delete(key);
    const last = swarm.slots.pop()!;
    if (last !== peer) {
      swarm.slots[peer.slot] = last;
      last.slot = peer.slot;
    }
    if (peer.seeder) swarm.complete--;
    const n = (this.perAddress.get(peer.source) ?? 1) - 1;
    if (n > 0) this.perAddress.set(peer.source, n);
    else this.perAddress.delete(peer.source);
    // Keep `downloaded` only while the torrent has peers: an empty swarm costs nothing.
    if (swarm.peers.size === 0) this.swarms.delete(infoHash);
  }
}

// ---- responses and the handler -----------------------------------------------------------

export interface TrackerInit {
  store?: SwarmStore;
  intervalS?: number;
  /**
   * Seeds known elsewhere (the node registry) for an infohash, at most `limit`; `via` is the
   * asker's address and the server address it reached, for hosts that depend on the asker.
   */
  extraPeers?: (infoHash: string, limit: number, via: { remote: string; local: string }) => Array<{ host: string; port: number }>;
  /** A bad request, for the server's rate-limited warning. */
  onBadRequest?: (remote: string, reason: string) => void;
}

export interface TrackerAnswer {
  status: number;
  body: Buffer;
}

export class Tracker {
  readonly store: SwarmStore;
  readonly intervalS: number;

  constructor(private readonly init: TrackerInit = {}) {
    this.store = init.store ?? new MemorySwarmStore();
    this.intervalS = init.intervalS ?? DEFAULT_INTERVAL_S;
  }

  /** Announced peers are forgotten after two missed intervals. */
  get peerTtlMs(): number {
    return 2 * this.intervalS * 1000 + 5000;
  }

  announce(rawQuery: string, remoteAddress: string, localAddress = '', now = Date.now()): TrackerAnswer {
    let p: AnnounceParams;
    try {
      p = parseAnnounce(rawQuery, remoteAddress);
      this.store.announce(p, now + this.peerTtlMs);
    } catch (err) {
      return this.failure(err, remoteAddress);
    }
    const key = `${p.host}|${p.port}`;
    const noSeeders = p.left === 0;
    const want = p.event === 'stopped' ? 0 : p.numwant;
    const counts = this.store.counts(p.infoHash);
    const picked: Array<{ host: string; port: number; peerId?: Buffer }> = [];
    // Registry seeds first: they are why a real client comes to this tracker at all.
    const extras = this.init.extraPeers?.(p.infoHash, MAX_NUMWANT, { remote: p.source, local: localAddress }) ?? [];
    for (const e of extras) {
      const k = `${e.host}|${e.port}`;
      const announced = this.store.has(p.infoHash, k);
      if (!announced) counts.complete++;
      if (announced || k === key || noSeeders || picked.length >= want) continue;
      picked.push(e);
    }
    for (const peer of this.store.peers(p.infoHash, want - picked.length, key, noSeeders, now)) picked.push(peer);
    const answer: Record<string, unknown> = {
      complete: counts.complete,
      incomplete: counts.incomplete,
      interval: this.intervalS,
      'min interval': Math.max(1, Math.floor(this.intervalS / 2)),
    };
    if (p.compact) {
      const v4 = picked.filter((x) => isIP(x.host) === 4);
      const v6 = picked.filter((x) => isIP(x.host) === 6);
      answer.peers = compactPeers(v4, 6);
      if (v6.length > 0) answer.peers6 = compactPeers(v6, 18);
    } else {
      answer.peers = picked.map((x) => (p.noPeerId || !x.peerId ? { ip: x.host, port: x.port } : { ip: x.host, 'peer id': x.peerId, port: x.port }));
    }
    return { status: 200, body: Buffer.from(bencode.encode(answer)) };
  }

  scrape(rawQuery: string, remoteAddress: string, localAddress = ''): TrackerAnswer {
    let hashes: string[];
    try {
      hashes = parseScrape(rawQuery);
    } catch (err) {
      return this.failure(err, remoteAddress);
    }
    // Keys are raw 20-byte hashes: sorted as bytes, written by hand, since a JS object key
    // would be encoded as UTF-8 text.
    const via = { remote: normalizeAddress(remoteAddress), local: localAddress };
    const entries = [...new Set(hashes)].sort().map((h) => {
      const c = this.store.counts(h);
      for (const e of this.init.extraPeers?.(h, MAX_NUMWANT, via) ?? []) if (!this.store.has(h, `${e.host}|${e.port}`)) c.complete++;
      return Buffer.concat([Buffer.from('20:'), Buffer.from(h, 'hex'), Buffer.from(bencode.encode(c))]);
    });
    return { status: 200, body: Buffer.concat([Buffer.from('d5:filesd'), ...entries, Buffer.from('ee')]) };
  }

  /** For `http.createServer` or Express (`app.get('/announce', tracker.handler)`): routes on the path. */
  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const raw = q < 0 ? '' : url.slice(q + 1);
    const remote = req.socket.remoteAddress ?? '';
    const local = req.socket.localAddress ?? '';
    let answer: TrackerAnswer;
    if (path.endsWith('/announce')) answer = this.announce(raw, remote, local);
    else if (path.endsWith('/scrape')) answer = this.scrape(raw, remote, local);
    else answer = this.failure(new TrackerRequestError('not a tracker path', 404), remote);
    res.writeHead(answer.status, { 'content-type': 'text/plain', 'content-length': answer.body.length, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  };

  private failure(err: unknown, remote: string): TrackerAnswer {
    if (!(err instanceof TrackerRequestError)) throw err;
    this.init.onBadRequest?.(remote, err.message);
    return { status: err.status, body: Buffer.from(bencode.encode({ 'failure reason': err.message })) };
  }
}

function compactPeers(peers: Array<{ host: string; port: number }>, size: 6 | 18): Buffer {
  const out = Buffer.allocUnsafe(peers.length * size);
  let o = 0;
  for (const { host, port } of peers) {
    if (size === 6) {
      for (const part of host.split('.')) out[o++] = Number(part);
    } else {
      o += writeIPv6(host, out, o);
    }
    out.writeUInt16BE(port, o);
    o += 2;
  }
  return out;
}

/** Write an IPv6 literal's 16 bytes (`::` compression and a trailing dotted quad included). */
function writeIPv6(host: string, out: Buffer, at: number): number {
  let text = host.split('%')[0]!;
  const tail: number[] = [];
  const quad = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    tail.push((Number(quad[2]) << 8) | Number(quad[3]), (Number(quad[4]) << 8) | Number(quad[5]));
    text = quad[1]!.endsWith('::') ? quad[1]! : quad[1]!.slice(0, -1);
  }
  const gap = text.indexOf('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const head = parse(gap < 0 ? text : text.slice(0, gap));
  const rest = gap < 0 ? [] : parse(text.slice(gap + 2));
  const zeros = gap < 0 ? 0 : 8 - head.length - rest.length - tail.length;
  const groups = [...head, ...new Array<number>(Math.max(0, zeros)).fill(0), ...rest, ...tail];
  for (let g = 0; g < 8; g++) out.writeUInt16BE(groups[g] ?? 0, at + 2 * g);
  return 16;
}
