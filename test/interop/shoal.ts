/**
 * Shoal's side of an interop case, as a user runs it: `node-cli` in host 1's namespace,
 * seeding a folder (announced to the LAN's tracker) or fetching one target with
 * `--get ... --exit-when-done`; and `node-cli create` for the .torrent a client is handed.
 */
import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { CLI, sha1File } from '../helpers.js';
import { spawnCliIn, type LanCliChild } from '../netns.js';
import type { LanHost } from '../netns.js';
import type { InteropLan } from './lan.js';

export const SHOAL_PORT = 6881;

/** SHOAL_INTEROP_LOG=debug runs the nodes at that log level (their stderr goes to failure messages, or is shown with SHOAL_INTEROP_DEBUG=1). */
const env = (): Record<string, string> => ({ SHOAL_LOG: process.env.SHOAL_INTEROP_LOG ?? 'warn' });

function echo(cli: LanCliChild, who: string): void {
  if (process.env.SHOAL_INTEROP_DEBUG !== '1') return;
  cli.proc.stderr!.on('data', (d: Buffer) => process.stdout.write(d.toString().replace(/^/gm, `        [${who}] `)));
}

/** The options every interop node gets: its own address, no multicast, no folder watching. */
function baseArgs(host: LanHost): string[] {
  return [host.ip, String(SHOAL_PORT), '--peer-ip', host.ip, '--no-multicast', '--no-folder-watch', '--shared', 's', '--downloads', 'd'];
}

export interface ShoalSeed {
  cli: LanCliChild;
  stop(): Promise<void>;
  /** The last lines it wrote to stderr, for a failure message. */
  stderr(): string;
}

/**
 * A node in `cwd` sharing `cwd/s` (fill it first), with `pieceLength` and the tracker;
 * resolves once it listens (its shared files are hashed by then).
 */
export async function startShoalSeed(l: InteropLan, o: { cwd: string; pieceLength: number; host?: LanHost; extra?: string[] }): Promise<ShoalSeed> {
  const host = o.host ?? l.shoal;
  await fsp.mkdir(path.join(o.cwd, 's'), { recursive: true });
  const cli = spawnCliIn(l.lan, host, [...baseArgs(host), '--piece-length', String(o.pieceLength), '--tracker', l.tracker.url, ...(o.extra ?? [])], o.cwd, env());
  echo(cli, 'shoal seed');
  await cli.waitEvent('listening', 60_000);
  return {
    cli,
    stderr: () => cli.stderr.slice(-6).join(' | '),
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
export async function shoalGet(l: InteropLan, o: { cwd: string; target: string; ms: number; host?: LanHost; extra?: string[] }): Promise<ShoalFetch> {
  const host = o.host ?? l.shoal;
  await fsp.mkdir(path.join(o.cwd, 's'), { recursive: true });
  const t0 = Date.now();
  const cli = spawnCliIn(l.lan, host, [...baseArgs(host), '--get', o.target, '--exit-when-done', ...(o.extra ?? [])], o.cwd, env());
  echo(cli, 'shoal get');
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
  return `node-cli --get ${why}; last events ${JSON.stringify(last)}; stderr ${f.cli.stderr.slice(-5).join(' | ')}`;
}

/** `node-cli create PATH` with a piece length and tracker; resolves with the infohash. */
export function shoalCreate(what: string, out: string, pieceLength: number, tracker: string): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CLI, 'create', what, '--piece-length', String(pieceLength), '--tracker', tracker, '-o', out, '--force'], { timeout: 60_000 }, (err, _o, stderr) =>
      err ? reject(new Error(`node-cli create failed: ${err.message} ${stderr}`)) : resolve(),
    ),
  );
}

/** Compare every file under `expected` (a file or a folder) with the same path under `got`. */
export async function sameContent(expected: string, got: string): Promise<void> {
  const st = await fsp.stat(expected);
  if (st.isDirectory()) {
    for (const entry of await fsp.readdir(expected)) await sameContent(path.join(expected, entry), path.join(got, entry));
    return;
  }
  let gotSt;
  try {
    gotSt = await fsp.stat(got);
  } catch {
    throw new Error(`missing ${got}`);
  }
  if (gotSt.size !== st.size) throw new Error(`${got} has ${gotSt.size} bytes, expected ${st.size}`);
  if ((await sha1File(got)) !== (await sha1File(expected))) throw new Error(`${got} differs from ${expected}`);
}
