/**
 * Every tracker announce this node makes, one TrackerClient per torrent: a shared file is
 * announced to the node's trackers as a seed (left = 0), a download to its own trackers (its
 * metainfo's, its magnet's, the bootstrap server's and the node's) with its progress, and
 * the peers they name go to that download's swarm. Stopping a torrent's announces tells
 * those trackers `stopped` in the background.
 */
import type { Logger } from '../util/log.js';
import type { Metainfo } from '../metainfo/metainfo.js';
import { TrackerClient, type AnnounceRequest, type TrackerStats } from './announce.js';

export interface AnnouncerInit {
  peerId: Buffer;
  /** Our peer port, known once the server listens. */
  port(): number;
  log: Logger;
  /** Headers for an announce to a tracker (a private swarm's bootstrap tracker wants its HMAC). */
  headers?: AnnounceRequest['headers'];
}

export class Announcer {
  private readonly clients = new Map<string, TrackerClient>();

  constructor(private readonly init: AnnouncerInit) {}

  has(infohash: string): boolean {
    return this.clients.has(infohash);
  }

  /**
   * Announce torrent `m` to `urls` (nothing if there are none, or it is announced already).
   * `stats` is asked at every announce; `onPeer` gets every peer a tracker names.
   */
  start(m: Metainfo, urls: string[], stats: () => TrackerStats, onPeer?: (p: { host: string; port: number }) => void): void {
    const h = m.infoHashHex;
    if (urls.length === 0 || this.clients.has(h)) return;
    const client = new TrackerClient({ urls, infoHash: m.infoHash, peerId: this.init.peerId, port: this.init.port(), logger: this.init.log, stats, headers: this.init.headers });
    if (onPeer) client.on('peer', (p) => onPeer(p));
    this.clients.set(h, client);
    client.start();
  }

  /** Tell the trackers of `infohash` that we have the whole file now. */
  complete(infohash: string): void {
    this.clients.get(infohash)?.complete();
  }

  /** Stop announcing `infohash`; resolves once its trackers heard `stopped` (or gave up). */
  stop(infohash: string): Promise<void> {
    const client = this.clients.get(infohash);
    this.clients.delete(infohash);
    return client ? client.stop() : Promise.resolve();
  }

  async stopAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.allSettled(all.map((c) => c.stop()));
  }
}
