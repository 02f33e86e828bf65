/**
 * From an infohash to a torrent: the metadata of a magnet link or a bare infohash. Every way
 * at once, the first answer wins: Shoal nodes answer the control protocol's `metainfo`, any
 * BitTorrent client answers metadata exchange (BEP 9). The known Shoal nodes are asked over
 * the control protocol (it costs them nothing); metadata exchange goes to the peers named
 * for this torrent: the hints (the magnet's `x.pe`, a search) and what one announce to each
 * of the magnet's trackers returns. The peers found on the way are handed on, for the
 * download itself.
 */
import type { Logger } from '../util/log.js';
import { fromInfo, type Metainfo } from '../metainfo/metainfo.js';
import { announce, type AnnounceRequest } from '../tracker/announce.js';
import { fetchMetadata } from '../swarm/metadata-fetch.js';
import type { TransportPolicy } from '../swarm/dial.js';
import type { PeerTimeouts } from '../swarm/peer.js';
import { NotFoundError } from '../errors.js';

type Endpoint = { host: string; port: number };

/** Announced as our `left` before the size is known: any positive value makes us a leecher, whom trackers give seeds. */
const UNKNOWN_LEFT = 16 * 1024;
/** How long metadata exchange gets, peers that hold the file but answer slowly included. */
export const METADATA_TIMEOUT_MS = 10_000;
/** How long the trackers of a magnet get to name peers. */
const TRACKER_TIMEOUT_MS = 5_000;

export interface ResolveInit {
  peerId: Buffer;
  /** Our peer port (trackers are told it). */
  port: number;
  /** Ask the Shoal nodes known (and `hint` first) for the metainfo over the control protocol. */
  askNodes(infohash: string, hint: Endpoint[]): Promise<Metainfo>;
  timeoutMs: number;
  timeouts: PeerTimeouts;
  /** How metadata peers are dialled (plain TCP when not given). */
  transport?: TransportPolicy;
  /** Headers of an announce to a given tracker (a private swarm's bootstrap tracker wants its HMAC). */
  trackerHeaders?: AnnounceRequest['headers'];
  log: Logger;
}

/**
 * The metainfo of `infohash` (its info dictionary only: tracker URLs a peer hands over are
 * its word, not covered by the infohash) and the peers heard of meanwhile. NotFoundError
 * when nothing answers within the timeout.
 */
export async function resolveMetainfo(
  infohash: string,
  hint: Endpoint[],
  trackers: string[],
  init: ResolveInit,
): Promise<{ metainfo: Metainfo; peers: Endpoint[] }> {
  const infoHash = Buffer.from(infohash, 'hex');
  const found: Endpoint[] = [...hint];
  const abort = new AbortController();
  const fromTrackers = Promise.allSettled(
    trackers.map((url) =>
      announce({ url, infoHash, peerId: init.peerId, port: init.port, uploaded: 0, downloaded: 0, left: UNKNOWN_LEFT, timeoutMs: TRACKER_TIMEOUT_MS, signal: abort.signal, headers: init.trackerHeaders }),
    ),
  ).then((results) => {
    for (const r of results) if (r.status === 'fulfilled') found.push(...r.value.peers);
  });
  const viaNodes = init.askNodes(infohash, hint).then((m) => fromInfo(m.info));
  // BEP 9 needs the trackers' peers too: ask once they answered (or gave up).
  const viaPeers = fromTrackers.then(async () => {
    const info = await fetchMetadata({
      infoHash,
      peerId: init.peerId,
      peers: found,
      timeoutMs: init.timeoutMs,
      timeouts: init.timeouts,
      transport: init.transport,
      log: init.log,
      signal: abort.signal,
    });
    return fromInfo(info);
  });
  try {
    const metainfo = await Promise.any([viaNodes, viaPeers]);
    return { metainfo, peers: found };
  } catch (err) {
    const reasons = err instanceof AggregateError ? err.errors.map((e: unknown) => (e as Error).message) : [(err as Error).message];
    throw new NotFoundError(reasons.join('; '));
  } finally {
    abort.abort();
    viaPeers.catch(() => {});
    viaNodes.catch(() => {});
  }
}
