/**
 * The public surface of `network/`: the Node facade, the shapes it hands out, its typed
 * errors, and the few helpers the front ends share with it (logging, patterns, addresses).
 * Front ends (cli/, web/) import this file and nothing else under network/.
 */
export { Node } from './node.js';
export type { NodeInit, MulticastOptions, DownloadDetail, TransferTotals } from './node-init.js';
export { DEFAULT_MAX_CONNECTIONS, DEFAULT_QUERY_TIMEOUT_MS } from './node-init.js';
export type { NodeEvents, PeerChange } from './node-events.js';

// What the facade hands out.
export type { KnownPeer, Reachability } from './discovery/peer-registry.js';
export { PEER_SOURCES, type PeerSource, type DiscoveryHealth, type HealthState } from './discovery/discovery.js';
export type { SharedFile } from './library/library.js';
export type { Metainfo } from './metainfo/metainfo.js';
export type { SearchResult } from './catalog/search.js';
export type { DownloadInfo, DownloadState } from './downloads/download.js';
export type { TargetOptions } from './downloads/targets.js';
export type { ReadOptions } from './downloads/content.js';
export type { ContentInfo } from './downloads/content-sources.js';
export type { DownloadFile } from './downloads/selection.js';
export type { TorrentFile } from './metainfo/metainfo.js';
export type { ImportOptions } from './library/import.js';
export type { PeerStat, TorrentStats } from './swarm/torrent.js';
export type { ServingStats } from './swarm/torrents.js';
export type { SeedingEntry, SeedingPeer } from './swarm/seeding.js';
export type { FileEntry } from './wire/control-codec.js';

// Typed errors: map them by class, never by message.
export { NotFoundError, AmbiguousTargetError, BadTargetError, UnknownDownloadError, SelectionError, FolderLockedError, SharedFolderError, NoDataError, type LockHolder } from './errors.js';
export { MagnetError } from './metainfo/magnet.js';
export { MetainfoError, MAX_TORRENT_BYTES } from './metainfo/metainfo.js';
export { ImportError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError, DEFAULT_MAX_IMPORT_BYTES } from './library/import.js';
export { ContentUnavailableError, UnknownContentError } from './downloads/content.js';
export { PatternError, checkPattern, MAX_PATTERN_LENGTH } from './catalog/glob.js';
export { TimeoutError, ClosedError } from './util/errors.js';
export { HttpError, checkInput, describeIssue } from './util/http-error.js';

// Settings and the config file.
export { SettingsError, SettingsChangeSchema, MAX_SHARED_FOLDERS, type NodeSettings, type SettingsChange } from './config/settings.js';
export { ConfigError, ConfigFileSchema, CONFIG_FILE_NAME, CONFIG_KEYS, loadConfigFile, type ConfigKey, type ConfigValues } from './config/config-file.js';

// Helpers the front ends share with the node.
export { createLogger, silentLogger, WarnLimiter, type Logger, type LoggerInit } from './util/log.js';
export { isLoopbackAddress, lanIPv4Addresses, normalizeAddress, hostPort } from './util/addresses.js';
export { Cooldown } from './util/cooldown.js';
export { SecretError, readSecretFile, secretProblem, MIN_SECRET_LENGTH } from './security/secret.js';
export { makeMagnet } from './metainfo/magnet.js';
export { parseSize } from './util/size.js';
export { VERSION, programName, setProgramName } from './util/program.js';
export { createTorrent, type CreateTorrentOptions } from './library/create-torrent.js';
export { parseTorrent, encodeTorrent, DEFAULT_PIECE_LENGTH } from './metainfo/metainfo.js';
export { sameToken } from './security/same-token.js';
