/**
 * HTTP tracker client (BEP 3, compact peers per BEP 23, IPv6 `peers6` per BEP 7): the
 * announce over HTTP and the loop that keeps a torrent announced. The query and the answer's
 * format live in network/wire/tracker-codec.ts.
 *
 * The tracker is a remote party: its answer is size-capped here and decoded defensively by
 * the codec, which checks every peer entry before anyone dials it.
 */
import http from 'node:http';
import https from 'node:https';
import { EventEmitter } from 'node:events';
import { silentLogger, type Logger } from '../util/log.js';
import { localAddresses } from '../util/addresses.js';
import { TimeoutError } from '../util/errors.js';
import { announceUrl, parseAnnounceResponse, TrackerError, type AnnounceQuery, type AnnounceResult } from '../wire/tracker-codec.js';

export { TrackerError, type AnnounceResult } from '../wire/tracker-codec.js';

export interface AnnounceRequest extends AnnounceQuery {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * Headers for this announce's URL (path and query as sent), or none: a private swarm's
   * bootstrap tracker takes announces that carry the swarm's HMAC (network/wire/request-auth.ts).
   */
  headers?: (target: string, url: URL) => Record<string, string> | undefined;
}

export const DEFAULT_ANNOUNCE_TIMEOUT_MS = 10_000;
/** Largest tracker answer we read: far more than any honest peer list needs. */
export const MAX_TRACKER_RESPONSE = 1024 * 1024;

/** One announce. Rejects with TrackerError, TimeoutError, a socket error, or the signal's reason. */
export async function announce(req: AnnounceRequest): Promise<AnnounceResult> {
  const url = new URL(announceUrl(req));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TrackerError(`unsupported tracker protocol ${url.protocol}`);
  const extra = req.headers?.(`${url.pathname}${url.search}`, url);
  const { status, body } = await httpGet(url, req.timeoutMs ?? DEFAULT_ANNOUNCE_TIMEOUT_MS, req.signal, extra);
  return parseAnnounceResponse(body, status);
}

/** GET with a body cap, a timeout and an abort signal; no redirects, no keep-alive. */
function httpGet(url: URL, timeoutMs: number, signal?: AbortSignal, extra?: Record<string, string>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const get = url.protocol === 'https:' ? https.get : http.get;
    let settled = false;
    const finish = (err: unknown, value?: { status: number; body: Buffer }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      request.destroy();
      if (value) resolve(value);
      else reject(err);
    };
    const onAbort = () => finish(signal?.reason);
    let answered = false;
    const request = get(url, { agent: false, headers: { ...extra, 'user-agent': 'Shoal/0.1', connection: 'close', 'accept-encoding': 'identity' } }, (res) => {
      answered = true;
      const declared = Number(res.headers['content-length']);
      if (declared > MAX_TRACKER_RESPONSE) return finish(new TrackerError(`tracker answer larger than ${MAX_TRACKER_RESPONSE} bytes`));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_TRACKER_RESPONSE) return finish(new TrackerError(`tracker answer larger than ${MAX_TRACKER_RESPONSE} bytes`));
        chunks.push(chunk);
      });
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', (err) => finish(err));
      res.on('close', () => {
        if (!res.complete) finish(new TrackerError(`tracker ${url.host} closed the connection in the middle of its answer`));
      });
    });
    const timer = setTimeout(() => finish(new TimeoutError(`tracker ${url.host} did not answer within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('error', (err) => finish(err));
    request.on('close', () => {
      if (!answered) finish(new TrackerError(`tracker ${url.host} closed the connection before answering`));
    });
  });
}

// ---- TrackerClient ---------------------------------------------------------------------

export interface TrackerStats {
  uploaded: number;
  downloaded: number;
  left: number;
}

export interface TrackerClientInit {
  urls: string[];
  infoHash: Buffer;
  peerId: Buffer;
  /** The peer port we listen on. */
  port: number;
  stats: () => TrackerStats;
  logger?: Logger;
  /** Floor under the tracker's interval, so no tracker makes us hammer it. 30 s by default. */
  minIntervalMs?: number;
  /** First retry after a failed announce; doubles up to `retryMaxMs`. 15 s by default. */
  retryMs?: number;
  retryMaxMs?: number;
  /** How long `stop()` waits for the `stopped` announces. 2 s by default. */
  stopTimeoutMs?: number;
  timeoutMs?: number;
  numwant?: number;
  /** Headers an announce to a given tracker carries (see AnnounceRequest.headers). */
  headers?: AnnounceRequest['headers'];
}

export interface TrackerClientEvents {
  peer: [peer: { host: string; port: number; source: 'tracker' }];
  /** A successful announce, for status displays and tests. */
  announce: [info: { url: string; event?: AnnounceRequest['event']; result: AnnounceResult }];
  /** A failed announce (already logged): not 'error', which would crash an unlistened emitter. */
  failure: [info: { url: string; error: Error }];
}

export const DEFAULT_MIN_INTERVAL_MS = 30_000;
export const DEFAULT_RETRY_MS = 15_000;
export const DEFAULT_RETRY_MAX_MS = 30 * 60_000;
export const DEFAULT_STOP_TIMEOUT_MS = 2_000;

/** Per-URL state: each tracker has its own schedule and its own health. */
interface Tracker {
  url: string;
  /** The tracker has accepted our `started`, so it knows us and should hear `stopped`. */
  joined: boolean;
  /** `complete()` was called and this tracker has not yet heard that we are a seeder. */
  owesCompleted: boolean;
  failures: number;
  lastError: string | null;
  timer: NodeJS.Timeout | null;
  inflight: AbortController | null;
}

/**
 * Keeps one torrent announced to each of its HTTP trackers: `started` at `start()`, then
 * again on each tracker's interval, `completed` once, `stopped` at `stop()`. A tracker that
 * fails is retried with back-off; each distinct failure is logged once at warn.
 * start() and stop() are idempotent, and a stopped client stays stopped.
 */
export class TrackerClient extends EventEmitter<TrackerClientEvents> {
  private readonly trackers: Tracker[];
  private readonly log: Logger;
  private state: 'idle' | 'running' | 'stopped' = 'idle';
  private completedSent = false;
  private stopping: Promise<void> | null = null;

  constructor(private readonly init: TrackerClientInit) {
    super();
    this.log = init.logger ?? silentLogger();
    const urls = [...new Set(init.urls)].filter((u) => /^https?:\/\//i.test(u));
    this.trackers = urls.map((url) => ({ url, joined: false, owesCompleted: false, failures: 0, lastError: null, timer: null, inflight: null }));
  }

  start(): void {
    if (this.state !== 'idle') return;
    this.state = 'running';
    for (const t of this.trackers) void this.run(t, 'started');
  }

  /** Tell every tracker we now have the whole file (once). */
  complete(): void {
    if (this.state !== 'running' || this.completedSent) return;
    this.completedSent = true;
    for (const t of this.trackers) {
      t.owesCompleted = true;
      // An announce in flight schedules the `completed` itself when it returns.
      if (t.inflight) continue;
      this.clearTimer(t);
      void this.run(t, this.nextEvent(t));
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const wasRunning = this.state === 'running';
    this.state = 'stopped';
    // A `started` cut short may still have reached the tracker: tell that one too.
    const told = this.trackers.filter((t) => t.joined || t.inflight !== null);
    for (const t of this.trackers) {
      this.clearTimer(t);
      t.inflight?.abort();
    }
    if (!wasRunning) return;
    const timeoutMs = this.init.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    await Promise.allSettled(told.map((t) => announce({ ...this.request(t.url, 'stopped'), timeoutMs })));
  }

  private async run(t: Tracker, event?: AnnounceRequest['event']): Promise<void> {
    const controller = new AbortController();
    t.inflight = controller;
    let next: number;
    try {
      const req = this.request(t.url, event);
      const result = await announce({ ...req, signal: controller.signal });
      if (this.state !== 'running') return;
      t.joined = true;
      // A `started` with left=0 already says we seed, so it settles the `completed` too.
      if (event === 'completed' || (event === 'started' && req.left === 0)) t.owesCompleted = false;
      if (t.lastError !== null) this.log.info({ tracker: t.url }, 'tracker reachable again');
      t.failures = 0;
      t.lastError = null;
      if (result.warning) this.log.warn({ tracker: t.url, warning: result.warning }, 'tracker warning');
      this.log.debug({ tracker: t.url, event, peers: result.peers.length, interval: result.interval }, 'announced');
      this.emit('announce', { url: t.url, event, result });
      const self = localAddresses();
      for (const p of result.peers) {
        // Trackers list the asker too (opentracker does): dialling ourselves wastes a connection.
        if (p.port === this.init.port && self.has(p.host)) continue;
        this.emit('peer', { host: p.host, port: p.port, source: 'tracker' });
      }
      next = t.owesCompleted ? 0 : Math.max(result.interval * 1000, (result.minInterval ?? 0) * 1000, this.init.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS);
    } catch (err) {
      if (this.state !== 'running') return;
      const error = err instanceof Error ? err : new Error(String(err));
      if (error.message !== t.lastError) this.log.warn({ tracker: t.url, err: error.message }, 'tracker announce failed; will retry');
      else this.log.debug({ tracker: t.url, err: error.message, failures: t.failures + 1 }, 'tracker announce failed again');
      t.lastError = error.message;
      t.failures++;
      this.emit('failure', { url: t.url, error });
      const base = this.init.retryMs ?? DEFAULT_RETRY_MS;
      next = Math.min(this.init.retryMaxMs ?? DEFAULT_RETRY_MAX_MS, base * 2 ** Math.min(t.failures - 1, 20));
    } finally {
      if (t.inflight === controller) t.inflight = null;
    }
    t.timer = setTimeout(() => {
      t.timer = null;
      void this.run(t, this.nextEvent(t));
    }, next);
    t.timer.unref();
  }

  /** Until a tracker has accepted `started`, every retry is still a `started`. */
  private nextEvent(t: Tracker): AnnounceRequest['event'] {
    if (!t.joined) return 'started';
    return t.owesCompleted ? 'completed' : undefined;
  }

  private request(url: string, event?: AnnounceRequest['event']): AnnounceRequest {
    const s = this.init.stats();
    return {
      url,
      infoHash: this.init.infoHash,
      peerId: this.init.peerId,
      port: this.init.port,
      uploaded: s.uploaded,
      downloaded: s.downloaded,
      left: s.left,
      event,
      numwant: this.init.numwant,
      timeoutMs: this.init.timeoutMs,
      headers: this.init.headers,
    };
  }

  private clearTimer(t: Tracker): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
  }
}
