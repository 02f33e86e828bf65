/**
 * The download routes of /api: start one (a name, an infohash or a magnet link as JSON, or a
 * .torrent as its raw bytes), list them, look at one, pause, resume, cancel or remove one,
 * and what the node uploads (/api/seeding). Shapes follow web/contract.ts.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  HttpError, NotFoundError, AmbiguousTargetError, BadTargetError, MagnetError, MetainfoError, SelectionError, checkInput, type Node, type Logger,
} from '../network/index.js';
import {
  InfohashSchema, MAX_TORRENT_BODY_BYTES, RemoveDownloadQuerySchema, SelectFilesBodySchema, StartDownloadBodySchema, TORRENT_TYPE, type DownloadView,
} from './contract.js';
import { downloadDetailView, downloadView, downloadViews, seedingView } from './views-data.js';

export interface DownloadRoutesInit {
  node: Node;
  log: Logger;
  /** How long POST /api/downloads may take to find who has a name or infohash. */
  resolveTimeoutMs: number;
}

const infohashParam = (req: Request) => checkInput(InfohashSchema, String(req.params.infohash ?? '').toLowerCase(), 'infohash in the path');

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

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const isTorrentBody = (req: Request) => new RegExp(`^${TORRENT_TYPE}\\s*(;|$)`, 'i').test(req.headers['content-type'] ?? '');
const readTorrentBody = express.raw({ type: () => true, limit: MAX_TORRENT_BODY_BYTES });

/** Start a download of `target` (text or .torrent bytes) and answer 202 with its view. */
async function start(init: DownloadRoutesInit, res: Response, target: string | Buffer, what: string): Promise<void> {
  const { node, log, resolveTimeoutMs } = init;
  const peers = node.knownPeers().length;
  const tried = `asked ${peers} known peer${peers === 1 ? '' : 's'}${node.discovery().some((d) => d.source === 'bootstrap') ? ' and the bootstrap index' : ''}`;
  let infohash: string;
  try {
    infohash = await withTimeout(
      // A remote user's text is never a path of this machine; bytes are never read from one.
      node.download(target, { readTorrentFiles: false }),
      resolveTimeoutMs,
      () => new HttpError(404, `nothing found for ${JSON.stringify(what.slice(0, 100))} within ${Math.round(resolveTimeoutMs / 1000)} s (${tried})`),
    );
  } catch (err) {
    if (err instanceof HttpError) throw err;
    const e = downloadError(err as Error);
    if (e.status === 404) e.message = `${e.message} (${tried})`;
    throw e;
  }
  log.info({ target: what.slice(0, 200), infohash }, 'download started from the dashboard');
  const d = node.listDownloads().find((x) => x.infohash === infohash);
  if (!d) throw new HttpError(500, `the download of ${infohash} did not register`);
  res.status(202).location(`/api/downloads/${infohash}`).json(downloadView(d));
}

/**
 * `POST /api/downloads` with a .torrent body (Content-Type: application/x-bittorrent, at most
 * MAX_TORRENT_BODY_BYTES). Mounted before the JSON body parser; any other body goes on to
 * the JSON route.
 */
export function torrentUploadRoute(api: express.Router, init: DownloadRoutesInit): void {
  api.post(
    '/downloads',
    (req: Request, _res: Response, next: NextFunction) => (isTorrentBody(req) ? next() : next('route')),
    (req: Request, res: Response, next: NextFunction) =>
      readTorrentBody(req, res, (err?: unknown) => {
        const e = err as { type?: string } | undefined;
        if (e?.type === 'entity.too.large') return next(new HttpError(413, `.torrent larger than ${MAX_TORRENT_BODY_BYTES} bytes`));
        next(err);
      }),
    async (req: Request, res: Response) => {
      const bytes = req.body as unknown;
      if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new HttpError(400, `send the .torrent file as the body (Content-Type: ${TORRENT_TYPE})`);
      await start(init, res, bytes, `.torrent of ${bytes.length} bytes`);
    },
  );
}

export function downloadRoutes(api: express.Router, init: DownloadRoutesInit): void {
  const { node, log } = init;
  const findDownload = (h: string): DownloadView | undefined => {
    const d = node.listDownloads().find((x) => x.infohash === h);
    return d ? downloadView(d) : undefined;
  };
  const mustFindDownload = (h: string): DownloadView => {
    const d = findDownload(h);
    if (!d) throw new HttpError(404, `no download with infohash ${h}`);
    return d;
  };

  api.get('/downloads', (_req, res) => {
    res.json({ downloads: downloadViews(node) });
  });
  api.post('/downloads', async (req, res) => {
    const { target } = checkInput(StartDownloadBodySchema, jsonBody(req));
    await start(init, res, target, target);
  });
  api.get('/downloads/:infohash', (req, res) => {
    const h = infohashParam(req);
    const d = node.downloadDetail(h);
    if (!d) throw new HttpError(404, `no download with infohash ${h}`);
    res.json(downloadDetailView(d));
  });
  api.patch('/downloads/:infohash', async (req, res) => {
    const h = infohashParam(req);
    const { files } = checkInput(SelectFilesBodySchema, jsonBody(req));
    const before = mustFindDownload(h);
    try {
      if (!(await node.select(h, files))) throw new HttpError(409, `the download is ${before.state === 'done' ? 'done: its files are in place' : before.state}; only a download in progress can change its files`);
    } catch (err) {
      if (err instanceof SelectionError) throw new HttpError(400, err.message);
      throw err;
    }
    log.info({ infohash: h, files: files?.length ?? 'all' }, 'download selection changed from the dashboard');
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
    const { data } = checkInput(RemoveDownloadQuerySchema, { data: req.query.data }, 'query parameter "data"');
    const before = mustFindDownload(h);
    if (before.state === 'downloading' || before.state === 'paused') {
      if (data === 'keep') throw new HttpError(409, `a download that is ${before.state} cannot be removed keeping its data (only verified pieces are there): pause it, or cancel it`);
      if (!(await node.cancel(h))) throw new HttpError(409, `cannot cancel a download that is ${findDownload(h)?.state ?? 'gone'}`);
      log.info({ infohash: h }, 'download cancelled from the dashboard');
    } else {
      if (data === undefined) {
        throw new HttpError(400, `the download is ${before.state}: say what to do with its file, ?data=keep (take it off the list, keep the file shared) or ?data=delete (delete the file too)`);
      }
      if (!(await node.remove(h, { deleteData: data === 'delete' }))) throw new HttpError(409, `cannot remove a download that is ${findDownload(h)?.state ?? 'gone'}`);
      log.info({ infohash: h, data }, 'download removed from the dashboard');
    }
    res.status(204).end();
  });

  api.get('/seeding', (_req, res) => {
    res.json(seedingView(node));
  });
}
