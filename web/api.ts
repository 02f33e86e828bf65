/**
 * The REST API under /api: everything the pages do, for scripts too. Shapes follow
 * web/contract.ts; every input is zod-checked and every failure is `{ "error": "..." }`
 * with a 4xx that says what was wrong (5xx only for our own faults, which are logged).
 *
 * Bodies: JSON routes take at most MAX_JSON_BYTES; `PUT /api/files` streams its raw body
 * straight into node.importFile (never held in memory). File content is served with
 * single Range support, also while a download runs: only verified pieces are sent.
 */
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  HttpError, NotFoundError, AmbiguousTargetError, BadTargetError, MagnetError, MetainfoError, ContentUnavailableError, UnknownContentError,
  BadNameError, ExistsError, NoSpaceError, TooLargeError, SizeMismatchError, checkInput, type Node, type Logger,
} from '../network/index.js';
import {
  AddPeerBodySchema, InfohashSchema, MAX_JSON_BYTES, PeersQuerySchema, SearchQuerySchema, StartDownloadBodySchema, UploadQuerySchema,
  type DownloadView,
} from './contract.js';
import {
  downloadDetailView, downloadView, downloadViews, fileView, fileViews, peerView, searchResultViews, statusView,
} from './views-data.js';
import { openApiDocument } from './openapi.js';
import { STATE_CHANGING } from './auth.js';
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

/** Content types by extension; HTML goes out as text so a shared page cannot run here. */
const CONTENT_TYPES: Record<string, string> = {
  mp4: 'video/mp4', m4v: 'video/mp4', webm: 'video/webm', mkv: 'video/x-matroska',
  mp3: 'audio/mpeg', ogg: 'audio/ogg', oga: 'audio/ogg', flac: 'audio/flac', wav: 'audio/wav',
  pdf: 'application/pdf', txt: 'text/plain; charset=utf-8', md: 'text/plain; charset=utf-8', json: 'application/json',
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif',
  html: 'text/plain; charset=utf-8', htm: 'text/plain; charset=utf-8',
  iso: 'application/x-iso9660-image', zip: 'application/zip',
};

export function contentTypeFor(name: string): string {
  const ext = path.posix.extname(name).slice(1).toLowerCase();
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

/** `inline; filename="..."; filename*=UTF-8''...` (ASCII fallback without quotes or controls). */
export function disposition(kind: 'inline' | 'attachment', name: string): string {
  const base = path.posix.basename(name);
  // eslint-disable-next-line no-control-regex
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const star = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${star}`;
}

/**
 * One `Range` against a file of `length` bytes: the inclusive range to send, 'unsatisfiable'
 * (answer 416), or null to ignore the header (absent, malformed, several ranges: RFC 9110
 * lets a server answer those with the whole file).
 */
export function parseRange(header: string | undefined, length: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || length === 0) return 'unsatisfiable';
    return { start: Math.max(0, length - n), end: length - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? Math.max(start, length - 1) : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return null;
  if (start >= length) return 'unsatisfiable';
  return { start, end: Math.min(end, length - 1) };
}

const parse = checkInput;

const infohashParam = (req: Request) => parse(InfohashSchema, String(req.params.infohash ?? '').toLowerCase(), 'infohash in the path');

function jsonBody(req: Request): unknown {
  if (req.body === undefined) throw new HttpError(415, 'send a JSON body with Content-Type: application/json');
  return req.body as unknown;
}

/** Which failures of Node.download are the asker's, and how: by class, never by message. */
function downloadError(err: Error): HttpError {
  if (err instanceof NotFoundError) return new HttpError(404, err.message);
  if (err instanceof AmbiguousTargetError) return new HttpError(409, err.message);
  if (err instanceof BadTargetError || err instanceof MagnetError) return new HttpError(400, err.message);
  if (err instanceof MetainfoError) return new HttpError(422, err.message);
  return new HttpError(500, `could not start the download: ${err.message}`);
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

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
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

  const findDownload = (h: string): DownloadView | undefined => {
    const d = node.listDownloads().find((x) => x.infohash === h);
    return d ? downloadView(d) : undefined;
  };
  const mustFindDownload = (h: string): DownloadView => {
    const d = findDownload(h);
    if (!d) throw new HttpError(404, `no download with infohash ${h}`);
    return d;
  };

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
  api.get('/files/:infohash/content', async (req, res) => {
    const h = infohashParam(req);
    const c = node.content(h);
    if (!c) throw new HttpError(404, `no file or download with infohash ${h}`);
    const range = parseRange(req.headers.range, c.length);
    res.setHeader('Accept-Ranges', 'bytes');
    if (range === 'unsatisfiable') {
      throw new HttpError(416, `range ${String(req.headers.range).slice(0, 60)} is outside the file (${c.length} bytes)`, { 'Content-Range': `bytes */${c.length}` });
    }
    const describe = () => {
      res.setHeader('Content-Type', contentTypeFor(c.name));
      res.setHeader('Content-Disposition', disposition('inline', c.name));
      res.setHeader('Cache-Control', 'no-cache');
    };
    if (c.length === 0) {
      describe();
      res.status(200).setHeader('Content-Length', '0');
      res.end();
      return;
    }
    let { start, end } = range ?? { start: 0, end: c.length - 1 };
    if (req.method === 'HEAD') {
      describe();
      if (range) res.status(206).setHeader('Content-Range', `bytes ${start}-${end}/${c.length}`);
      res.setHeader('Content-Length', String(end - start + 1));
      res.end();
      return;
    }
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    let stream;
    try {
      ({ stream, end } = await node.readContent(h, start, end, { waitMs: contentWaitMs, signal: ac.signal }));
    } catch (err) {
      if (err instanceof ContentUnavailableError) throw new HttpError(503, err.message, { 'Retry-After': '2' });
      if (err instanceof UnknownContentError) throw new HttpError(404, err.message);
      if (err instanceof RangeError) throw new HttpError(416, err.message, { 'Content-Range': `bytes */${c.length}` });
      if (ac.signal.aborted) return; // the client left while we waited
      throw err;
    }
    describe();
    const partial = range !== null || end < c.length - 1;
    res.status(partial ? 206 : 200);
    if (partial) res.setHeader('Content-Range', `bytes ${start}-${end}/${c.length}`);
    res.setHeader('Content-Length', String(end - start + 1));
    try {
      await pipeline(stream, res);
    } catch (err) {
      if (!ac.signal.aborted) log.warn({ infohash: h, err: (err as Error).message }, 'content: read failed mid-answer');
      res.destroy();
    }
  });

  // ---- search -----------------------------------------------------------------------------
  api.get('/search', async (req, res) => {
    const { q } = parse(SearchQuerySchema, { q: req.query.q }, 'query parameter "q"');
    const results = await node.search(q);
    res.json({ query: q, results: searchResultViews(node, results) });
  });

  // ---- downloads --------------------------------------------------------------------------
  api.get('/downloads', (_req, res) => {
    res.json({ downloads: downloadViews(node) });
  });
  api.post('/downloads', async (req, res) => {
    const { target } = parse(StartDownloadBodySchema, jsonBody(req));
    const peers = node.knownPeers().length;
    const tried = `asked ${peers} known peer${peers === 1 ? '' : 's'}${node.discovery().some((d) => d.source === 'bootstrap') ? ' and the bootstrap index' : ''}`;
    let infohash: string;
    try {
      infohash = await withTimeout(
        node.download(target, { readTorrentFiles: false }),
        resolveTimeoutMs,
        () => new HttpError(404, `nothing found for ${JSON.stringify(target.slice(0, 100))} within ${Math.round(resolveTimeoutMs / 1000)} s (${tried})`),
      );
    } catch (err) {
      if (err instanceof HttpError) throw err;
      const e = downloadError(err as Error);
      if (e.status === 404) e.message = `${e.message} (${tried})`;
      throw e;
    }
    log.info({ target: target.slice(0, 200), infohash }, 'download started from the dashboard');
    const view = findDownload(infohash);
    if (!view) throw new HttpError(500, `the download of ${infohash} did not register`);
    res.status(202).location(`/api/downloads/${infohash}`).json(view);
  });
  api.get('/downloads/:infohash', (req, res) => {
    const h = infohashParam(req);
    const d = node.downloadDetail(h);
    if (!d) throw new HttpError(404, `no download with infohash ${h}`);
    res.json(downloadDetailView(d));
  });
  api.post('/downloads/:infohash/pause', async (req, res) => {
    const h = infohashParam(req);
    const before = mustFindDownload(h);
    if (!(await node.pause(h)) && findDownload(h)?.state !== 'paused') throw new HttpError(409, `cannot pause a download that is ${before.state}`);
    res.json(mustFindDownload(h));
  });
  api.post('/downloads/:infohash/resume', async (req, res) => {
    const h = infohashParam(req);
    const before = mustFindDownload(h);
    if (!(await node.resume(h)) && findDownload(h)?.state !== 'downloading') throw new HttpError(409, `cannot resume a download that is ${before.state}`);
    res.json(mustFindDownload(h));
  });
  api.delete('/downloads/:infohash', async (req, res) => {
    const h = infohashParam(req);
    const before = mustFindDownload(h);
    if (!(await node.cancel(h))) throw new HttpError(409, `cannot cancel a download that is ${before.state}`);
    log.info({ infohash: h }, 'download cancelled from the dashboard');
    res.status(204).end();
  });

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
