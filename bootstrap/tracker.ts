/**
 * The bootstrap server's BitTorrent HTTP tracker, in three parts after bittorrent-tracker:
 * a pure request parser and answer encoder (network/wire/tracker-codec.ts), a swappable
 * swarm store (swarm-store.ts), and this request handler, which plain `http` or Express can
 * mount: `/announce` and `/scrape` (the wire format is in the codec's header).
 *
 * Nothing here logs per request: a tracker is hot. A bad request is answered with its
 * `failure reason` and handed to `onBadRequest`, which the server rate-limits.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeAddress } from '../network/util/addresses.js';
import {
  encodeAnnounceResponse, encodeFailure, encodeScrapeResponse, parseAnnounce, parseScrape, TrackerRequestError, MAX_NUMWANT,
  type AnnounceParams,
} from '../network/wire/tracker-codec.js';
import { MemorySwarmStore, type SwarmCounts, type SwarmStore } from './swarm-store.js';

/** The interval our tracker gives clients unless the server is told otherwise. */
export const DEFAULT_ANNOUNCE_INTERVAL_S = 60;

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
  private readonly minIntervalS: number;

  constructor(private readonly init: TrackerInit = {}) {
    this.store = init.store ?? new MemorySwarmStore();
    this.intervalS = init.intervalS ?? DEFAULT_ANNOUNCE_INTERVAL_S;
    this.minIntervalS = Math.max(1, Math.floor(this.intervalS / 2));
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
    const want = p.event === 'stopped' ? 0 : p.numwant;
    const counts = this.store.counts(p.infoHash);
    const picked: Array<{ host: string; port: number; peerId?: Buffer }> = [];
    // A client that says left=0 may be a seed (it wants leechers, so they come first) or may
    // only have a magnet (aria2c announces so): seeds follow, never left out.
    const leechersFirst = p.left === 0 ? this.store.peers(p.infoHash, want, key, true, now) : [];
    const taken = new Set(leechersFirst.map((x) => `${x.host}|${x.port}`));
    picked.push(...leechersFirst);
    // Registry seeds next: they are why a real client comes to this tracker at all.
    const extras = this.init.extraPeers?.(p.infoHash, MAX_NUMWANT, { remote: p.source, local: localAddress }) ?? [];
    for (const e of extras) {
      const k = `${e.host}|${e.port}`;
      const announced = this.store.has(p.infoHash, k);
      if (!announced) counts.complete++;
      if (announced || k === key || picked.length >= want) continue;
      picked.push(e);
      taken.add(k);
    }
    for (const peer of this.store.peers(p.infoHash, want - picked.length + taken.size, key, false, now)) {
      if (picked.length >= want) break;
      if (!taken.has(`${peer.host}|${peer.port}`)) picked.push(peer);
    }
    const body = encodeAnnounceResponse({
      complete: counts.complete,
      incomplete: counts.incomplete,
      interval: this.intervalS,
      minInterval: this.minIntervalS,
      peers: picked,
      compact: p.compact,
      noPeerId: p.noPeerId,
    });
    return { status: 200, body };
  }

  scrape(rawQuery: string, remoteAddress: string, localAddress = ''): TrackerAnswer {
    let hashes: string[];
    try {
      hashes = parseScrape(rawQuery);
    } catch (err) {
      return this.failure(err, remoteAddress);
    }
    const via = { remote: normalizeAddress(remoteAddress), local: localAddress };
    const files = new Map<string, SwarmCounts>();
    for (const h of hashes) {
      if (files.has(h)) continue;
      const c = this.store.counts(h);
      for (const e of this.init.extraPeers?.(h, MAX_NUMWANT, via) ?? []) if (!this.store.has(h, `${e.host}|${e.port}`)) c.complete++;
      files.set(h, c);
    }
    return { status: 200, body: encodeScrapeResponse(files) };
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
    return { status: err.status, body: encodeFailure(err.message) };
  }
}
