/**
 * HTTP tracker client (BEP 3, compact peers per BEP 23, IPv6 `peers6` per BEP 7).
 *
 *   GET <announce>?info_hash=%xx..&peer_id=%xx..&port=N&uploaded=N&downloaded=N&left=N
 *                  &compact=1&numwant=N[&event=started|completed|stopped]
 *   → bencoded dict: `interval`, `min interval`?, `complete`?, `incomplete`?,
 *     `peers` (6-byte compact entries, or a list of {ip, port} dicts), `peers6`?,
 *     `warning message`?, or just `failure reason`.
 *
 * The tracker is a remote party: its answer is size-capped, decoded defensively, and every
 * peer entry it names is checked before anyone dials it.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { EventEmitter } from 'node:events';
import bencode from 'bencode';
import { silentLogger, type Logger } from '../util/log.js';
import { localAddresses } from '../util/addresses.js';
import { TimeoutError } from '../util/errors.js';

export interface AnnounceRequest {
  url: string;
  infoHash: Buffer;
  peerId: Buffer;
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  event?: 'started' | 'completed' | 'stopped';
  numwant?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface AnnounceResult {
  /** Seconds until the tracker wants to hear from us again. */
  interval: number;
  minInterval?: number;
  complete?: number;
  incomplete?: number;
  peers: Array<{ host: string; port: number }>;
  warning?: string;
}

export const DEFAULT_ANNOUNCE_TIMEOUT_MS = 10_000;
export const DEFAULT_NUMWANT = 50;
/** Largest tracker answer we read: far more than any honest peer list needs. */
export const MAX_TRACKER_RESPONSE = 1024 * 1024;
/** Interval assumed when a tracker sends none (30 min, the customary default). */
const DEFAULT_INTERVAL_S = 1800;
/** Longest interval we honour: a day, which also keeps setTimeout in range. */
const MAX_INTERVAL_S = 24 * 3600;
const MAX_TRACKER_PEERS = 1000;

/** The tracker refused us (its `failure reason`) or answered something that is not a tracker answer. */
export class TrackerError extends Error {
  override name = 'TrackerError';
}

/** Percent-encode every byte that is not unreserved: raw binary, not UTF-8 of a string. */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const unreserved = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function announceUrl(req: AnnounceRequest): string {
  if (req.infoHash.length !== 20 || req.peerId.length !== 20) throw new TypeError('info_hash and peer_id must be 20 bytes');
  const params = [
    `info_hash=${percentEncodeBytes(req.infoHash)}`,
    `peer_id=${percentEncodeBytes(req.peerId)}`,
    `port=${req.port}`,
    `uploaded=${Math.max(0, Math.floor(req.uploaded))}`,
    `downloaded=${Math.max(0, Math.floor(req.downloaded))}`,
    `left=${Math.max(0, Math.floor(req.left))}`,
    'compact=1',
    `numwant=${req.numwant ?? DEFAULT_NUMWANT}`,
  ];
  if (req.event) params.push(`event=${req.event}`);
  // A tracker URL may carry its own query (a passkey): extend it, keep any fragment out.
  const base = req.url.split('#')[0]!;
  return base + (base.includes('?') ? '&' : '?') + params.join('&');
}

/** One announce. Rejects with TrackerError, TimeoutError, a socket error, or the signal's reason. */
export async function announce(req: AnnounceRequest): Promise<AnnounceResult> {
  const url = new URL(announceUrl(req));
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TrackerError(`unsupported tracker protocol ${url.protocol}`);
  const { status, body } = await httpGet(url, req.timeoutMs ?? DEFAULT_ANNOUNCE_TIMEOUT_MS, req.signal);
  return parseAnnounceResponse(body, status);
}

/** Decode a tracker's answer; `status` is the HTTP status it came with. */
export function parseAnnounceResponse(body: Buffer, status = 200): AnnounceResult {
  let decoded: unknown;
  try {
    decoded = bencode.decode(body);
  } catch {
    decoded = undefined;
  }
  if (!isDict(decoded)) {
    throw new TrackerError(status === 200 ? 'tracker answer is not a bencoded dictionary' : `tracker answered HTTP ${status}`);
  }
  const failure = decoded['failure reason'];
  if (failure !== undefined) throw new TrackerError(text(failure, 1024) ?? 'tracker failed without a reason');
  if (status !== 200) throw new TrackerError(`tracker answered HTTP ${status}`);
  const interval = count(decoded.interval);
  const minInterval = count(decoded['min interval']);
  const result: AnnounceResult = {
    interval: Math.min(MAX_INTERVAL_S, interval && interval > 0 ? interval : DEFAULT_INTERVAL_S),
    peers: [],
  };
  if (minInterval !== undefined) result.minInterval = Math.min(MAX_INTERVAL_S, minInterval);
  const complete = count(decoded.complete);
  const incomplete = count(decoded.incomplete);
  if (complete !== undefined) result.complete = complete;
  if (incomplete !== undefined) result.incomplete = incomplete;
  const warning = text(decoded['warning message'], 1024);
  if (warning !== undefined) result.warning = warning;
  const seen = new Set<string>();
  const add = (host: string, port: number) => {
    const key = `${host}|${port}`;
    if (port < 1 || port > 65535 || seen.has(key) || result.peers.length >= MAX_TRACKER_PEERS) return;
    seen.add(key);
    result.peers.push({ host, port });
  };
  const peers = decoded.peers;
  if (peers instanceof Uint8Array) {
    for (let i = 0; i + 6 <= peers.length; i += 6) add(`${peers[i]}.${peers[i + 1]}.${peers[i + 2]}.${peers[i + 3]}`, (peers[i + 4]! << 8) | peers[i + 5]!);
  } else if (Array.isArray(peers)) {
    for (const p of peers) {
      if (!isDict(p)) continue;
      const host = text(p.ip, 255);
      const port = count(p.port);
      if (host !== undefined && port !== undefined && net.isIP(host) !== 0) add(host.toLowerCase(), port);
    }
  }
  const peers6 = decoded.peers6;
  if (peers6 instanceof Uint8Array) {
    for (let i = 0; i + 18 <= peers6.length; i += 18) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(((peers6[i + 2 * g]! << 8) | peers6[i + 2 * g + 1]!).toString(16));
      // Round-trip through URL to get the canonical compressed form ("::1", not "0:0:...:1").
      add(new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1), (peers6[i + 16]! << 8) | peers6[i + 17]!);
    }
  }
  return result;
}

/** GET with a body cap, a timeout and an abort signal; no redirects, no keep-alive. */
function httpGet(url: URL, timeoutMs: number, signal?: AbortSignal): Promise<{ status: number; body: Buffer }> {
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
    const request = get(url, { agent: false, headers: { 'user-agent': 'Shoal/0.1', connection: 'close', 'accept-encoding': 'identity' } }, (res) => {
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

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function text(v: unknown, max: number): string | undefined {
  if (!(v instanceof Uint8Array)) return undefined;
  return Buffer.from(v.subarray(0, max)).toString('utf8');
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
    };
  }

  private clearTimer(t: Tracker): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
  }
}
