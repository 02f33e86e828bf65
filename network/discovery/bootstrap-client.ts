/**
 * The node's side of the bootstrap server (routes in network/wire/bootstrap-api.ts), as one
 * more PeerDiscovery source: register at start, heartbeat at the interval the server asks
 * for, publish what we share and download, unregister at stop.
 *
 * Every answer names the other nodes: each is a `peer` sighting, and a node missing from a
 * complete list is `lost` ('expired'); when the server has been gone a whole TTL, every
 * node it named is `lost` ('gone': nobody vouches, though they may well be alive). When the server cannot be reached the source says so in
 * its health, warns once, retries with back-off (1 s doubling to 30 s), and re-registers by
 * itself when the server returns; multicast carries on meanwhile. Every answer is checked
 * against the schemas: a server that answers nonsense is a warning, never a crash.
 *
 * Every request is signed with the node's key (network/wire/request-auth.ts), so the server
 * knows the node id it acts for is ours; in a private swarm it carries the swarm's HMAC too.
 * A client whose clock is off signs with the server's time instead (the server answers
 * with its own, X-Shoal-Time).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import { silentLogger, type Logger } from '../util/log.js';
import type { DiscoveryHealth, HealthState, PeerDiscovery, PeerDiscoveryEvents, PeerSource } from './discovery.js';
import {
  DownloadSchema, FileEntrySchema, RegisterResponseSchema, ReportResponseSchema, SearchResponseSchema, ErrorResponseSchema,
  MAX_ANSWER_BYTES, MAX_DOWNLOADS_PER_NODE, MAX_FILES_PER_NODE, describeIssue,
  type Download, type FileEntry, type RegisterBody, type RegisterResponse, type SearchHit,
} from '../wire/bootstrap-api.js';
import type { z } from 'zod';
import { Cooldown } from '../util/cooldown.js';
import { TimeoutError } from '../util/errors.js';
import { AUTH_HEADERS, PROOF_HEADER, authHeaders, checkAnswerProof, type RequestSigner } from '../wire/request-auth.js';

export interface PublishedState {
  files: FileEntry[];
  downloads: Download[];
}

export interface BootstrapClientInit {
  /** http://host:port of the server (a trailing slash is fine). */
  url: string;
  self: { id: string; instance: string; name?: string; port: number; host?: string };
  /** The key `self.id` derives from: every request is signed with it. */
  signer: RequestSigner & { readonly id: string };
  /** The swarm's bootstrap key (network/security/secret.ts) in a private swarm. */
  bootstrapKey?: Buffer;
  /** What we share and download right now; read at every register and heartbeat. */
  state: () => PublishedState;
  logger?: Logger;
  /** Per request. 5 s by default. */
  timeoutMs?: number;
  retryMs?: number;
  retryMaxMs?: number;
  /** publishSoon() sends at most this often. 1 s by default. */
  publishMinIntervalMs?: number;
  /** How long stop() waits for the unregister. 1 s by default. */
  stopTimeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_RETRY_MS = 1000;
export const DEFAULT_RETRY_MAX_MS = 30_000;
export const DEFAULT_PUBLISH_MIN_INTERVAL_MS = 1000;
export const DEFAULT_STOP_TIMEOUT_MS = 1000;
/** Until the server says otherwise. */
const INITIAL_HEARTBEAT_MS = 30_000;
const REPORT_EVERY_MS = 60_000;
/** A server clock this far from ours is followed when signing (the server allows minutes). */
const CLOCK_OFFSET_MIN_MS = 2_000;

/** The server refused (status set), answered nonsense, or could not be reached. */
export class BootstrapError extends Error {
  override name = 'BootstrapError';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export class BootstrapClient extends EventEmitter<PeerDiscoveryEvents> implements PeerDiscovery {
  readonly source: PeerSource = 'bootstrap';
  readonly url: string;
  private readonly log: Logger;
  private running = false;
  private starting: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private registered = false;
  private timer: NodeJS.Timeout | null = null;
  private nextAt = 0;
  private inflight: { controller: AbortController; done: Promise<void> } | null = null;
  private publishPending = false;
  private lastSend = 0;
  /** Digest of the files the server last accepted: heartbeats carry files only when it changes. */
  private filesKey: string | null = null;
  private heartbeatMs = INITIAL_HEARTBEAT_MS;
  private ttlMs = 3 * INITIAL_HEARTBEAT_MS;
  private failures = 0;
  private outageSince: number | null = null;
  private readonly known = new Map<string, number>();
  /** Nodes we reported unreachable lately: each at most once per REPORT_EVERY_MS. */
  private readonly reported = new Cooldown(REPORT_EVERY_MS, 1000);
  private state: DiscoveryHealth = { state: 'stopped', since: Date.now() };
  /** The server's clock minus ours, when they differ by more than CLOCK_OFFSET_MIN_MS. */
  private clockOffsetMs = 0;
  /** In a private swarm: the server has proven it holds the secret (until then we send it none of our files). */
  private proven = false;

  constructor(private readonly init: BootstrapClientInit) {
    super();
    this.url = init.url.replace(/\/+$/, '');
    this.log = init.logger ?? silentLogger();
    if (init.signer.id !== init.self.id) throw new RangeError(`node id ${init.self.id} is not the id of the key that signs for it (${init.signer.id})`);
  }

  /**
   * Headers that authenticate a request to this server (signed; the HMAC in a private
   * swarm): for the tracker announces of a private swarm, which go to the same server.
   */
  authorize(method: string, target: string, body?: string): Record<string, string> {
    return authHeaders({ method, target, body }, { signer: this.init.signer, macKey: this.init.bootstrapKey, now: Date.now() + this.clockOffsetMs });
  }

  /**
   * In a private swarm, the headers an announce to this server's tracker needs (its HMAC);
   * none for another tracker, or in an open swarm (the server asks nothing of announces).
   */
  trackerHeaders(url: URL, target: string): Record<string, string> | undefined {
    if (!this.init.bootstrapKey || url.origin !== new URL(this.url).origin) return undefined;
    return this.authorize('GET', target);
  }

  /** The server's tracker: add it to a torrent's trackers so real clients and we meet there. */
  get trackerUrl(): string {
    return `${this.url}/announce`;
  }

  health(): DiscoveryHealth {
    return { ...this.state };
  }

  /** Registers (one attempt, bounded by the timeout) and resolves, registered or retrying. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      if (this.stopping) await this.stopping;
      if (this.running) return;
      this.running = true;
      this.failures = 0;
      this.setHealth('starting');
      await this.tick();
    })().finally(() => (this.starting = null));
    return this.starting;
  }

  /** Unregisters (best effort, short timeout), then releases timers. Idempotent. */
  stop(): Promise<void> {
    // start() sets `running` synchronously, so a stop right after a start aborts its register.
    this.stopping ??= (async () => {
      if (!this.running) return;
      this.running = false;
      this.clearTimer();
      this.inflight?.controller.abort();
      await this.inflight?.done;
      if (this.registered) {
        this.registered = false;
        const instance = encodeURIComponent(this.init.self.instance);
        await this.request('DELETE', `/api/nodes/${encodeURIComponent(this.init.self.id)}?instance=${instance}`, undefined, this.init.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS).catch(
          (err: Error) => this.log.debug({ err: err.message }, 'bootstrap: unregister failed'),
        );
      }
      this.filesKey = null;
      // Our sightings die with us (the server may be switched off at run time): the registry keeps a peer only while some source vouches.
      for (const id of this.known.keys()) this.emit('lost', id, 'gone');
      this.known.clear();
      this.setHealth('stopped');
    })().finally(() => (this.stopping = null));
    return this.stopping;
  }

  /** Our files or downloads changed: tell the server soon (at most once per second). */
  publishSoon(): void {
    if (!this.running || !this.registered) return;
    if (this.inflight) {
      this.publishPending = true;
      return;
    }
    this.schedule(Math.max(0, this.lastSend + (this.init.publishMinIntervalMs ?? DEFAULT_PUBLISH_MIN_INTERVAL_MS) - Date.now()));
  }

  /** The server's index: files whose name contains `query`, with the nodes that share them. */
  async search(query: string): Promise<SearchHit[]> {
    const answer = await this.request('GET', `/api/search?q=${encodeURIComponent(query)}`);
    return check(SearchResponseSchema, answer, 'search').files;
  }

  /** We cannot reach node `id`: tell the server (at most once a minute per node). Resolves with whether it dropped it. */
  async report(id: string): Promise<boolean> {
    if (id === this.init.self.id || !this.reported.take(id)) return false;
    const answer = await this.request('POST', `/api/nodes/${encodeURIComponent(id)}/reports`, { reporter: this.init.self.id });
    return check(ReportResponseSchema, answer, 'report').dropped;
  }

  // ---- the loop -------------------------------------------------------------------------

  private async tick(): Promise<void> {
    this.timer = null;
    if (!this.running || this.inflight) return;
    const controller = new AbortController();
    let finish!: () => void;
    this.inflight = { controller, done: new Promise((r) => (finish = r)) };
    this.publishPending = false;
    try {
      const { files, downloads } = this.published();
      const key = digest(files);
      const wasRegistered = this.registered;
      let withheld = false;
      let answer: RegisterResponse;
      this.lastSend = Date.now();
      if (wasRegistered) {
        const body = { instance: this.init.self.instance, downloads, ...(key === this.filesKey ? {} : { files }) };
        answer = check(RegisterResponseSchema, await this.request('PUT', `/api/nodes/${encodeURIComponent(this.init.self.id)}`, body, undefined, controller.signal), 'heartbeat');
      } else {
        const { id, instance, name, port, host } = this.init.self;
        // A private swarm's server must prove the secret before it hears what we share.
        withheld = this.init.bootstrapKey !== undefined && !this.proven;
        const body: RegisterBody = { id, instance, name: (name ?? '').slice(0, 64), port, files: withheld ? [] : files, downloads: withheld ? [] : downloads, ...(host ? { host } : {}) };
        answer = check(RegisterResponseSchema, await this.request('POST', '/api/nodes', body, undefined, controller.signal), 'register');
      }
      if (!this.running) return;
      this.registered = true;
      this.filesKey = withheld ? null : key;
      if (withheld) this.publishPending = true;
      this.succeeded(answer, wasRegistered);
      this.schedule(withheld ? 0 : this.publishPending ? (this.init.publishMinIntervalMs ?? DEFAULT_PUBLISH_MIN_INTERVAL_MS) : this.heartbeatMs);
    } catch (err) {
      if (!this.running) return;
      const error = err instanceof BootstrapError ? err : describeNetworkError(err, this.url, this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      // Unknown (the server forgot us) or not ours any more: register again straight away.
      if (this.registered && (error.status === 404 || error.status === 403)) {
        this.log.info({ reason: error.message }, 'bootstrap: registering again');
        this.registered = false;
        this.filesKey = null;
        this.schedule(0);
        return;
      }
      this.failed(error);
    } finally {
      this.inflight = null;
      finish();
    }
  }

  private succeeded(answer: RegisterResponse, heartbeat: boolean): void {
    if (this.outageSince !== null) this.log.info({ server: this.url, after: `${Math.round((Date.now() - this.outageSince) / 1000)} s` }, 'bootstrap server reachable again');
    else if (!heartbeat) this.log.debug({ server: this.url, nodes: answer.nodes.length }, 'bootstrap: registered');
    this.outageSince = null;
    this.failures = 0;
    this.heartbeatMs = answer.heartbeatMs;
    this.ttlMs = answer.ttlMs;
    this.setHealth('ok', `registered with ${this.url} as ${answer.self.host}:${answer.self.port}`, Date.now());
    const now = Date.now();
    const listed = new Set<string>();
    for (const n of answer.nodes) {
      if (n.id === this.init.self.id) continue; // a server that lists us to ourselves
      listed.add(n.id);
      this.known.set(n.id, now);
      this.emit('peer', { id: n.id, host: n.host, port: n.port, name: n.name, instance: n.instance });
    }
    // A truncated list says nothing about who is missing: those fade after the TTL instead.
    for (const [id, seen] of this.known) {
      if (listed.has(id) || (answer.truncated && now - seen < this.ttlMs)) continue;
      this.known.delete(id);
      this.emit('lost', id, 'expired');
    }
  }

  private failed(error: BootstrapError): void {
    const now = Date.now();
    this.failures++;
    if (this.outageSince === null) {
      this.outageSince = now;
      this.log.warn({ server: this.url, err: error.message }, 'bootstrap server unavailable; working on multicast and retrying');
    } else this.log.debug({ server: this.url, err: error.message, failures: this.failures }, 'bootstrap: still unavailable');
    this.setHealth('failing', error.message);
    // A server that comes back may have lost our last publish (it saves with a delay): resend.
    this.filesKey = null;
    // Nobody vouches for the nodes we heard of once the server has been gone a whole TTL.
    if (now - this.outageSince >= this.ttlMs) {
      for (const id of this.known.keys()) this.emit('lost', id, 'gone');
      this.known.clear();
    }
    const base = this.init.retryMs ?? DEFAULT_RETRY_MS;
    this.schedule(Math.min(this.init.retryMaxMs ?? DEFAULT_RETRY_MAX_MS, base * 2 ** Math.min(this.failures - 1, 20)));
  }

  /** The state, trimmed to what the server accepts, so one odd file cannot get us refused. */
  private published(): PublishedState {
    const s = this.init.state();
    const files = s.files.filter((f) => FileEntrySchema.safeParse(f).success).slice(0, MAX_FILES_PER_NODE);
    const downloads = s.downloads
      .map((d) => ({ ...d, progress: Math.min(1, Math.max(0, Number.isFinite(d.progress) ? d.progress : 0)) }))
      .filter((d) => DownloadSchema.safeParse(d).success)
      .slice(0, MAX_DOWNLOADS_PER_NODE);
    return { files, downloads };
  }

  /** Run the loop in `ms`, or sooner if it was already due sooner. */
  private schedule(ms: number): void {
    if (!this.running) return;
    const at = Date.now() + ms;
    if (this.timer && this.nextAt <= at) return;
    this.clearTimer();
    this.nextAt = at;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private setHealth(state: HealthState, detail?: string, lastOk?: number): void {
    const changed = state !== this.state.state || detail !== this.state.detail;
    this.state = { state, detail, since: state !== this.state.state ? Date.now() : this.state.since, lastOk: lastOk ?? this.state.lastOk };
    if (changed) this.emit('health', this.health());
  }

  // ---- HTTP -----------------------------------------------------------------------------

  /** One JSON request; the answer's size is capped; a non-2xx status becomes BootstrapError. */
  private async request(method: string, path: string, body?: unknown, timeoutMs?: number, signal?: AbortSignal): Promise<unknown> {
    // A timer of our own, held until the whole answer is read, and every wait raced against
    // it: fetch's own abort handling is held weakly (AbortSignal.timeout(), AbortSignal.any()
    // and undici's listener), so after a garbage collection a server that stalls in the
    // middle of its answer could hang this request (and stop()) forever.
    const ms = timeoutMs ?? this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new TimeoutError(`no answer within ${ms} ms`)), ms);
    const onAbort = () => abort.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const gaveUp = new Promise<never>((_, reject) => abort.signal.addEventListener('abort', () => reject(abort.signal.reason), { once: true }));
    gaveUp.catch(() => {});
    let res: Response;
    let text: string;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const base = new URL(this.url);
    const target = `${base.pathname.replace(/\/+$/, '')}${path}`;
    const headers: Record<string, string> = { accept: 'application/json', ...this.authorize(method, target, payload) };
    if (payload !== undefined) headers['content-type'] = 'application/json';
    try {
      res = await Promise.race([
        fetch(this.url + path, { method, headers, body: payload, signal: abort.signal, redirect: 'error' }),
        gaveUp,
      ]);
      this.followClock(res);
      text = await readCapped(res, gaveUp);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    const macKey = this.init.bootstrapKey;
    // Refusals need no proof (they give us nothing, and say why: a wrong secret, say).
    if (macKey && res.ok && res.status !== 204 && !checkAnswerProof(macKey, headers[AUTH_HEADERS.nonce]!, res.status, text, res.headers.get(PROOF_HEADER))) {
      this.proven = false;
      throw new BootstrapError(`bootstrap server ${this.url} does not prove it holds this swarm's secret (an open server, or another swarm's): not used`);
    }
    if (macKey && res.ok) this.proven = true;
    let json: unknown;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        throw new BootstrapError(`${this.url} answered HTTP ${res.status} with something that is not JSON: not a Shoal bootstrap server?`, res.ok ? undefined : res.status);
      }
    }
    if (!res.ok) {
      const reason = ErrorResponseSchema.safeParse(json);
      throw new BootstrapError(`bootstrap server refused ${method} ${path.split('?')[0]}: HTTP ${res.status}${reason.success ? ` ${reason.data.error}` : ''}`, res.status);
    }
    return json;
  }

  /** The server says what time it is: sign with its clock if ours is off by more than a little. */
  private followClock(res: Response): void {
    const theirs = Number(res.headers.get(AUTH_HEADERS.time));
    if (!Number.isSafeInteger(theirs) || theirs <= 0) return;
    const offset = theirs - Date.now();
    const next = Math.abs(offset) > CLOCK_OFFSET_MIN_MS ? offset : 0;
    if (next !== 0 && Math.abs(next - this.clockOffsetMs) > CLOCK_OFFSET_MIN_MS) {
      this.log.warn({ server: this.url, offsetMs: offset }, `bootstrap server's clock is ${Math.round(offset / 1000)} s from ours: signing with its time`);
    }
    this.clockOffsetMs = next;
  }
}

/** The answer's body, at most MAX_ANSWER_BYTES; each read gives up when `gaveUp` rejects. */
async function readCapped(res: Response, gaveUp: Promise<never>): Promise<string> {
  if (Number(res.headers.get('content-length')) > MAX_ANSWER_BYTES) {
    await res.body?.cancel();
    throw new BootstrapError(`bootstrap answer larger than ${MAX_ANSWER_BYTES} bytes`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    let next: ReadableStreamReadResult<Uint8Array>;
    try {
      next = await Promise.race([reader.read(), gaveUp]);
    } catch (err) {
      void reader.cancel().catch(() => {});
      throw err;
    }
    const { done, value } = next;
    if (done) break;
    size += value.length;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new BootstrapError(`bootstrap answer larger than ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function check<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new BootstrapError(`the bootstrap server's ${what} answer is not a Shoal bootstrap answer: ${describeIssue(result.error)}`);
  return result.data;
}

/** fetch's errors say "fetch failed"; the reason people need is in `cause`. */
function describeNetworkError(err: unknown, url: string, timeoutMs: number): BootstrapError {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return new BootstrapError(`bootstrap server ${url} did not answer within ${timeoutMs} ms`);
  const why = e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
  return new BootstrapError(`bootstrap server ${url} unreachable: ${why}`);
}

function digest(files: FileEntry[]): string {
  const h = createHash('sha1');
  for (const f of files) h.update(`${f.infohash}\0${f.size}\0${f.complete === false ? 0 : 1}\0${f.name}\n`);
  return h.digest('hex');
}
