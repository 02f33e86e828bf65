/**
 * The config file: `shoal.json` in the node's state folder (`<downloads>/.shoal/`), or the
 * file `--config FILE` names. A JSON object whose keys are the command-line options in
 * camelCase: `--max-upload-rate 2M` is `"maxUploadRate": "2M"`, `--no-multicast` is
 * `"multicast": false`, a repeatable option takes one value or a list, and the port and
 * listen address of the peer port are `peerPort` and `peerHost`. What runs once (`--get`,
 * `--exit-when-done`, `--json`, `--config`) has no key. The command line wins over the file.
 *
 * The whole file is checked before anything starts: an unknown key, or a value of the wrong
 * kind, is a ConfigError naming the file and the key. Settings changed at run time are
 * written back into the same file (`saveConfigKeys`), every other key left as it was, so
 * they outlast a restart; a file that no longer parses is never overwritten.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { parseSize } from '../util/size.js';
import { writeFileAtomic } from '../util/atomic.js';
import { MIN_PIECE_LENGTH, MAX_PIECE_LENGTH } from '../metainfo/metainfo.js';
import { MAX_PATTERN_LENGTH } from '../catalog/glob.js';
import { secretProblem } from '../security/secret.js';

/** The name of the config file in a state folder. */
export const CONFIG_FILE_NAME = 'shoal.json';
/** A config file is a few hundred bytes; anything this large is not one. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const;

/** The config file cannot be read, is not JSON, or a key in it is unknown or wrong. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly file: string,
    /** The key at fault, when one is. */
    readonly key: string | undefined,
    /** What is wrong, without the file and the key. */
    readonly detail: string,
  ) {
    super(`${file}: ${key === undefined ? '' : `"${key}": `}${detail}`);
  }
}

const text = z.string().min(1, 'must not be empty').max(4096);
const port = z.number().int('must be a whole number').min(0).max(65535);
/** One value or a list of them, always a list once read. */
const list = <T extends z.ZodType>(item: T) => z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]) as Array<z.output<T>>);
const httpUrl = z.string().regex(/^https?:\/\/[^/]+/, 'must be an http(s) URL').max(2048);
/** Bytes: a number, or a size as on the command line ("2M", "512k"). */
const size = z.union([z.number().int('must be a whole number of bytes').min(0), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseSize(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a size: ${JSON.stringify(v)} (a number of bytes, or e.g. "2M", "512k")` });
    return z.NEVER;
  }
});

/**
 * Every key of the file, all optional. A download rate limit, when it comes, is one more
 * size beside `maxUploadRate` (and one more field of the run-time settings).
 */
export const ConfigFileSchema = z
  .strictObject({
    peerPort: port,
    peerHost: text,
    shared: list(text),
    shareFolderAsTorrent: list(text),
    downloads: text,
    peer: list(z.string().regex(/^\[?[^\]\s]+?\]?:\d{1,5}$/, 'must be HOST:PORT')),
    tracker: list(httpUrl),
    peerIp: text,
    pieceLength: size.refine((n) => n >= MIN_PIECE_LENGTH && n <= MAX_PIECE_LENGTH && (n & (n - 1)) === 0, 'must be a power of two from 16k to 16M'),
    maxUploadRate: size,
    resolveTimeout: z.number().min(0, 'must be a number of seconds'),
    folderWatch: z.boolean(),
    name: text,
    bootstrap: httpUrl,
    multicast: z.boolean(),
    multicastGroup: z.string().refine((g) => isIPv4(g) && Number(g.split('.')[0]) >= 224 && Number(g.split('.')[0]) <= 239, 'must be an IPv4 multicast address (224.0.0.0 to 239.255.255.255)'),
    multicastPort: port.min(1),
    interface: list(text),
    multicastTtl: z.number().int().min(0).max(255),
    beaconInterval: z.number().min(0.1).max(300),
    watch: list(z.string().min(1).max(MAX_PATTERN_LENGTH)),
    httpHost: text,
    httpPort: port,
    httpToken: z.string().regex(/^[\x21-\x7e]{8,256}$/, 'must be 8 to 256 printable characters without spaces'),
    logLevel: z.enum(LOG_LEVELS),
    encryption: z.enum(['prefer', 'require', 'off']),
    utp: z.enum(['on', 'prefer', 'off']),
    // A private swarm's secret, or the file that holds it (one of the two).
    secret: z.string().superRefine((v, ctx) => {
      const problem = secretProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    secretFile: text,
  })
  .partial();

/** A config file as read: sizes in bytes, repeatable keys as lists. */
export type ConfigValues = z.output<typeof ConfigFileSchema>;
export type ConfigKey = keyof ConfigValues;
export const CONFIG_KEYS = Object.keys(ConfigFileSchema.shape) as ConfigKey[];

/** The first problem of a file's content, naming its key. */
function check(file: string, raw: unknown): ConfigValues {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(file, undefined, 'must hold a JSON object ({"key": value, ...})');
  const r = ConfigFileSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    throw new ConfigError(file, keys[0], `unknown key${keys.length > 1 ? ` (and ${keys.slice(1).map((k) => `"${k}"`).join(', ')})` : ''}: the keys are the command-line options in camelCase, e.g. "maxUploadRate"`);
  }
  const key = String(issue.path[0] ?? '');
  let message = issue.message;
  // A union's issue says only that no branch matched: say what the key takes.
  if (issue.code === 'invalid_union') message = `wrong kind of value ${JSON.stringify((raw as Record<string, unknown>)[key])}`;
  throw new ConfigError(file, key || undefined, message);
}

/** The text of a config file as a JSON value. */
function parseJson(file: string, body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch (err) {
    throw new ConfigError(file, undefined, `not valid JSON (${(err as Error).message})`);
  }
}

/**
 * Read and check a config file. A file that does not exist is an empty one unless
 * `required` (named with --config); anything else that goes wrong is a ConfigError.
 * Synchronous: it runs once, before anything starts.
 */
export function loadConfigFile(file: string, required = false): ConfigValues {
  let body: string;
  try {
    body = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !required) return {};
    throw new ConfigError(file, undefined, code === 'ENOENT' ? 'no such file' : `cannot read it (${(err as Error).message})`);
  }
  if (body.length > MAX_CONFIG_BYTES) throw new ConfigError(file, undefined, `larger than ${MAX_CONFIG_BYTES} bytes: not a config file`);
  return check(file, parseJson(file, body));
}

/**
 * Write `values` into the config file: a key set to undefined is removed, every other key
 * of the file stays as it was. The result is checked as a start would check it before it
 * replaces the file (atomically, keeping the file's permissions); a file that does not parse
 * now (edited by hand meanwhile) is left alone and the ConfigError says why.
 */
export async function saveConfigKeys(file: string, values: Partial<Record<ConfigKey, unknown>>): Promise<void> {
  let raw: Record<string, unknown> = {};
  let mode: number | undefined;
  try {
    const [body, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
    mode = st.mode & 0o777;
    const parsed = parseJson(file, body);
    check(file, parsed);
    raw = parsed as Record<string, unknown>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (err instanceof ConfigError) throw new ConfigError(err.file, err.key, `${err.detail}: fix or remove it, then change the setting again`);
      throw new ConfigError(file, undefined, `cannot read it (${(err as Error).message})`);
    }
  }
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) delete raw[k];
    else raw[k] = v;
  }
  check(file, raw);
  try {
    await writeFileAtomic(file, `${JSON.stringify(raw, null, 2)}\n`, { mode });
  } catch (err) {
    throw new ConfigError(file, undefined, `cannot write it (${(err as Error).message})`);
  }
}
