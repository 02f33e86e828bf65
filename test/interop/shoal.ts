/**
 * Shoal's side of an interop case, as a user runs it: `node-cli` in host 1's namespace,
 * seeding a folder (announced to the LAN's tracker) or fetching one target with
 * `--get ... --exit-when-done`; and `node-cli create` for the .torrent a client is handed.
 */
import { execFile } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import bencode from 'bencode';
import { CLI, sha1File } from '../helpers.js';
import { spawnCliIn, type LanCliChild } from '../netns.js';
import type { LanHost } from '../netns.js';
import type { InteropLan } from './lan.js';

export const SHOAL_PORT = 6881;

/**
 * The nodes log at debug level (SHOAL_INTEROP_LOG says otherwise): their `peer connected`
 * lines tell how each client connected (`linksOf`); their warnings and errors go to failure
 * messages (`lastWords`), and everything is shown with SHOAL_INTEROP_DEBUG=1.
 */
const env = (): Record<string, string> => ({ SHOAL_LOG: process.env.SHOAL_INTEROP_LOG ?? 'debug' });

/** A pino-pretty record's first line: `[hh:mm:ss.mmm] LEVEL (shoal): message`. */
const RECORD = /^\[[\d:.]+\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) \(/;

/** The last `n` lines a node wrote to stderr that are not debug or info records (warnings, errors, anything not a log record). */
export function lastWords(stderr: string[], n = 6): string {
  const kept: string[] = [];
  let quiet = false;
  for (const line of stderr) {
    const m = RECORD.exec(line);
    if (m) quiet = m[1] === 'TRACE' || m[1] === 'DEBUG' || m[1] === 'INFO';
    else if (!/^\s/.test(line)) quiet = false;
    if (!quiet) kept.push(line.trim());
  }
  return kept.slice(-n).join(' | ');
}

const TRANSPORTS: Record<string, string> = { tcp: 'TCP', utp: 'uTP' };
const ENCRYPTIONS: Record<string, string> = { none: 'no MSE', plaintext: 'MSE plaintext', rc4: 'MSE RC4' };

/**
 * How the peers connected, as the node's `peer connected` records say: transport,
 * encryption and who dialled, e.g. `uTP, MSE RC4, client dialled`; several when they differ.
 */
export function linksOf(stderr: string[]): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < stderr.length; i++) {
    if (!/ DEBUG \(.*\): peer connected$/.test(stderr[i]!)) continue;
    const fields: Record<string, string> = {};
    for (let j = i + 1; j < stderr.length && /^\s/.test(stderr[j]!); j++) {
      const m = /^\s+(\w+): "?([^"]*)"?$/.exec(stderr[j]!);
      if (m) fields[m[1]!] = m[2]!;
    }
    if (!fields.transport) continue;
    seen.add(`${TRANSPORTS[fields.transport] ?? fields.transport}, ${ENCRYPTIONS[fields.encryption ?? ''] ?? fields.encryption}, ${fields.incoming === 'true' ? 'client dialled' : 'Shoal dialled'}`);
  }
  return seen.size > 0 ? [...seen].join(' / ') : undefined;
}

/** Show a node's stderr (SHOAL_INTEROP_DEBUG=1), and keep it in `<cwd>/node.log` (kept with SHOAL_INTEROP_KEEP=1). */
function echo(cli: LanCliChild, who: string, cwd: string): void {
  cli.proc.stderr!.pipe(createWriteStream(path.join(cwd, 'node.log')));
  if (process.env.SHOAL_INTEROP_DEBUG !== '1') return;
  cli.proc.stderr!.on('data', (d: Buffer) => process.stdout.write(d.toString().replace(/^/gm, `        [${who}] `)));
}

/** The options every interop node gets: its own address, no multicast, no folder watching. */
function baseArgs(host: LanHost, port = SHOAL_PORT): string[] {
  return [host.ip, String(port), '--peer-ip', host.ip, '--no-multicast', '--no-folder-watch', '--shared', 's', '--downloads', 'd'];
}

export interface ShoalSeed {
  cli: LanCliChild;
  stop(): Promise<void>;
  /** The last warnings and errors it wrote to stderr, for a failure message. */
  stderr(): string;
  /** How the peers connected to it (see `linksOf`). */
  links(): string | undefined;
}

/**
 * A node in `cwd` sharing `cwd/s` (fill it first), with `pieceLength` and the tracker;
 * resolves once it listens (its shared files are hashed by then).
 */
export async function startShoalSeed(l: InteropLan, o: { cwd: string; pieceLength: number; host?: LanHost; port?: number; extra?: string[] }): Promise<ShoalSeed> {
  const host = o.host ?? l.shoal;
  await fsp.mkdir(path.join(o.cwd, 's'), { recursive: true });
  const cli = spawnCliIn(l.lan, host, [...baseArgs(host, o.port), '--piece-length', String(o.pieceLength), '--tracker', l.tracker.url, ...(o.extra ?? [])], o.cwd, env());
  echo(cli, 'shoal seed', o.cwd);
  await cli.waitEvent('listening', 60_000);
  return {
    cli,
    stderr: () => lastWords(cli.stderr),
    links: () => linksOf(cli.stderr),
    stop: async () => {
      if (cli.proc.exitCode === null && cli.proc.signalCode === null) {
        cli.proc.kill('SIGTERM');
        const killer = setTimeout(() => cli.proc.kill('SIGKILL'), 10_000);
        await cli.exited;
        clearTimeout(killer);
      }
    },
  };
}

export interface ShoalFetch {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Where the `done` event says the download went. */
  path?: string;
  cli: LanCliChild;
  seconds: number;
}

/** `node-cli --get target --exit-when-done` in `cwd`; resolves when it exits (SIGKILLed after `ms`). */
export async function shoalGet(l: InteropLan, o: { cwd: string; target: string; ms: number; host?: LanHost; port?: number; extra?: string[] }): Promise<ShoalFetch> {
  const host = o.host ?? l.shoal;
  await fsp.mkdir(path.join(o.cwd, 's'), { recursive: true });
  const t0 = Date.now();
  const cli = spawnCliIn(l.lan, host, [...baseArgs(host, o.port), '--get', o.target, '--exit-when-done', ...(o.extra ?? [])], o.cwd, env());
  echo(cli, 'shoal get', o.cwd);
  const killer = setTimeout(() => cli.proc.kill('SIGKILL'), o.ms);
  const { code, signal } = await cli.exited;
  clearTimeout(killer);
  const done = cli.events.find((e) => e.event === 'done');
  return { code, signal, cli, seconds: (Date.now() - t0) / 1000, ...(done ? { path: String(done.path) } : {}) };
}

/** Why a `shoalGet` did not succeed, in one line with what the node said last. */
export function describeFetch(f: ShoalFetch, ms: number): string {
  const why = f.signal === 'SIGKILL' ? `did not finish in ${ms / 1000} s` : `exited with ${f.code ?? f.signal}`;
  const last = f.cli.events.filter((e) => e.event !== 'discovery').slice(-3);
  return `node-cli --get ${why}; last events ${JSON.stringify(last)}; stderr ${lastWords(f.cli.stderr)}`;
}

/** `node-cli create PATH` with a piece length and tracker; resolves with the infohash. */
export function shoalCreate(what: string, out: string, pieceLength: number, tracker: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CLI, 'create', what, '--piece-length', String(pieceLength), '--tracker', tracker, '-o', out, '--force'], { timeout: 60_000 }, (err, _o, stderr) =>
      err ? reject(new Error(`node-cli create failed: ${err.message} ${stderr}`)) : resolve(),
    ),
  );
}

/** A file a torrent lists: its path under the torrent's top (empty for a single-file torrent) and length. */
export interface TorrentFile {
  path: string[];
  length: number;
}

/** The files a .torrent lists, in its order. */
export async function torrentFiles(torrent: string): Promise<TorrentFile[]> {
  const t = bencode.decode(await fsp.readFile(torrent)) as { info: { length?: number; files?: Array<{ length: number; path: Uint8Array[] }> } };
  if (t.info.files === undefined) return [{ path: [], length: t.info.length ?? 0 }];
  return t.info.files.map((f) => ({ path: f.path.map((p) => Buffer.from(p).toString('utf8')), length: f.length }));
}

/**
 * Compare, file by file, what the torrent lists under `expected` (the data it was made of)
 * with the same path under `got`: sizes, then SHA-1 of the bytes. What a torrent leaves out
 * (transmission-create skips empty files) is not asked for. With `emptyMayBeMissing`, an
 * empty file the client did not create is tolerated and reported (Transmission creates none).
 * Resolves with the paths of such missing empty files.
 */
export async function sameFiles(torrent: string, expected: string, got: string, o: { emptyMayBeMissing?: boolean } = {}): Promise<string[]> {
  const missingEmpty: string[] = [];
  for (const f of await torrentFiles(torrent)) {
    const want = path.join(expected, ...f.path);
    const have = path.join(got, ...f.path);
    const st = await fsp.stat(want);
    if (st.size !== f.length) throw new Error(`the torrent says ${f.length} bytes for ${want}, the file has ${st.size}`);
    let haveSt;
    try {
      haveSt = await fsp.stat(have);
    } catch {
      if (f.length === 0 && o.emptyMayBeMissing) {
        missingEmpty.push(f.path.join('/'));
        continue;
      }
      throw new Error(`missing ${have}`);
    }
    if (haveSt.size !== st.size) throw new Error(`${have} has ${haveSt.size} bytes, expected ${st.size}`);
    if ((await sha1File(have)) !== (await sha1File(want))) throw new Error(`${have} differs from ${want}`);
  }
  return missingEmpty;
}
