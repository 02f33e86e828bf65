/**
 * A private swarm's secret (`--secret`, `--secret-file`, `secret` in the config file) and
 * the keys derived from it. Nothing ever uses the secret itself: each use has its own key,
 * derived with HKDF-SHA256 under its own label, so a key that leaks from one use (the
 * bootstrap key from a server's memory, say) tells nothing about the others:
 *
 *   'shoal beacon v1'     HMAC-SHA256 key of multicast beacons (network/wire/beacon-codec.ts)
 *   'shoal bootstrap v1'  HMAC-SHA256 key of bootstrap requests (network/wire/request-auth.ts)
 *   'shoal monitor v1'    the bootstrap monitor's session cookie (bootstrap/monitor-access.ts)
 *   'shoal tls-psk v1'    the pre-shared key of TLS 1.3 between nodes (tlsPsk below)
 *
 * Before HKDF the secret is stretched once with scrypt (N=2^14, r=8, p=1: about 70 ms and
 * 16 MiB, once per start). HKDF alone is fast, so a captured beacon and its HMAC would let
 * anyone try millions of guesses a second at a passphrase-like secret; scrypt makes each
 * guess cost what it costs us at start. A random secret (`openssl rand -base64 32`) needs
 * no stretching, and loses nothing by it.
 */
import { readFileSync, statSync } from 'node:fs';
import { hkdfSync, scryptSync, createHash } from 'node:crypto';

export const BEACON_KEY_LABEL = 'shoal beacon v1';
export const BOOTSTRAP_KEY_LABEL = 'shoal bootstrap v1';
export const MONITOR_KEY_LABEL = 'shoal monitor v1';
export const TLS_PSK_LABEL = 'shoal tls-psk v1';

/** Shorter secrets are refused: eight characters is already a weak passphrase. */
export const MIN_SECRET_LENGTH = 8;
export const MAX_SECRET_LENGTH = 1024;
/** A secret file is one line; anything this large is not one. */
export const MAX_SECRET_FILE_BYTES = 4096;

const STRETCH_SALT = 'shoal swarm secret v1';
const SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const;

/** A secret that cannot be used (too short, unreadable file): the message says which and why. */
export class SecretError extends Error {
  override name = 'SecretError';
}

/** Why `secret` cannot be a swarm secret, or null when it can. */
export function secretProblem(secret: string): string | null {
  if (secret.length < MIN_SECRET_LENGTH) return `the secret must be at least ${MIN_SECRET_LENGTH} characters`;
  if (secret.length > MAX_SECRET_LENGTH) return `the secret must be at most ${MAX_SECRET_LENGTH} characters`;
  if (/[\u0000-\u001f\u007f]/.test(secret)) return 'the secret must not contain control characters (a secret file holds it on its first line)';
  return null;
}

/**
 * The secret of a private swarm, stretched once; every key is derived on demand. The
 * secret text itself is not kept.
 */
export class SwarmSecret {
  private readonly keys = new Map<string, Buffer>();

  private constructor(private readonly master: Buffer) {}

  /** SecretError when the secret is unusable (see secretProblem). */
  static from(secret: string): SwarmSecret {
    const problem = secretProblem(secret);
    if (problem) throw new SecretError(problem);
    return new SwarmSecret(scryptSync(secret.normalize('NFC'), STRETCH_SALT, 32, SCRYPT));
  }

  /** A 32-byte key for one use, named by its label: independent of every other label's. */
  key(label: string): Buffer {
    let k = this.keys.get(label);
    if (!k) {
      k = Buffer.from(hkdfSync('sha256', this.master, Buffer.alloc(0), label, 32));
      this.keys.set(label, k);
    }
    return k;
  }

  get beaconKey(): Buffer {
    return this.key(BEACON_KEY_LABEL);
  }

  get bootstrapKey(): Buffer {
    return this.key(BOOTSTRAP_KEY_LABEL);
  }

  get monitorKey(): Buffer {
    return this.key(MONITOR_KEY_LABEL);
  }

  /** The TLS 1.3 pre-shared key for connections between nodes of this swarm (32 bytes). */
  get tlsPsk(): Buffer {
    return this.key(TLS_PSK_LABEL);
  }

  /**
   * Eight hex characters that are the same for the same secret and say nothing about it:
   * logs and status lines can show which swarm a node is in, so two nodes that do not see
   * each other can be told apart from two with different secrets.
   */
  get fingerprint(): string {
    return createHash('sha256').update(this.key('shoal fingerprint v1')).digest('hex').slice(0, 8);
  }
}

/** The TLS-PSK key of a secret, for the TCP side (network/security/tls.ts). */
export function tlsPskKey(secret: SwarmSecret | string): Buffer {
  return (typeof secret === 'string' ? SwarmSecret.from(secret) : secret).tlsPsk;
}

/**
 * The secret in `file`: its first line, surrounding white space trimmed. SecretError when
 * it cannot be read, is too large, or holds no usable secret. `exposed` says the file can be
 * read by others than its owner (worth a warning, as ssh gives for a private key).
 */
export function readSecretFile(file: string): { secret: string; exposed: boolean } {
  let text: string;
  let exposed = false;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new SecretError(`${file} is not a file`);
    if (st.size > MAX_SECRET_FILE_BYTES) throw new SecretError(`${file} is ${st.size} bytes: a secret file holds one line (at most ${MAX_SECRET_FILE_BYTES} bytes)`);
    exposed = process.platform !== 'win32' && (st.mode & 0o077) !== 0;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof SecretError) throw err;
    throw new SecretError(`cannot read the secret file ${file}: ${(err as Error).message}`);
  }
  const secret = (text.split(/\r?\n/)[0] ?? '').trim();
  const problem = secretProblem(secret);
  if (problem) throw new SecretError(`${file}: ${secret.length === 0 ? 'the first line is empty: it should hold the secret' : problem}`);
  return { secret, exposed };
}
