/**
 * The REST API under /api: everything the pages do, for scripts too. Shapes follow
 * web/contract.ts; every input is zod-checked and every failure is `{ "error": "..." }`
 * with a 4xx that says what was wrong (5xx only for our own faults, which are logged).
 *
 * Bodies: JSON routes take at most MAX_JSON_BYTES; `PUT /api/files` streams its raw body
 * straight into node.importFile (never held in memory); `POST /api/downloads` also takes a
 * .torrent (web/downloads-api.ts). File content is served with single Range support, also
 * while a download runs (web/content-route.ts).
 */
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  HttpError, BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError, checkInput, type Node, type Logger,
} from '../network/index.js';
import { AddPeerBodySchema, InfohashSchema, MAX_JSON_BYTES, PeersQuerySchema, SearchQuerySchema, UploadQuerySchema } from './contract.js';
import { fileView, fileViews, peerView, searchResultViews, statusView } from './views-data.js';
import { openApiDocument } from './openapi.js';
import { STATE_CHANGING } from './auth.js';
import { contentRoute, disposition } from './content-route.js';
import { downloadRoutes, torrentUploadRoute } from './downloads-api.js';

export { contentTypeFor, disposition, parseRange } from './content-route.js';
import { settingsRouter, type SettingsApiInit } from './settings-api.js';

/** How long a content request waits for its first piece of a running download. */
export const DEFAULT_CONTENT_WAIT_MS = 10_000;
/** How long POST /api/downloads may take to find who has a name or infohash. */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 10_000;

export { HttpError };

export interface ApiInit {
  node: Node;
  log: Logger;
  /** Where the dashboard listens (for status). */
  httpUrl: () => string;
  contentWaitMs?: number;
  resolveTimeoutMs?: number;
  /** Largest upload; the node's default (64 GiB) when unset. */
  maxUploadBytes?: number;
  /** The access token, for the settings routes. */
  tokenInUse: SettingsApiInit['tokenInUse'];
  rotateToken: SettingsApiInit['rotateToken'];
}

const parse = checkInput;

const infohashParam = (req: Request) => parse(InfohashSchema, String(req.params.infohash ?? '').toLowerCase(), 'infohash in the path');

function jsonBody(req: Request): unknown {
  if (req.body === undefined) throw new HttpError(415, 'send a JSON body with Content-Type: application/json');
  return req.body as unknown;
}

/** Why an upload was refused, as a status. */
function importError(err: unknown): HttpError | null {
  const status =
    err instanceof BadNameError || err instanceof SizeMismatchError ? 400
    : err instanceof ExistsError ? 409
    : err instanceof TooLargeError ? 413
    : err instanceof NoSpaceError ? 507
    : null;
  return status === null ? null : new HttpError(status, (err as Error).message);
}

/**
 * JSON routes that change state want `Content-Type: application/json` when they carry a body
 * (a cross-site form cannot send that without a CORS preflight we never allow).
 */
function requireJsonType(req: Request, _res: Response, next: NextFunction): void {
  if (!STATE_CHANGING.has(req.method)) return next();
  const type = req.headers['content-type'];
  const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
  if ((type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) || (type === undefined && hasBody))
    return next(new HttpError(415, 'send JSON with Content-Type: application/json'));
  next();
}

export function apiRouter(init: ApiInit): express.Router {
  const { node, log } = init;
  const contentWaitMs = init.contentWaitMs ?? DEFAULT_CONTENT_WAIT_MS;
  const resolveTimeoutMs = init.resolveTimeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  const api = express.Router();

  // ---- uploads: raw bodies, before any JSON parsing --------------------------------------
  api.put('/files', async (req, res) => {
    const { name } = parse(UploadQuerySchema, { name: req.query.name }, 'query parameter "name"');
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || !/^\d+$/.test(lengthHeader)) throw new HttpError(411, 'send the file with a Content-Length');
    const size = Number(lengthHeader);
    const ac = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    req.on('aborted', () => ac.abort());
    try {
      const file = await node.importFile(name, req, { size, signal: ac.signal, ...(init.maxUploadBytes !== undefined && { maxBytes: init.maxUploadBytes }) });
      log.info({ file: file.name, size: file.size }, 'file added from the dashboard');
      res.status(201).location(`/api/files/${file.metainfo.infoHashHex}/content`).json(fileView(node, file));
    } catch (err) {
      // The rest of a refused body is not worth reading: close the connection after the answer.
      if (!req.complete) res.setHeader('Connection', 'close');
      const refused = importError(err);
      if (refused) throw refused;
      if (ac.signal.aborted) throw new HttpError(400, 'upload aborted by the client');
      throw err;
    }
  });

  const downloads = { node, log, resolveTimeoutMs };
  torrentUploadRoute(api, downloads);

  api.use(requireJsonType);
  api.use(express.json({ limit: MAX_JSON_BYTES, strict: true, type: ['application/json'] }));

  api.get('/openapi.json', (_req, res) => {
    res.json(openApiDocument());
  });

  api.get('/status', (_req, res) => {
    res.json(statusView(node, init.httpUrl()));
  });

  // ---- peers ------------------------------------------------------------------------------
  api.get('/peers', (req, res) => {
    const { source } = parse(PeersQuerySchema, { source: req.query.source }, 'query parameter "source"');
    res.json({ peers: node.knownPeers(source === 'all' ? undefined : source).map(peerView) });
  });
  api.post('/peers', (req, res) => {
    const { host, port } = parse(AddPeerBodySchema, jsonBody(req));
    const p = node.addPeer(host, port);
    if (!p) throw new HttpError(400, `cannot add ${host}:${port}: not an IP address or host name, or it is this node`);
    log.info({ peer: `${host}:${port}` }, 'peer added from the dashboard');
    res.status(201).json(peerView(p));
  });

  // ---- files ------------------------------------------------------------------------------
  api.get('/files', (_req, res) => {
    node.refreshHolders();
    res.json({ files: fileViews(node) });
  });
  api.get('/files/:infohash/torrent', (req, res) => {
    const h = infohashParam(req);
    const bytes = node.torrentFile(h);
    if (!bytes) throw new HttpError(404, `no file or download with infohash ${h}`);
    const name = node.content(h)?.name ?? h;
    res.setHeader('Content-Type', 'application/x-bittorrent');
    res.setHeader('Content-Disposition', disposition('attachment', `${path.posix.basename(name)}.torrent`));
    res.send(bytes);
  });
  contentRoute(api, { node, log, contentWaitMs });

  // ---- search -----------------------------------------------------------------------------
  api.get('/search', async (req, res) => {
    const { q } = parse(SearchQuerySchema, { q: req.query.q }, 'query parameter "q"');
    const results = await node.search(q);
    res.json({ query: q, results: searchResultViews(node, results) });
  });

  // ---- downloads and seeding --------------------------------------------------------------
  downloadRoutes(api, downloads);

  api.use(settingsRouter({ node, log, tokenInUse: init.tokenInUse, rotateToken: init.rotateToken }));

  api.use((req, _res, next) => next(new HttpError(404, `no route ${req.method} /api${req.path.slice(0, 200)}`)));
  return api;
}

/** Body-parser errors carry `type` and `status`; ours carry `status`; anything else is ours to fix. */
export function describeError(err: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (err instanceof HttpError) return { status: err.status, message: err.message, headers: err.headers };
  const e = err as { type?: string; status?: number; message?: string };
  switch (e.type) {
    case 'entity.too.large':
      return { status: 413, message: `JSON body larger than ${MAX_JSON_BYTES} bytes`, headers: {} };
    case 'entity.parse.failed':
      return { status: 400, message: 'body is not valid JSON', headers: {} };
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return { status: 415, message: e.message ?? 'unsupported body encoding', headers: {} };
    case 'request.aborted':
      return { status: 400, message: 'request aborted', headers: {} };
  }
  if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) return { status: e.status, message: e.message ?? 'bad request', headers: {} };
  return { status: 500, message: 'internal error', headers: {} };
}
