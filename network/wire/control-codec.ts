/**
 * The control protocol, bytes apart from meaning: JSON lines on the peer port (the first
 * byte `{` selects it). One JSON object per line, '\n'-terminated (a '\r' before it is
 * tolerated); each request gets exactly one answer line, in order. No sockets here.
 *
 * Requests (a server accepts lines up to MAX_REQUEST_LINE bytes):
 *   {"type":"search","filename":"cat"}          name search, 1..256 characters
 *   {"type":"list"}                             every shared file
 *   {"type":"metainfo","infohash":"<40 hex>"}   the .torrent of one file
 *   {"type":"peers"}                            the peers this node knows
 *   {"type":"subscribe"}                        file-added / file-removed stream: the last
 *                                               request on its connection; the answer is a
 *                                               SUBSCRIBED snapshot, then EVENT lines as the
 *                                               library changes, HEARTBEAT when idle
 *
 * Responses (a client accepts lines up to MAX_RESPONSE_LINE bytes):
 *   {"type":"FOUND","files":[{"name","size","infohash","complete"?}]}   1..1000 files
 *   {"type":"NOT_FOUND","files":[]}
 *   {"type":"LIST","files":[...]}                                          0..1000 files
 *   {"type":"METAINFO","infohash":"<40 hex>","torrent":"<base64 .torrent>"}
 *   {"type":"PEERS","self"?:{"id","name"?},"peers":[{"id"?,"name"?,"host","port"}]}  0..200 peers
 *   {"type":"SUBSCRIBED","self"?:{...},"files":[...]}                      0..1000 files shared now
 *   {"type":"EVENT","event":"file-added"|"file-removed","file":{...}}
 *   {"type":"HEARTBEAT"}                                                   on an idle subscription
 *   {"type":"ERROR","error":"why"}
 *
 * Unknown fields are ignored (and dropped), so either side may add optional fields later.
 */
import { z } from 'zod';

/** Longest request line a server buffers: a search is tiny, so this is generous. */
export const MAX_REQUEST_LINE = 8 * 1024;
/** Longest answer line a client buffers: a METAINFO answer carries a whole .torrent. */
export const MAX_RESPONSE_LINE = 32 * 1024 * 1024;
export const MAX_FILES = 1000;
export const MAX_PEERS = 200;
/** Base64 of the largest .torrent a node parses (16 MiB, as in metainfo.ts, which wire/ must not import). */
const MAX_TORRENT_BASE64 = 4 * Math.ceil((16 * 1024 * 1024) / 3);

/** The peer broke the protocol: bad JSON, unknown type, or a field that fails its schema. */
export class ControlProtocolError extends Error {
  override name = 'ControlProtocolError';
}

/** A line grew past the decoder's limit before its '\n' arrived. */
export class LineTooLongError extends ControlProtocolError {
  override name = 'LineTooLongError';
  constructor(readonly limit: number) {
    super(`line longer than ${limit} bytes`);
  }
}

const NL = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines. Bytes are kept until the '\n', and only then decoded,
 * so a chunk boundary inside a multi-byte UTF-8 character is harmless. Once a line is too
 * long the decoder throws on this and every later push: the connection is beyond saving.
 */
export class LineDecoder {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private failed = false;

  constructor(private readonly maxLineBytes: number) {}

  /** Bytes held for the unterminated line: at most the limit, plus one for a trailing '\r'. */
  get bufferedBytes(): number {
    return this.pendingLength;
  }

  push(chunk: Buffer): string[] {
    if (this.failed) throw new LineTooLongError(this.maxLineBytes);
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(NL); nl >= 0; nl = chunk.indexOf(NL, start)) {
      const piece = chunk.subarray(start, nl);
      let line = this.pendingLength === 0 ? piece : Buffer.concat([...this.pending, piece]);
      if (line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
      if (line.length > this.maxLineBytes) this.fail();
      lines.push(line.toString('utf8'));
      this.pending = [];
      this.pendingLength = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      const over = this.pendingLength + rest.length - this.maxLineBytes;
      // One byte over is still fine if it is the '\r' of a coming "\r\n".
      if (over > 1 || (over === 1 && rest[rest.length - 1] !== CR)) this.fail();
      // Copy: the caller may reuse its chunk buffer (a pool) after we return.
      this.pending.push(Buffer.from(rest));
      this.pendingLength += rest.length;
    }
    return lines;
  }

  private fail(): never {
    this.failed = true;
    this.pending = [];
    this.pendingLength = 0;
    throw new LineTooLongError(this.maxLineBytes);
  }
}

// ---- schemas ---------------------------------------------------------------------------

const infohash = z
  .string()
  .regex(/^[0-9a-fA-F]{40}$/, 'must be 40 hex digits')
  .transform((s) => s.toLowerCase());

export const SearchRequestSchema = z.object({ type: z.literal('search'), filename: z.string().min(1).max(256) });
export const ListRequestSchema = z.object({ type: z.literal('list') });
export const MetainfoRequestSchema = z.object({ type: z.literal('metainfo'), infohash });
export const PeersRequestSchema = z.object({ type: z.literal('peers') });
export const SubscribeRequestSchema = z.object({ type: z.literal('subscribe') });

const requestSchemas = {
  search: SearchRequestSchema,
  list: ListRequestSchema,
  metainfo: MetainfoRequestSchema,
  peers: PeersRequestSchema,
  subscribe: SubscribeRequestSchema,
} as const;

export const ControlRequestSchema = z.discriminatedUnion('type', [
  SearchRequestSchema,
  ListRequestSchema,
  MetainfoRequestSchema,
  PeersRequestSchema,
  SubscribeRequestSchema,
]);
export type ControlRequest = z.output<typeof ControlRequestSchema>;

/** One shared file as other nodes see it. */
export const FileEntrySchema = z.object({
  name: z.string().min(1).max(1024),
  size: z.number().int().nonnegative(),
  infohash,
  /** False while the node is still downloading it. */
  complete: z.boolean().optional(),
});
export type FileEntry = z.output<typeof FileEntrySchema>;

/** A node id (and an instance id) wherever one travels: control answers, the bootstrap API, beacons. */
export const NodeIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1..64 of A-Z a-z 0-9 _ -');
const nodeName = z.string().max(64);

/** Who answers: lets the asker tie the address it dialled to a node id. */
export const NodeSelfSchema = z.object({ id: NodeIdSchema, name: nodeName.optional() });
export type NodeSelf = z.output<typeof NodeSelfSchema>;

export const PeerEntrySchema = z.object({
  id: NodeIdSchema.optional(),
  name: nodeName.optional(),
  host: z.string().min(1).max(255),
  port: z.number().int().min(1).max(65535),
});
export type PeerEntry = z.output<typeof PeerEntrySchema>;

export const FoundResponseSchema = z.object({ type: z.literal('FOUND'), files: z.array(FileEntrySchema).min(1).max(MAX_FILES) });
export const NotFoundResponseSchema = z.object({ type: z.literal('NOT_FOUND'), files: z.array(FileEntrySchema).max(0) });
export const ListResponseSchema = z.object({ type: z.literal('LIST'), files: z.array(FileEntrySchema).max(MAX_FILES) });
export const MetainfoResponseSchema = z.object({
  type: z.literal('METAINFO'),
  infohash,
  torrent: z
    .string()
    .min(4)
    .max(MAX_TORRENT_BASE64)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
    .refine((s) => s.length % 4 === 0, 'must be padded base64'),
});
export const PeersResponseSchema = z.object({
  type: z.literal('PEERS'),
  self: NodeSelfSchema.optional(),
  peers: z.array(PeerEntrySchema).max(MAX_PEERS),
});
export const SubscribedResponseSchema = z.object({
  type: z.literal('SUBSCRIBED'),
  self: NodeSelfSchema.optional(),
  files: z.array(FileEntrySchema).max(MAX_FILES),
});
export const LIBRARY_EVENTS = ['file-added', 'file-removed'] as const;
export type LibraryEventName = (typeof LIBRARY_EVENTS)[number];
export const EventResponseSchema = z.object({ type: z.literal('EVENT'), event: z.enum(LIBRARY_EVENTS), file: FileEntrySchema });
export const HeartbeatResponseSchema = z.object({ type: z.literal('HEARTBEAT') });
export const ErrorResponseSchema = z.object({ type: z.literal('ERROR'), error: z.string().max(4096) });

const responseSchemas = {
  FOUND: FoundResponseSchema,
  NOT_FOUND: NotFoundResponseSchema,
  LIST: ListResponseSchema,
  METAINFO: MetainfoResponseSchema,
  PEERS: PeersResponseSchema,
  SUBSCRIBED: SubscribedResponseSchema,
  EVENT: EventResponseSchema,
  HEARTBEAT: HeartbeatResponseSchema,
  ERROR: ErrorResponseSchema,
} as const;

export const ControlResponseSchema = z.discriminatedUnion('type', [
  FoundResponseSchema,
  NotFoundResponseSchema,
  ListResponseSchema,
  MetainfoResponseSchema,
  PeersResponseSchema,
  SubscribedResponseSchema,
  EventResponseSchema,
  HeartbeatResponseSchema,
  ErrorResponseSchema,
]);
export type ControlResponse = z.output<typeof ControlResponseSchema>;

export type ControlMessage = ControlRequest | ControlResponse;

// ---- parse and encode ------------------------------------------------------------------

export function parseRequest(line: string): ControlRequest {
  return parseWith(line, 'request', requestSchemas) as ControlRequest;
}

export function parseResponse(line: string): ControlResponse {
  return parseWith(line, 'response', responseSchemas) as ControlResponse;
}

/** One message as a line: JSON escapes any '\n' inside strings, so the frame is safe. */
export function encodeMessage(msg: ControlMessage): Buffer {
  return Buffer.from(JSON.stringify(msg) + '\n', 'utf8');
}

/**
 * Dispatch on `type` ourselves rather than through the union, so the error says
 * "unknown type" or names the failing field instead of zod's generic union message.
 */
function parseWith(line: string, what: string, schemas: Record<string, z.ZodType>): unknown {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ControlProtocolError(`bad JSON in ${what}: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ControlProtocolError(`${what} must be a JSON object`);
  const type = (value as Record<string, unknown>).type;
  if (typeof type !== 'string') throw new ControlProtocolError(`${what} has no "type" string`);
  const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
  if (!schema) {
    throw new ControlProtocolError(`unknown ${what} type ${JSON.stringify(type.slice(0, 64))} (expected one of ${Object.keys(schemas).join(', ')})`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? `field "${issue.path.join('.')}"` : 'message';
    throw new ControlProtocolError(`bad ${type} ${what}: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}
