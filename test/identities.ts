/**
 * Node identities for tests, one per name for the whole run, so a test can say `idOf('a')`,
 * and the signatures the bootstrap server asks for: `nodeApiAuth` signs a request to the
 * node API as the node it names (the body's `id`, the path's id, or a report's `reporter`),
 * or as a stranger when it names no node a test made (a request that is meant to fail on
 * something else than its signature).
 */
import { Identity } from '../network/security/identity.js';
import { authHeaders } from '../network/wire/request-auth.js';

const byName = new Map<string, Identity>();
const byIdentityId = new Map<string, Identity>();
const stranger = Identity.generate();

/** The identity called `name` in this test run (made at first use). */
export function named(name: string): Identity {
  let who = byName.get(name);
  if (!who) {
    who = Identity.generate();
    byName.set(name, who);
    byIdentityId.set(who.id, who);
  }
  return who;
}

/** The node id of the identity called `name`. */
export function idOf(name: string): string {
  return named(name).id;
}

/** The identity a test made whose node id is `id`. */
export function byId(id: string): Identity | undefined {
  return byIdentityId.get(id);
}

/** Who a node API request speaks for: the body's `reporter` or `id`, else the id in its path. */
export function speakerOf(path: string, body: string | undefined): Identity {
  let parsed: Record<string, unknown> = {};
  try {
    const v: unknown = body ? JSON.parse(body) : {};
    if (v && typeof v === 'object' && !Array.isArray(v)) parsed = v as Record<string, unknown>;
  } catch {
    /* not JSON: the stranger signs */
  }
  const fromPath = /^\/api\/nodes\/([^/?]+)/.exec(path)?.[1];
  for (const id of [parsed.reporter, parsed.id, fromPath ? decodeURIComponent(fromPath) : undefined]) {
    if (typeof id === 'string' && byIdentityId.has(id)) return byIdentityId.get(id)!;
  }
  return stranger;
}

/**
 * The auth headers of a request to the bootstrap server as a node would send them: signed by
 * the node it speaks for (`as` to choose, null for unsigned), with the swarm's HMAC when `macKey` is given.
 */
export function nodeApiAuth(method: string, path: string, body: string | undefined, opts: { as?: Identity | null; macKey?: Buffer } = {}): Record<string, string> {
  const signer = opts.as === null ? undefined : (opts.as ?? speakerOf(path, body));
  return authHeaders({ method, target: path, body }, { signer, macKey: opts.macKey });
}
