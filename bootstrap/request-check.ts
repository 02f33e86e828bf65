/**
 * The server's side of network/wire/request-auth.ts: is a request signed by the key of the
 * node it acts for, and (on a server of a private swarm) does it carry the swarm's HMAC? Each
 * check says why it refused, with the HTTP status (401), and the refusals are counted by
 * reason for the monitor and the log.
 *
 * Replays: a request counts only within `maxSkewMs` of our clock and with a nonce not seen
 * before. Seen nonces are kept for the window, at most `maxNonces` of them; when more
 * arrive than that, the oldest go and every request no newer than the one that went is
 * refused as stale, so a flood of requests can shorten the window but never reopen it to a
 * replay.
 */
import { nodeIdOf, verifySignature } from '../network/security/identity.js';
import { HttpError } from '../network/util/http-error.js';
import { bodyDigest, canonicalRequest, readAuthHeaders, requestMac, AUTH_HEADERS } from '../network/wire/request-auth.js';
import { timingSafeEqual } from 'node:crypto';

/** A request's clock may be this far from ours (nodes' clocks drift; the client also corrects by ours). */
export const DEFAULT_MAX_REQUEST_SKEW_MS = 5 * 60_000;
/** Nonces remembered at most (about 40 bytes each with the map's own). */
export const DEFAULT_MAX_NONCES = 500_000;

export type RequestRefusal = 'unsigned' | 'bad-signature' | 'no-secret' | 'wrong-secret' | 'stale' | 'replayed' | 'malformed';

export interface RequestCheckInit {
  /** The swarm's bootstrap key (network/security/secret.ts): every request must carry its HMAC. */
  macKey?: Buffer;
  maxSkewMs?: number;
  maxNonces?: number;
  now?: () => number;
}

export interface RequestToCheck {
  method: string;
  /** Path and query as received (req.originalUrl / req.url). */
  target: string;
  headers: Record<string, string | string[] | undefined>;
  /** The raw body bytes (none for GET and DELETE). */
  body?: Uint8Array;
}

/** A refusal with its reason, for the counters. */
export class RequestAuthError extends HttpError {
  override name = 'RequestAuthError';
  constructor(
    readonly reason: RequestRefusal,
    message: string,
  ) {
    super(401, message);
  }
}

export class RequestCheck {
  private readonly maxSkewMs: number;
  private readonly maxNonces: number;
  private readonly now: () => number;
  private readonly nonces = new Map<string, number>();
  /** Requests at or before this time are refused: their nonces may have been forgotten. */
  private floor = 0;
  private readonly refusals = new Map<RequestRefusal, number>();

  constructor(private readonly init: RequestCheckInit = {}) {
    this.maxSkewMs = init.maxSkewMs ?? DEFAULT_MAX_REQUEST_SKEW_MS;
    this.maxNonces = init.maxNonces ?? DEFAULT_MAX_NONCES;
    this.now = init.now ?? Date.now;
  }

  /** Is this the server of a private swarm (every request needs the secret's HMAC)? */
  get isPrivate(): boolean {
    return this.init.macKey !== undefined;
  }

  /** Refusals so far by reason. */
  counts(): Partial<Record<RequestRefusal, number>> {
    return Object.fromEntries(this.refusals) as Partial<Record<RequestRefusal, number>>;
  }

  /**
   * Check a request; returns the node id of its signer (null when unsigned and no signature
   * was needed). Throws RequestAuthError (401) saying why not.
   */
  check(req: RequestToCheck, need: { signature: boolean }): { signer: string | null } {
    try {
      return this.checkOrThrow(req, need);
    } catch (err) {
      if (err instanceof RequestAuthError) this.refusals.set(err.reason, (this.refusals.get(err.reason) ?? 0) + 1);
      throw err;
    }
  }

  private checkOrThrow(req: RequestToCheck, need: { signature: boolean }): { signer: string | null } {
    const macKey = this.init.macKey;
    if (!need.signature && !macKey) return { signer: null };
    const read = readAuthHeaders(req.headers);
    if (read === null) {
      if (macKey) throw new RequestAuthError('no-secret', "this bootstrap server serves a private swarm: requests need the swarm's secret (start the node with the same --secret or --secret-file)");
      throw new RequestAuthError('unsigned', `sign the request with the node's key (${AUTH_HEADERS.key}, ${AUTH_HEADERS.signature}): this server takes registrations, heartbeats and reports only from the key their node id derives from`);
    }
    if ('error' in read) throw new RequestAuthError('malformed', read.error);
    const a = read.auth;
    if (macKey && a.mac === undefined) throw new RequestAuthError('no-secret', "this bootstrap server serves a private swarm: requests need the swarm's secret (start the node with the same --secret or --secret-file)");
    if (need.signature && a.key === undefined) {
      throw new RequestAuthError('unsigned', `sign the request with the node's key (${AUTH_HEADERS.key}, ${AUTH_HEADERS.signature})`);
    }
    const now = this.now();
    const time = Number(a.time);
    if (Math.abs(time - now) > this.maxSkewMs) {
      throw new RequestAuthError('stale', `request time ${Math.round((time - now) / 1000)} s off the server's clock (at most ${Math.round(this.maxSkewMs / 1000)} s): a replay, or a clock is wrong`);
    }
    if (time <= this.floor) throw new RequestAuthError('stale', 'request older than the server can check for replays: send it again');
    if (this.nonces.has(a.nonce)) throw new RequestAuthError('replayed', 'this request was seen before (same nonce): a replay');
    const canonical = canonicalRequest({ method: req.method, target: req.target, time: a.time, nonce: a.nonce, key: a.key, digest: bodyDigest(req.body) });
    if (macKey) {
      const want = Buffer.from(requestMac(macKey, canonical), 'base64url');
      const got = Buffer.from(a.mac!, 'base64url');
      if (want.length !== got.length || !timingSafeEqual(want, got)) throw new RequestAuthError('wrong-secret', "wrong swarm secret: this request's HMAC is not the swarm's");
    }
    let signer: string | null = null;
    if (a.key !== undefined && a.signature !== undefined) {
      const key = Buffer.from(a.key, 'base64url');
      if (!verifySignature(key, canonical, Buffer.from(a.signature, 'base64url'))) {
        throw new RequestAuthError('bad-signature', 'the signature does not hold for this request (method, path, time, nonce, body)');
      }
      signer = nodeIdOf(key);
    }
    this.remember(a.nonce, time, now);
    return { signer };
  }

  private remember(nonce: string, time: number, now: number): void {
    // Nonces older than the window can go: their requests are refused as stale anyway.
    for (const [n, t] of this.nonces) {
      if (this.nonces.size < this.maxNonces && now - t <= this.maxSkewMs) break;
      this.nonces.delete(n);
      if (now - t <= this.maxSkewMs) this.floor = Math.max(this.floor, t);
    }
    this.nonces.set(nonce, time);
  }
}

