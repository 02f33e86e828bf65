/**
 * The bootstrap server's HTTP API, the contract shared by the server (bootstrap/) and the
 * node's client (network/discovery/bootstrap-client.ts). JSON bodies, at most
 * MAX_BODY_BYTES; every error is `{"error":"why"}` with a 4xx/5xx status.
 *
 *   POST   /api/nodes                    register (or re-register after a restart)
 *          {id, instance, name, port, host?, files: FileEntry[], downloads: Download[]}
 *          → 200 {self: {id, host, port}, nodes: PeerView[], truncated, heartbeatMs, ttlMs}
 *          `host` omitted = the request's source address. A `host` other than the source
 *          address is refused (403) unless the source is loopback: the server's own machine
 *          may advertise its LAN address. 409 while the same instance is quarantined after
 *          peers reported it unreachable, 429 past the per-address bounds, 503 when full.
 *   PUT    /api/nodes/:id                heartbeat {instance, files?, downloads?}
 *          (files omitted = unchanged) → 200 as register; 404 unknown (register again);
 *          403 another instance, or another source address than the registered one.
 *   DELETE /api/nodes/:id?instance=I     unregister → 204; 403/404 as heartbeat
 *   POST   /api/nodes/:id/reports        {reporter} "I cannot reach :id" → 202 {dropped}
 *          The reporter must be registered from the sending address. Enough distinct
 *          reporters (by address; by id on loopback) drop the node and quarantine that
 *          instance for a while.
 *   GET    /api/nodes                    → 200 {nodes: NodeView[], totals} everything the monitor
 *          shows; like the monitor, 401 from another machine without the monitor token
 *   GET    /api/search?q=text            → 200 {files: SearchHit[]} substring of the lower-cased
 *          name, merged by infohash; q is 1..256 characters of plain text (no pattern)
 *   GET    /announce, /scrape            BitTorrent HTTP tracker (BEP 3, 23, 7, 48): bencoded
 *   GET    /[?q=text]                    the live monitor page (EJS + socket.io `nodes` events),
 *          with a search of the index; from another machine it needs the monitor token
 *
 * POST, PUT and DELETE are for nodes: a request a browser sends (it carries Origin or
 * Sec-Fetch-Site) is refused with 403 (bootstrap/monitor-access.ts).
 *
 * `nodes` in a register/heartbeat answer are the other nodes, freshest first, at most
 * MAX_PEERS_IN_ANSWER; `truncated` says some were left out (so a client must not read
 * absence as departure). A node's `instance` is not a secret (multicast beacons carry
 * it too): ownership is the instance plus the source address.
 *
 * Unknown fields are dropped, so either side may add optional fields later.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { FileEntrySchema, NodeIdSchema } from './control-codec.js';
import { isUnusableAddress, normalizeAddress } from '../util/addresses.js';

export { FileEntrySchema, NodeIdSchema, type FileEntry } from './control-codec.js';
export { describeIssue } from '../util/http-error.js';

/** Largest request body the server parses (a register with 10k files fits easily). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Largest answer the client reads: GET /api/nodes of a full registry stays well under it. */
export const MAX_ANSWER_BYTES = 32 * 1024 * 1024;
export const MAX_FILES_PER_NODE = 10_000;
export const MAX_DOWNLOADS_PER_NODE = 1000;
export const MAX_PEERS_IN_ANSWER = 200;
export const MAX_SEARCH_RESULTS = 200;
export const MAX_NODES_PER_RESULT = 50;
export const MAX_QUERY_LENGTH = 256;
/** How many file names and downloads a NodeView shows (the counts are always exact). */
export const MAX_SHARES_SHOWN = 20;
export const MAX_DOWNLOADS_SHOWN = 50;

/** Changes at every start of a node; spelt like a node id. */
export const InstanceSchema = NodeIdSchema;
const name = z.string().max(64);
const port = z.number().int().min(1, 'must be 1..65535').max(65535, 'must be 1..65535');
const time = z.number().int().nonnegative();
const infohash = FileEntrySchema.shape.infohash;

/** An IP literal a peer can dial: not unspecified, not multicast. Names cannot be checked for ownership. */
export const HostSchema = z
  .string()
  .max(64)
  .refine((h) => isIP(h) !== 0, 'must be an IPv4 or IPv6 address')
  .transform((h) => normalizeAddress(h))
  .refine((h) => !isUnusableAddress(h), 'must be a unicast address (not 0.0.0.0, ::, or multicast)');

export const DownloadSchema = z.object({ infohash, name: z.string().min(1).max(1024), progress: z.number().min(0).max(1) });
export type Download = z.output<typeof DownloadSchema>;

const files = z.array(FileEntrySchema).max(MAX_FILES_PER_NODE, `at most ${MAX_FILES_PER_NODE} files`);
const downloads = z.array(DownloadSchema).max(MAX_DOWNLOADS_PER_NODE, `at most ${MAX_DOWNLOADS_PER_NODE} downloads`);

export const RegisterRequestSchema = z.object({
  id: NodeIdSchema,
  instance: InstanceSchema,
  name,
  port,
  host: HostSchema.optional(),
  files: files.default([]),
  downloads: downloads.default([]),
});
export type RegisterRequest = z.output<typeof RegisterRequestSchema>;
/** What a client sends (host before normalisation, defaults not applied). */
export type RegisterBody = z.input<typeof RegisterRequestSchema>;

export const HeartbeatRequestSchema = z.object({ instance: InstanceSchema, files: files.optional(), downloads: downloads.optional() });
export type HeartbeatRequest = z.output<typeof HeartbeatRequestSchema>;

export const ReportRequestSchema = z.object({ reporter: NodeIdSchema });
export type ReportRequest = z.output<typeof ReportRequestSchema>;

export const SearchQuerySchema = z.object({ q: z.string().min(1, 'q must not be empty').max(MAX_QUERY_LENGTH, `q is at most ${MAX_QUERY_LENGTH} characters`) });

/** Another node as a register/heartbeat answer names it: what a client needs to dial it. */
export const PeerViewSchema = z.object({ id: NodeIdSchema, instance: InstanceSchema, name, host: z.string().min(1).max(64), port });
export type PeerView = z.output<typeof PeerViewSchema>;

export const RegisterResponseSchema = z.object({
  self: z.object({ id: NodeIdSchema, host: z.string().min(1).max(64), port }),
  nodes: z.array(PeerViewSchema).max(MAX_PEERS_IN_ANSWER),
  truncated: z.boolean().default(false),
  /** How often the server wants a heartbeat; bounded so a lying server cannot make us hammer it. */
  heartbeatMs: z.number().int().min(100).max(3_600_000),
  ttlMs: z.number().int().min(100).max(24 * 3_600_000),
});
export type RegisterResponse = z.output<typeof RegisterResponseSchema>;

export const ReportResponseSchema = z.object({ dropped: z.boolean() });
export type ReportResponse = z.output<typeof ReportResponseSchema>;

export const ROLES = ['SEEDER', 'LEECHER'] as const;
export type Role = (typeof ROLES)[number];

/** A node as the monitor shows it: SEEDER when it only shares, LEECHER while it downloads. */
export const NodeViewSchema = PeerViewSchema.extend({
  role: z.enum(ROLES),
  files: z.number().int().nonnegative(),
  /** The first MAX_SHARES_SHOWN file names. */
  shares: z.array(z.string().max(1024)).max(MAX_SHARES_SHOWN),
  downloads: z.array(z.object({ infohash, name: z.string().max(1024), percent: z.number().min(0).max(100) })).max(MAX_DOWNLOADS_SHOWN),
  downloadCount: z.number().int().nonnegative(),
  lastSeen: time,
  registeredAt: time,
});
export type NodeView = z.output<typeof NodeViewSchema>;

export const NodesResponseSchema = z.object({ nodes: z.array(NodeViewSchema) });

export const SearchHitSchema = z.object({
  name: z.string().min(1).max(1024),
  size: z.number().int().nonnegative(),
  infohash,
  nodes: z.array(z.object({ id: NodeIdSchema, host: z.string().min(1).max(64), port })).max(MAX_NODES_PER_RESULT),
});
export type SearchHit = z.output<typeof SearchHitSchema>;
export const SearchResponseSchema = z.object({ files: z.array(SearchHitSchema).max(MAX_SEARCH_RESULTS) });
export type SearchResponse = z.output<typeof SearchResponseSchema>;

export const ErrorResponseSchema = z.object({ error: z.string().max(4096) });
export type ErrorResponse = z.output<typeof ErrorResponseSchema>;

