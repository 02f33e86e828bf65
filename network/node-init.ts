import type { Logger } from './util/log.js';
import type { SwarmLimits, PeerStat } from './swarm/torrent.js';
import type { PeerTimeouts } from './swarm/peer.js';
import type { MulticastOptions } from './discovery/sources.js';
import type { EncryptionMode } from './wire/mse.js';
import type { UtpMode } from './swarm/dial.js';
import type { DownloadInfo } from './downloads/download.js';
import type { DownloadFile } from './downloads/selection.js';
import type { Identity } from './security/identity.js';

export type { MulticastOptions } from './discovery/sources.js';

/** Everything a Node can be started with; every field but the port and folders has a default. */
export interface NodeInit {
  /** TCP port for peers and control (0 picks a free one). */
  port: number;
  /** Listen address; every interface by default. */
  listenHost?: string;
  /** The address we tell others; the first LAN IPv4 address by default. */
  announceHost?: string;
  /** The folder to share, or several; the first takes files added from the dashboard. Each must be a readable folder (SharedFolderError at start otherwise). */
  sharedDir: string | string[];
  /** Make the shared folder when it is missing: for a default folder, not for one a user named. */
  createSharedDir?: boolean;
  /** Locked at start against a second node (FolderLockedError), as is the state folder. */
  downloadDir: string;
  /** Node state (hash cache, resume records, access token, config file); `<downloads>/.shoal` by default. */
  stateDir?: string;
  /** Where settings changed at run time are kept (network/config/config-file.ts); `<stateDir>/shoal.json` by default. */
  configFile?: string;
  /** Keys of the config file the command line set (they win over the file at a start), for the settings to show. */
  fromCommandLine?: string[];
  name?: string;
  pieceLength?: number;
  peers?: Array<{ host: string; port: number }>;
  /** Folders to share whole, each as one multi-file torrent (hashed at start); each must be a readable folder. */
  shareFoldersAsTorrents?: string[];
  /** HTTP trackers to announce every shared file to. */
  trackers?: string[];
  maxConnections?: number;
  /** Incoming connections one address (an IPv6 /64) may hold; default a quarter of maxConnections. */
  maxConnectionsPerAddress?: number;
  /** Upload limit in bytes per second; 0 = none. */
  maxUploadRate?: number;
  hashWorkers?: number;
  limits?: Partial<SwarmLimits>;
  timeouts?: Partial<PeerTimeouts>;
  /** Message stream encryption (MSE/PE): `prefer` (default: offer and accept it, fall back to plain), `require` or `off`. */
  encryption?: EncryptionMode;
  /** uTP on the peer port's number: `on` (default: accept it, dial it when TCP fails), `prefer` (dial it first) or `off`. */
  utp?: UtpMode;
  controlIdleMs?: number;
  /** A control request line must be complete this long after its first byte (default 10 s). */
  controlLineDeadlineMs?: number;
  /** Per-peer timeout for searches and metainfo requests. */
  queryTimeoutMs?: number;
  /** Follow changes in the shared folders (default true). */
  watch?: boolean;
  /** How often every shared file is looked at again (a stat; a changed file is hashed again), watching or not; 0 = never. Default a minute. */
  rescanIntervalMs?: number;
  /** Shared files held open at once to serve them (default 256); more are opened and closed in turn. */
  openFiles?: number;
  /** Bytes of memory for serving pieces, node-wide (default 64 MiB): reads, cached pieces, blocks sockets have yet to send. */
  uploadMemory?: number;
  /**
   * The node's key pair, its id derived from it (network/security/identity.ts). By default
   * the one kept in the state folder (`node-key.pem`, made at the first start); a node on
   * port 0 that is given none uses a new one in memory.
   */
  identity?: Identity;
  /**
   * A private swarm's secret (network/security/secret.ts): beacons and bootstrap requests
   * carry its HMAC, and beacons and nodes without it are ignored. At least 8 characters.
   */
  secret?: string;
  /** LAN discovery by multicast beacons; `false` turns it off. On by default. */
  multicast?: false | MulticastOptions;
  /** Bootstrap server URL (http://host:port); none by default. */
  bootstrap?: string;
  /** Glob patterns: download every matching file that appears on the network. */
  watchPatterns?: string[];
  /** How often to ask a few peers for the peers they know (0 = never). */
  gossipIntervalMs?: number;
  /** `refreshHolders()` asks each peer for its list at most this often (default a minute). */
  holdersListIntervalMs?: number;
  logger?: Logger;
}

/** A download with its verified-pieces bitfield (BEP 3 order, a copy, of `pieceCount` pieces), its files and its connected peers. */
export type DownloadDetail = DownloadInfo & { bitfield: Buffer; pieceCount: number; peerList: PeerStat[]; fileList: DownloadFile[] };

/** Payload bytes and rates of every torrent this node ran since it started, seeding included. */
export interface TransferTotals {
  downloaded: number;
  uploaded: number;
  downloadRate: number;
  uploadRate: number;
}

export const DEFAULT_MAX_CONNECTIONS = 256;
export const DEFAULT_QUERY_TIMEOUT_MS = 3_000;
