import type { FileEntry } from './wire/control-codec.js';
import type { KnownPeer } from './discovery/peer-registry.js';
import type { DiscoveryHealth, PeerSource } from './discovery/discovery.js';
import type { SharedFile } from './library/library.js';
import type { DownloadInfo } from './downloads/download.js';
import type { NodeSettings } from './config/settings.js';

/** What changed about a known peer. */
export type PeerChange = 'address' | 'instance' | 'id' | 'reachability';

/** The typed event stream of a Node: everything a front end shows live comes from here. */
export interface NodeEvents {
  'peer-up': [peer: KnownPeer];
  'peer-down': [peer: KnownPeer];
  /**
   * Same node at a new address, restarted (new instance), or it stopped answering; `id`: a
   * peer known by address told us its node id, and its `key` changed with it.
   */
  'peer-changed': [peer: KnownPeer, what: PeerChange];
  'discovery-health': [source: PeerSource, health: DiscoveryHealth];
  /** A watched pattern matched a file on the network and its download started. */
  watched: [file: FileEntry, pattern: string, infohash: string];
  'file-added': [file: SharedFile];
  'file-removed': [file: SharedFile];
  progress: [info: DownloadInfo];
  done: [info: DownloadInfo];
  /** A download started, paused, resumed, finished or failed. */
  'download-state': [info: DownloadInfo];
  /** Cancelled: it is gone from the list. */
  'download-removed': [infohash: string];
  /** The number of other nodes known to share `infohash` changed. */
  holders: [infohash: string, count: number];
  error: [err: Error, infohash?: string];
  /** Settings were changed (and kept in the config file). */
  settings: [settings: NodeSettings];
}
