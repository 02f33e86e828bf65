/**
 * How the node's parts talk to each other, and to the node's own event stream: a peer that
 * comes up is offered to every running download and asked for its peers; a file added to the
 * library is announced to the trackers, told to subscribers and to the bootstrap index; a
 * watched pattern that matches starts a download; every download's events become the node's.
 * Node builds the parts and calls `wireParts` once; nothing else here keeps state.
 */
import type { Logger } from './util/log.js';
import { fromInfo } from './metainfo/metainfo.js';
import type { FileEntry } from './wire/control-codec.js';
import type { KnownPeer, PeerRegistry } from './discovery/peer-registry.js';
import type { NodeDiscovery } from './discovery/sources.js';
import type { Library } from './library/library.js';
import type { ControlService } from './control/control-service.js';
import { swarmHolderKey, type Holders } from './catalog/holders.js';
import type { Gossip } from './catalog/gossip.js';
import type { NetworkSearch } from './catalog/search.js';
import type { Torrents } from './swarm/torrents.js';
import type { PeerSession } from './swarm/peer-session.js';
import { clientName } from './swarm/client-name.js';
import type { Announcer } from './tracker/announcer.js';
import type { Downloads } from './downloads/downloads.js';
import type { NodeEvents } from './node-events.js';

/** The node's `emit`, typed by its events. */
export type Emit = <E extends keyof NodeEvents>(event: E, ...args: NodeEvents[E]) => boolean;

export interface WiredParts {
  registry: PeerRegistry;
  library: Library;
  downloads: Downloads;
  torrents: Torrents;
  announcer: Announcer;
  holders: Holders;
  gossip: Gossip;
  finder: NetworkSearch;
  control: ControlService;
  discovery: NodeDiscovery;
  /** Trackers every shared file is announced to. */
  trackers: string[];
  log: Logger;
}

export function wireParts(p: WiredParts, emit: Emit, hasErrorListener: () => boolean): void {
  const { registry, library, downloads, torrents, announcer, discovery } = p;
  p.holders.on('change', (h, n) => emit('holders', h, n));
  registry.on('peer-up', (peer) => {
    emit('peer-up', peer);
    downloads.addPeers([peer]);
    if (!peer.sources.has('peer')) p.gossip.ask(peer);
  });
  registry.on('peer-changed', (peer, what) => {
    downloads.addPeers([peer]);
    emit('peer-changed', peer, what);
  });
  registry.on('peer-down', (peer) => emit('peer-down', peer));
  registry.on('peer-unreachable', (peer) => {
    p.log.info({ peer: `${peer.host}:${peer.port}`, id: peer.id }, 'peer does not answer');
    if (peer.id && peer.sources.has('bootstrap')) void discovery.bootstrap?.report(peer.id).catch(() => {});
    emit('peer-changed', peer, 'reachability');
  });
  library.on('added', (f) => {
    emit('file-added', f);
    const h = f.metainfo.infoHashHex;
    // A seed dials the leechers its trackers name: some clients only wait to be dialled.
    const dialFrom = (peer: { host: string; port: number }) => void torrents.find(h).then((t) => t?.addPeers([peer]), () => {});
    const seedStats = () => ({ uploaded: torrents.get(h)?.info().uploaded ?? 0, downloaded: 0, left: 0 });
    if (!downloads.get(h)) announcer.start(f.metainfo, p.trackers, seedStats, dialFrom);
    p.control.publish('file-added', f);
    discovery.bootstrap?.publishSoon();
  });
  library.on('removed', (f) => {
    emit('file-removed', f);
    const h = f.metainfo.infoHashHex;
    if (!downloads.get(h)) {
      void announcer.stop(h);
      if (!library.byInfoHash(h)) void torrents.drop(h);
    }
    p.control.publish('file-removed', f);
    discovery.bootstrap?.publishSoon();
  });
  torrents.on('peer-complete', (h, peer) => sawSwarmPeer(p.holders, h, peer));
  downloads.on('progress', (d) => emit('progress', d));
  downloads.on('done', (d) => emit('done', d));
  downloads.on('download-state', (d) => emit('download-state', d));
  downloads.on('download-removed', (h) => emit('download-removed', h));
  downloads.on('error', (err, h) => {
    if (hasErrorListener()) emit('error', err, h);
  });
}

/** A swarm peer with every piece holds the file. */
export function sawSwarmPeer(holders: Holders, infohash: string, p: PeerSession): void {
  const key = swarmHolderKey({ outgoing: p.outgoing, host: p.peer.address, port: p.peer.port, client: clientName(p.peerId), peerId: p.peerId });
  if (key) holders.saw(infohash, key);
}

/** A watched pattern matched a file somewhere: fetch it unless we have it or fetch it already. */
export function fetchWatched(p: WiredParts, emit: Emit, stopping: () => boolean, f: FileEntry, from: KnownPeer, pattern: string): void {
  const h = f.infohash;
  if (stopping() || p.library.byInfoHash(h) || p.downloads.knows(h)) return;
  const hint = [{ host: from.host, port: from.port }];
  p.log.info({ file: f.name, pattern, from: `${from.host}:${from.port}` }, 'watched pattern matched: downloading');
  const bootstrap = p.discovery.bootstrap;
  p.finder
    .metainfo(h, hint)
    .then((m) => p.downloads.start(fromInfo(m.info), hint, bootstrap ? [bootstrap.trackerUrl] : []))
    .then(
      () => emit('watched', f, pattern, h),
      (err: Error) => p.log.warn({ file: f.name, err: err.message }, 'could not start a watched download'),
    );
}
