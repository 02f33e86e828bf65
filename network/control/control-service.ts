/**
 * What this node answers on the control protocol (the server side is control-server.ts):
 * `search`, `list`, `metainfo`, `peers`, and the `subscribe` streams that carry every
 * change of the library to the nodes watching us. Every answer is bounded (MAX_FILES,
 * MAX_PEERS, names cut to 64 characters) and says nothing the node would not tell anyone.
 */
import type { Logger } from '../util/log.js';
import { encodeTorrent, type Metainfo } from '../metainfo/metainfo.js';
import { MAX_FILES, MAX_PEERS, type ControlRequest, type ControlResponse, type FileEntry } from '../wire/control-codec.js';
import type { PeerRegistry } from '../discovery/peer-registry.js';
import type { Library, SharedFile } from '../library/library.js';
import type { ControlHandler, Subscriber } from './control-server.js';
import { FairShare } from '../util/fair-share.js';

/** Nodes that may hold a `subscribe` stream to this one at once. */
export const MAX_SUBSCRIBERS = 64;
/** Of which one address (an IPv6 /64) may hold this many. */
export const MAX_SUBSCRIBERS_PER_ADDRESS = 16;

export interface ControlServiceInit {
  self: () => { id: string; name: string };
  library: Library;
  registry: PeerRegistry;
  /** The metainfo of a shared file or a download (any state). */
  metainfo(infohash: string): Metainfo | undefined;
  log: Logger;
}

export function describeFile(f: SharedFile): FileEntry {
  return { name: f.name, size: f.size, infohash: f.metainfo.infoHashHex };
}

export class ControlService implements ControlHandler {
  /** Shared fairly: subscribers that never read cannot keep other addresses out (see FairShare). */
  private readonly subscribers = new FairShare<Subscriber>(MAX_SUBSCRIBERS, MAX_SUBSCRIBERS_PER_ADDRESS, 'subscribers');

  constructor(private readonly init: ControlServiceInit) {}

  async handle(req: ControlRequest): Promise<ControlResponse> {
    const { library } = this.init;
    switch (req.type) {
      case 'search': {
        const files = library.search(req.filename).map(describeFile);
        return files.length > 0 ? { type: 'FOUND', files } : { type: 'NOT_FOUND', files: [] };
      }
      case 'list':
        return { type: 'LIST', files: library.files().slice(0, MAX_FILES).map(describeFile) };
      case 'metainfo': {
        const m = this.init.metainfo(req.infohash);
        // A private torrent is told to nobody (BEP 27): its peers have it from its own trackers.
        if (!m || m.private) return { type: 'ERROR', error: `unknown infohash ${req.infohash}` };
        return { type: 'METAINFO', infohash: m.infoHashHex, torrent: encodeTorrent(m).toString('base64') };
      }
      case 'peers': {
        // Only peers that answered us: a sighting is a claim (anyone can make up ids and name
        // any address), and passing on claims would spread fakes through the network.
        const vouched = this.init.registry.list().filter((p) => p.reachable === 'yes' && !(p.sources.size === 1 && p.sources.has('peer')));
        const peers = vouched.slice(0, MAX_PEERS).map((p) => ({ id: p.id, name: p.name?.slice(0, 64), host: p.host, port: p.port }));
        return { type: 'PEERS', self: this.selfView(), peers };
      }
      case 'subscribe':
        return { type: 'ERROR', error: 'subscribe must be the last request on its connection' };
    }
  }

  subscribe(sub: Subscriber): { snapshot: ControlResponse; unsubscribe(): void } | { refused: string } {
    const admission = this.subscribers.admit(sub.address);
    if (!admission.ok) return { refused: `this node has no subscriber slot for you: ${admission.reason}` };
    if (admission.evict) {
      const old = admission.evict;
      this.subscribers.delete(old);
      this.init.log.info({ peer: old.who, for: sub.who }, 'ending a subscription: its address holds the most subscriber slots, and another address needs one');
      old.close('subscription ended: your address holds the most subscriber slots, and another address needs one');
    }
    this.subscribers.add(sub, sub.address);
    this.init.log.debug({ peer: sub.who }, 'subscriber joined');
    const files = this.init.library.files().slice(0, MAX_FILES).map(describeFile);
    return { snapshot: { type: 'SUBSCRIBED', self: this.selfView(), files }, unsubscribe: () => this.subscribers.delete(sub) };
  }

  /** Tell every subscriber that the library changed. */
  publish(event: 'file-added' | 'file-removed', f: SharedFile): void {
    for (const sub of this.subscribers.values()) sub.send({ type: 'EVENT', event, file: describeFile(f) });
  }

  private selfView(): { id: string; name: string } {
    const { id, name } = this.init.self();
    return { id, name: name.slice(0, 64) };
  }
}
