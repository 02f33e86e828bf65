/**
 * How a request to the bootstrap server proves who sends it, and that the sender holds the
 * swarm's secret: headers over one canonical form of the request. Shared by the node's
 * client (network/discovery/bootstrap-client.ts, network/tracker) and the server
 * (bootstrap/request-check.ts).
 *
 *   X-Shoal-Time       ms since the epoch when signed; the server refuses one too far from its
 *                      clock (and answers with its own X-Shoal-Time, which a client whose
 *                      clock is off takes as an offset)
 *   X-Shoal-Nonce      32 hex characters, new for every request: the server refuses a nonce it
 *                      has seen within the time window (a replay)
 *   X-Shoal-Key        the node's raw Ed25519 public key, base64url (43 characters)
 *   X-Shoal-Signature  Ed25519 over the canonical request, base64url (86 characters)
 *   X-Shoal-Mac        in a private swarm: HMAC-SHA256 under the swarm's bootstrap key
 *                      (network/security/secret.ts) over the canonical request, base64url
 *
 * The canonical request, lines joined by "\n":
 *
 *   shoal bootstrap request v1
 *   METHOD                     upper case
 *   target                     the path and query exactly as sent (/api/nodes/ID?instance=I)
 *   time                       as in X-Shoal-Time
 *   nonce                      as in X-Shoal-Nonce
 *   key                        as in X-Shoal-Key, or "-" when the request is not signed
 *   body digest                SHA-256 of the body bytes in hex (of nothing for GET and DELETE)
 *
 * Register, heartbeat, unregister and reports are signed: the server checks that the node id
 * they act for is the one derived from the key, so no one can register, evict or speak for
 * another node's id, from anywhere (loopback included). With a secret every request to the
 * server carries the HMAC as well, tracker announces too.
 *
 * The server of a private swarm proves in turn that it holds the secret: each answer to a
 * request with a nonce carries
 *
 *   X-Shoal-Proof      HMAC-SHA256 under the bootstrap key over "shoal bootstrap answer v1",
 *                      the request's nonce, the HTTP status and the SHA-256 of the answer's
 *                      body (lines joined by "\n"), base64url
 *
 * so a node of a private swarm uses no server that cannot prove it (an open server it was
 * pointed at by mistake, or one posing as the swarm's): it takes no peers from it, and
 * sends it none of its files (its first registration names none until the server's answer
 * proves it).
 *
 * Why an HMAC per request and not a bearer token derived from the secret: the server speaks
 * plain HTTP, so whatever a request carries can be read on the way. A token read once opens
 * the server to its reader for good; an HMAC read once is bound to its method, path, body,
 * time and nonce, and the server takes each nonce once, so there is nothing to reuse.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

export const AUTH_HEADERS = {
  time: 'x-shoal-time',
  nonce: 'x-shoal-nonce',
  key: 'x-shoal-key',
  signature: 'x-shoal-signature',
  mac: 'x-shoal-mac',
} as const;

/** The header of a private server's answer that proves it holds the secret (see the top of this file). */
export const PROOF_HEADER = 'x-shoal-proof';
const ANSWER_LABEL = 'shoal bootstrap answer v1';

const LABEL = 'shoal bootstrap request v1';

/** What signs a request: the node's key. */
export interface RequestSigner {
  readonly publicKey: Buffer;
  sign(data: Uint8Array): Buffer;
}

export interface RequestToAuth {
  method: string;
  /** Path and query exactly as sent. */
  target: string;
  /** The body bytes (empty for none). */
  body?: string | Uint8Array;
}

export function bodyDigest(body: string | Uint8Array | undefined): string {
  return createHash('sha256').update(body ?? '').digest('hex');
}

/** The canonical form both sides sign and check (see the top of this file). */
export function canonicalRequest(r: { method: string; target: string; time: string; nonce: string; key: string | undefined; digest: string }): Buffer {
  return Buffer.from([LABEL, r.method.toUpperCase(), r.target, r.time, r.nonce, r.key ?? '-', r.digest].join('\n'), 'utf8');
}

export function requestMac(macKey: Buffer, canonical: Buffer): string {
  return createHmac('sha256', macKey).update(canonical).digest('base64url');
}

/** A private server's proof over its answer to the request with `nonce` (see the top of this file). */
export function answerProof(macKey: Buffer, nonce: string, status: number, body: string | Uint8Array | undefined): string {
  return createHmac('sha256', macKey).update([ANSWER_LABEL, nonce, String(status), bodyDigest(body)].join('\n')).digest('base64url');
}

/** Does `proof` (the header as received, if any) prove the answer? Constant time. */
export function checkAnswerProof(macKey: Buffer, nonce: string, status: number, body: string | Uint8Array | undefined, proof: string | null | undefined): boolean {
  if (typeof proof !== 'string') return false;
  const want = Buffer.from(answerProof(macKey, nonce, status, body), 'base64url');
  const got = Buffer.from(proof, 'base64url');
  return want.length === got.length && timingSafeEqual(want, got);
}

/** The headers that authenticate one request: signed when `signer` is given, with the HMAC when `macKey` is. */
export function authHeaders(r: RequestToAuth, opts: { signer?: RequestSigner; macKey?: Buffer; now?: number }): Record<string, string> {
  if (!opts.signer && !opts.macKey) return {};
  const time = String(Math.round(opts.now ?? Date.now()));
  const nonce = randomBytes(16).toString('hex');
  const key = opts.signer?.publicKey.toString('base64url');
  const canonical = canonicalRequest({ method: r.method, target: r.target, time, nonce, key, digest: bodyDigest(r.body) });
  const headers: Record<string, string> = { [AUTH_HEADERS.time]: time, [AUTH_HEADERS.nonce]: nonce };
  if (opts.signer && key) {
    headers[AUTH_HEADERS.key] = key;
    headers[AUTH_HEADERS.signature] = opts.signer.sign(canonical).toString('base64url');
  }
  if (opts.macKey) headers[AUTH_HEADERS.mac] = requestMac(opts.macKey, canonical);
  return headers;
}

const b64url = (bytes: number) => z.string().regex(/^[A-Za-z0-9_-]+$/, 'must be base64url').refine((s) => Buffer.from(s, 'base64url').length === bytes && s.length === Math.ceil((bytes * 4) / 3), `must be ${bytes} bytes in base64url`);

/** The authentication headers of a request, as received (each header at most once). */
export const RequestAuthSchema = z.object({
  time: z.string().regex(/^\d{1,16}$/, 'must be ms since the epoch'),
  nonce: z.string().regex(/^[0-9a-f]{32}$/, 'must be 32 lower-case hex characters'),
  key: b64url(32).optional(),
  signature: b64url(64).optional(),
  mac: b64url(32).optional(),
});
export type RequestAuth = z.output<typeof RequestAuthSchema>;

/** The auth headers of `headers` (Node's lower-cased IncomingHttpHeaders), or null when it carries none. */
export function readAuthHeaders(headers: Record<string, string | string[] | undefined>): { auth: RequestAuth } | { error: string } | null {
  const raw: Record<string, unknown> = {};
  let any = false;
  for (const [field, name] of Object.entries(AUTH_HEADERS)) {
    const v = headers[name];
    if (v === undefined) continue;
    any = true;
    if (Array.isArray(v)) return { error: `header ${name} given more than once` };
    raw[field] = v;
  }
  if (!any) return null;
  const r = RequestAuthSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    const header = field in AUTH_HEADERS ? AUTH_HEADERS[field as keyof typeof AUTH_HEADERS] : 'auth headers';
    return { error: `${header}: ${issue?.message ?? 'invalid'}` };
  }
  if ((r.data.key === undefined) !== (r.data.signature === undefined)) return { error: `${AUTH_HEADERS.key} and ${AUTH_HEADERS.signature} go together` };
  return { auth: r.data };
}
