/**
 * The dashboard's contract: every JSON shape the REST API (`/api`) answers or accepts, and
 * every socket.io event the server pushes. The server (web/server.ts, web/api.ts), the
 * pages (web/views, web/public) and the OpenAPI document (web/openapi.ts, generated from
 * these schemas with z.toJSONSchema) all follow this file; change it here first.
 *
 * Conventions: times are ms since the epoch; sizes and byte counts are integers; rates
 * are bytes per second; an infohash is 40 lower-case hex digits.
 */
import { z } from 'zod';
import { PEER_SOURCES, MAX_TORRENT_BYTES, SettingsChangeSchema } from '../network/index.js';

/** The largest JSON body the API reads (413 beyond). */
export const MAX_JSON_BYTES = 64 * 1024;
/** The largest .torrent `POST /api/downloads` reads (413 beyond): what the node would parse. */
export const MAX_TORRENT_BODY_BYTES = MAX_TORRENT_BYTES;
/** The media type of a .torrent body. */
export const TORRENT_TYPE = 'application/x-bittorrent';

export const InfohashSchema = z.string().regex(/^[0-9a-f]{40}$/, 'an infohash is 40 lower-case hex digits');

/** Rates and payload byte counts: of the whole node, of one download, of one of its peers. */
const transfer = { downloadRate: z.number(), uploadRate: z.number(), downloaded: z.number(), uploaded: z.number() };

// ---- status ---------------------------------------------------------------------------

export const DiscoveryViewSchema = z.object({
  source: z.enum(['multicast', 'bootstrap']),
  state: z.enum(['starting', 'ok', 'failing', 'stopped']),
  detail: z.string().optional(),
  since: z.number(),
  lastOk: z.number().optional(),
});

export const TotalsSchema = z.object({
  peers: z.number().int(),
  files: z.number().int(),
  /** Downloads not yet finished (downloading or paused). */
  activeDownloads: z.number().int(),
  /** Files being uploaded now or asked for (what the Seeding page lists). */
  seeding: z.number().int(),
  /** Rates now; payload bytes received and sent since the node started, all torrents together. */
  ...transfer,
});

export const StatusSchema = z.object({
  /** The node id: derived from the node's public key, so no other node can speak for it. */
  id: z.string(),
  name: z.string(),
  /** A private swarm's fingerprint (8 hex characters naming its secret without revealing it), or null: an open node. */
  swarm: z.string().nullable(),
  version: z.string(),
  startedAt: z.number(),
  peerPort: z.number().int(),
  /** The address other nodes are told to use. */
  announceHost: z.string(),
  /** This machine's IPv4 addresses, loopback excluded. */
  addresses: z.array(z.string()),
  /** Where the dashboard listens, e.g. http://127.0.0.1:5000. */
  httpUrl: z.string(),
  sharedDir: z.string(),
  downloadDir: z.string(),
  discovery: z.array(DiscoveryViewSchema),
  totals: TotalsSchema,
});

// ---- peers ----------------------------------------------------------------------------

export const PeerViewSchema = z.object({
  /** Registry key: stable for the life of the entry (`id:<node id>` or `addr:<host>:<port>`). */
  key: z.string(),
  id: z.string().optional(),
  name: z.string().optional(),
  host: z.string(),
  port: z.number().int(),
  sources: z.array(z.enum(PEER_SOURCES)),
  firstSeen: z.number(),
  lastSeen: z.number(),
  reachable: z.enum(['unknown', 'yes', 'no']),
});
export const PeersResponseSchema = z.object({ peers: z.array(PeerViewSchema) });
export const PeersQuerySchema = z.object({ source: z.enum(['all', ...PEER_SOURCES]).default('all') });
export const AddPeerBodySchema = z.object({ host: z.string().min(1).max(255), port: z.number().int().min(1).max(65535) });

// ---- files ----------------------------------------------------------------------------

export const FileViewSchema = z.object({
  name: z.string(),
  size: z.number().int(),
  infohash: InfohashSchema,
  /** Known nodes other than this one that share the same infohash. */
  holders: z.number().int(),
  magnet: z.string(),
  /** Where its .torrent and its content are served (relative URLs); a folder's content is read one file at a time (`?file=N`). */
  torrentUrl: z.string(),
  contentUrl: z.string(),
  /** Files in its torrent: 1 for a shared file, more for a folder shared whole as one torrent. */
  files: z.number().int(),
});
export const FilesResponseSchema = z.object({ files: z.array(FileViewSchema) });
/** `PUT /api/files?name=<relative name>` with the raw bytes as the body. */
export const UploadQuerySchema = z.object({ name: z.string().min(1).max(1024) });

// ---- search ---------------------------------------------------------------------------

export const SearchQuerySchema = z.object({ q: z.string().trim().min(1, 'give a query').max(256) });
export const SearchResultViewSchema = z.object({
  infohash: InfohashSchema,
  name: z.string(),
  size: z.number().int(),
  /** How many nodes have it. */
  sources: z.number().int(),
  peers: z.array(z.object({ id: z.string().optional(), host: z.string(), port: z.number().int() })),
  via: z.array(z.enum(['peers', 'bootstrap'])),
  /** Already shared here, or already being downloaded. */
  local: z.boolean(),
  downloading: z.boolean(),
});
export const SearchResponseSchema = z.object({ query: z.string(), results: z.array(SearchResultViewSchema) });

// ---- downloads ------------------------------------------------------------------------

export const DownloadStateSchema = z.enum(['downloading', 'paused', 'done', 'failed']);
export const DownloadViewSchema = z.object({
  infohash: InfohashSchema,
  name: z.string(),
  size: z.number().int(),
  state: DownloadStateSchema,
  /** Verified share of the file (of the selected files), 0 to 1. */
  progress: z.number().min(0).max(1),
  /** Pieces to download (those of the selected files), and how many of them are verified. */
  pieces: z.number().int(),
  verified: z.number().int(),
  ...transfer,
  /** Seconds left at the current rate; null when unknown (stalled, paused, done). */
  eta: z.number().nullable(),
  /** Connected peers. */
  peers: z.number().int(),
  startedAt: z.number(),
  path: z.string().optional(),
  error: z.string().optional(),
  /** A single file's bytes; for a multi-file torrent each file has its own (`fileList`, `?file=N`). */
  contentUrl: z.string(),
  /** A folder (multi-file torrent): its content is read one file at a time (`fileList`). */
  multiFile: z.boolean(),
  /** Files in the torrent (1 for a single-file torrent) and how many of them are downloaded. */
  files: z.number().int(),
  selectedFiles: z.number().int(),
});
/** One file of a download's torrent. */
export const DownloadFileViewSchema = z.object({
  /** Its index in the torrent: what `PATCH /api/downloads/:infohash` and `?file=` take. */
  index: z.number().int(),
  /** Path inside the torrent's folder, '/'-separated (the name, for a single-file torrent). */
  path: z.string(),
  size: z.number().int(),
  /** Downloaded (or to be); files left out are not written, but for the pieces they share with selected files. */
  selected: z.boolean(),
  /** Bytes of it in verified pieces. */
  verified: z.number().int(),
  contentUrl: z.string(),
});
export const DownloadPeerViewSchema = z.object({
  address: z.string(),
  /** Client named by the peer id (e.g. "Shoal 0.1.0", "aria2 1.37.0"), or its raw prefix. */
  client: z.string(),
  /** Payload bytes this peer sent us (verified or not) and we sent it, and their rates. */
  ...transfer,
  /** Pieces this peer has, 0 to 1. */
  has: z.number().min(0).max(1),
  outgoing: z.boolean(),
});
export const DownloadDetailSchema = DownloadViewSchema.extend({
  /** The verified-pieces bitfield (BEP 3 bit order: piece 0 is the high bit of byte 0), base64. */
  pieceMap: z.string(),
  /** Pieces in the torrent, as many as the piece map has bits (`pieces` counts the selected files' only). */
  pieceCount: z.number().int(),
  peerList: z.array(DownloadPeerViewSchema),
  fileList: z.array(DownloadFileViewSchema),
});
/**
 * `PATCH /api/downloads/:infohash`: the files to download from now on, by index (null: every
 * file). Only a download still running or paused; what is verified stays.
 */
export const SelectFilesBodySchema = z.strictObject({ files: z.array(z.number().int().min(0)).min(1).max(100_000).nullable() });
/** `GET /api/files/:infohash/content?file=N`: which file of a multi-file torrent (required there; 0 or absent for a single file). */
export const ContentQuerySchema = z.object({ file: z.string().regex(/^\d{1,6}$/, 'a file index').transform(Number).optional() });
export const DownloadsResponseSchema = z.object({ downloads: z.array(DownloadViewSchema) });
/** `POST /api/downloads`: a name, an infohash or a magnet link (or, as application/x-bittorrent, a .torrent). */
export const StartDownloadBodySchema = z.object({ target: z.string().trim().min(1).max(8192) });
/**
 * `DELETE /api/downloads/:infohash?data=keep|delete`. A download in progress is cancelled
 * (its .part deleted; `keep` is refused). A finished or failed one needs the choice:
 * `keep` takes it off the list and the file stays (and stays shared), `delete` deletes it too.
 */
export const RemoveDownloadQuerySchema = z.object({ data: z.enum(['keep', 'delete']).optional() });

// ---- seeding --------------------------------------------------------------------------

export const SeedingPeerViewSchema = z.object({
  address: z.string(),
  client: z.string(),
  /** Payload bytes sent to this peer since it connected, and the rate now. */
  uploaded: z.number(),
  uploadRate: z.number(),
  /** Pieces this peer has, 0 to 1. */
  has: z.number().min(0).max(1),
  /** It wants pieces of us; we let it ask. */
  interested: z.boolean(),
  unchoked: z.boolean(),
  outgoing: z.boolean(),
});
export const SeedingViewSchema = z.object({
  infohash: InfohashSchema,
  name: z.string(),
  size: z.number().int(),
  /** Every piece is here; false while it still downloads (and uploads what it has). */
  complete: z.boolean(),
  /** Payload bytes sent since the node started, and the rate now. */
  uploaded: z.number(),
  uploadRate: z.number(),
  /** Share ratio: uploaded / size. */
  ratio: z.number(),
  peers: z.array(SeedingPeerViewSchema),
});
export const SeedingResponseSchema = z.object({
  /** What the node uploads (or is asked for), busiest first. */
  seeding: z.array(SeedingViewSchema),
  /** Every torrent together, since the node started. */
  uploaded: z.number(),
  uploadRate: z.number(),
});

// ---- settings -------------------------------------------------------------------------

/** What can change while the node runs; every change is kept in the config file. */
export const SettingsViewSchema = z.object({
  /** Upload limit of the whole node, bytes per second; 0 = none. */
  maxUploadRate: z.number().int(),
  /** Shared folders (absolute paths), besides the downloads folder. */
  shared: z.array(z.string()),
  /** The downloads folder: always shared, set at start. */
  downloads: z.string(),
  multicast: z.boolean(),
  /** Bootstrap server URL, or null for none. */
  bootstrap: z.string().nullable(),
  /** The config file changes are kept in. */
  configFile: z.string(),
  /** Config keys the command line set: at the next start they win over the file. */
  fromCommandLine: z.array(z.string()),
  /** Whether the dashboard asks for an access token (it listens beyond loopback, or was given one). */
  tokenInUse: z.boolean(),
});
/**
 * `PATCH /api/settings`: any of the fields, the rest unchanged; `shared` is the whole new
 * list. Unknown fields are refused. (The node's own schema: network/config/settings.ts.)
 */
export const SettingsPatchSchema = SettingsChangeSchema;
/** `POST /api/settings/token`: the new token (the answer also sets the browser's cookie), and the URL to open elsewhere. */
export const TokenRotatedSchema = z.object({ token: z.string(), openUrl: z.string() });

// ---- errors ---------------------------------------------------------------------------

/** Every 4xx/5xx answer of the API. */
export const ErrorResponseSchema = z.object({ error: z.string() });

// ---- socket.io (server to client) -----------------------------------------------------

export interface LiveEvents {
  /** Every second, and at once on connect. */
  status: (s: z.infer<typeof StatusSchema>) => void;
  'peer-up': (p: z.infer<typeof PeerViewSchema>) => void;
  'peer-down': (p: z.infer<typeof PeerViewSchema>) => void;
  /** An existing peer changed (sources, reachability, address, name). */
  'peer-changed': (p: z.infer<typeof PeerViewSchema>) => void;
  'file-added': (f: z.infer<typeof FileViewSchema>) => void;
  /** A shared file changed (so far: how many known nodes also hold it); replace it by infohash. */
  'file-changed': (f: z.infer<typeof FileViewSchema>) => void;
  'file-removed': (f: { infohash: string; name: string }) => void;
  /** Progress (at most 4 a second per download) and every change of state. */
  download: (d: z.infer<typeof DownloadViewSchema>) => void;
  /** Cancelled or removed: it is gone from the list. */
  'download-removed': (d: { infohash: string }) => void;
  discovery: (d: z.infer<typeof DiscoveryViewSchema>) => void;
  /** Settings were changed (from any page, or the API). */
  settings: (s: z.infer<typeof SettingsViewSchema>) => void;
}

export type Status = z.infer<typeof StatusSchema>;
export type PeerView = z.infer<typeof PeerViewSchema>;
export type FileView = z.infer<typeof FileViewSchema>;
export type SearchResultView = z.infer<typeof SearchResultViewSchema>;
export type DownloadView = z.infer<typeof DownloadViewSchema>;
export type DownloadDetail = z.infer<typeof DownloadDetailSchema>;
export type DownloadPeerView = z.infer<typeof DownloadPeerViewSchema>;
export type DownloadFileView = z.infer<typeof DownloadFileViewSchema>;
export type SeedingView = z.infer<typeof SeedingViewSchema>;
export type SeedingResponse = z.infer<typeof SeedingResponseSchema>;
export type SettingsView = z.infer<typeof SettingsViewSchema>;
