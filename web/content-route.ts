/**
 * `GET|HEAD /api/files/:infohash/content`: a file's bytes, also while it downloads. A
 * multi-file torrent's files are read one at a time: `?file=N`, N its index in the torrent
 * (the download's `fileList`); asked without one, such a torrent answers 400.
 *
 * - With one `Range`: 206 with that range, or, while the file downloads, with the part of it
 *   that is verified so far (Content-Range says how much): what a video element wants, it
 *   asks again for the rest.
 * - Without `Range` (curl, wget, a browser's "save as"): the whole file, 200 with the whole
 *   Content-Length, also while it downloads: each missing piece is fetched first and awaited
 *   as the body reaches it. When one does not come within the wait, the connection is cut,
 *   so the client sees an incomplete body (curl exits 18), never a short one that looks
 *   complete. 503 with Retry-After when even the first piece does not come, or the download
 *   is paused or failed with pieces missing.
 */
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type express from 'express';
import type { Request, Response } from 'express';
import { HttpError, ContentUnavailableError, UnknownContentError, checkInput, type Node, type Logger } from '../network/index.js';
import { ContentQuerySchema, InfohashSchema } from './contract.js';

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

export interface ContentRouteInit {
  node: Node;
  log: Logger;
  /** How long to wait for a piece not verified yet (the first of a range; each one of a whole file). */
  contentWaitMs: number;
}

export function contentRoute(api: express.Router, init: ContentRouteInit): void {
  const { node, log, contentWaitMs } = init;
  api.get('/files/:infohash/content', async (req: Request, res: Response) => {
    const h = checkInput(InfohashSchema, String(req.params.infohash ?? '').toLowerCase(), 'infohash in the path');
    const { file } = checkInput(ContentQuerySchema, { file: req.query.file }, 'query parameter "file"');
    const c = node.content(h, file);
    if (!c) throw new HttpError(404, file === undefined ? `no file or download with infohash ${h}` : `${h} has no file ${file}`);
    if (c.multiFile && file === undefined) throw new HttpError(400, `${c.name} is a folder of ${c.files} files: read one with ?file=N (0 to ${c.files - 1}; GET /api/downloads/${h} lists them)`);
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
    // Without Range the client wants the whole file: follow the download to its end.
    const whole = range === null;
    let stream;
    try {
      ({ stream, end } = await node.readContent(h, start, end, { waitMs: contentWaitMs, signal: ac.signal, follow: whole, file }));
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
      if (!ac.signal.aborted || err instanceof ContentUnavailableError) {
        const why = err instanceof ContentUnavailableError ? 'content: a piece did not come in time: answer cut short' : 'content: read failed mid-answer';
        log.warn({ infohash: h, err: (err as Error).message }, why);
      }
      // The status is gone: cutting the connection is the only way to say the body is incomplete.
      res.destroy();
    }
  });
}
