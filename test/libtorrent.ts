/**
 * libtorrent-rasterbar (Debian's python3-libtorrent) as a real peer of the interop tests:
 * test/lt_peer.py runs a seed or a fetch on 127.0.0.1 (or a namespace's address) with DHT,
 * LSD, UPnP and NAT-PMP off, uTP and encryption off unless asked (or as libtorrent ships
 * them, with `defaults`), and reports JSON lines; this starts it and waits for what it says.
 * `ltCreate` makes a .torrent with libtorrent.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT, freePort, type Children } from './helpers.js';
import { jsonLines, type JsonEvent } from './json-lines.js';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'test', 'lt_peer.py');

/** Why libtorrent cannot run here, or null when it can. */
export function libtorrentMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import libtorrent'], { encoding: 'utf8' });
  if (probe.error) return `no ${PYTHON}: ${probe.error.message}`;
  return probe.status === 0 ? null : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)';
}

export type LtEvent = JsonEvent;

export interface LtPeer {
  child: ChildProcess;
  port: number;
  events: LtEvent[];
  /** Resolves with the first event for which `pred` holds; rejects after `ms` or when the process exits first. */
  waitFor(pred: (e: LtEvent) => boolean, ms: number, what: string): Promise<LtEvent>;
  exited: Promise<number | null>;
}

export interface LtOptions {
  torrent?: string;
  magnet?: string;
  dir: string;
  peers?: Array<{ host: string; port: number }>;
  encryption?: 'enabled' | 'forced' | 'disabled';
  /** libtorrent's own uTP and encryption settings, as it ships (else both off unless `utp` / `encryption` say). */
  defaults?: boolean;
  /** Upload cap of a seed, bytes per second. */
  uploadRate?: number;
  /** The address to listen on (default 127.0.0.1) and the port (default: a free one on loopback). */
  host?: string;
  port?: number;
  /** How to start the process (default: here); a LAN test starts it inside a namespace. */
  spawn?: (cmd: string, args: string[]) => ChildProcess;
  /** Prefer RC4 to plaintext when both ends allow either (libtorrent's prefer_rc4). */
  rc4?: boolean;
  /** Allow RC4 alone: no MSE with a plaintext payload (libtorrent's allowed_enc_level rc4). */
  rc4Only?: boolean;
  /** uTP: off (the default), on (TCP and uTP, uTP tried first), only (no TCP at all). */
  utp?: 'off' | 'on' | 'only';
  /** Upload slots (libtorrent's unchoke_slots_limit): 0 chokes every peer for good, optimistic unchokes included. */
  unchokeSlots?: number;
  /** Pieces in the allowed-fast set it grants each peer (allowed_fast_set_size; libtorrent's default is 5). */
  allowedFast?: number;
}

export async function startLibtorrent(children: Children, mode: 'seed' | 'fetch', o: LtOptions): Promise<LtPeer> {
  const port = o.port ?? (await freePort());
  const args = [SCRIPT, mode, '--dir', o.dir, '--port', String(port)];
  if (o.host) args.push('--host', o.host);
  if (o.torrent) args.push('--torrent', o.torrent);
  if (o.magnet) args.push('--magnet', o.magnet);
  if (o.encryption) args.push('--encryption', o.encryption);
  if (o.defaults) args.push('--defaults');
  if (o.uploadRate) args.push('--upload-rate', String(o.uploadRate));
  if (o.rc4) args.push('--rc4');
  if (o.rc4Only) args.push('--rc4-only');
  if (o.utp) args.push('--utp', o.utp);
  if (o.unchokeSlots !== undefined) args.push('--unchoke-slots', String(o.unchokeSlots));
  if (o.allowedFast !== undefined) args.push('--allowed-fast', String(o.allowedFast));
  for (const p of o.peers ?? []) args.push('--peer', `${p.host}:${p.port}`);
  const start = o.spawn ?? ((cmd: string, a: string[]) => spawn(cmd, a, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const child = children.track(start(PYTHON, args));
  const { events, waitFor, exited } = jsonLines(child, 'libtorrent');
  const peer: LtPeer = { child, port, events, waitFor, exited };
  await waitFor((e) => e.event === 'listening', 15_000, 'listening');
  // A seed turns connections away until its torrent is ready.
  if (mode === 'seed') await waitFor((e) => e.event === 'progress' && String(e.state).includes('seeding') && e.paused === false, 15_000, 'seeding');
  return peer;
}

/** Make a v1 .torrent of `what` (a file or a folder) with libtorrent's create_torrent. */
export function ltCreate(what: string, out: string, pieceLength: number, trackers: string[]): Promise<void> {
  const args = [SCRIPT, 'create', '--path', what, '--out', out, '--piece-length', String(pieceLength), ...trackers.flatMap((t) => ['--tracker', t])];
  return new Promise((resolve, reject) =>
    execFile(PYTHON, args, { timeout: 60_000 }, (err, _o, stderr) => (err ? reject(new Error(`lt_peer.py create failed: ${err.message} ${stderr}`)) : resolve())),
  );
}

/** The libtorrent version python3-libtorrent brings. */
export function libtorrentVersion(): string {
  return spawnSync(PYTHON, ['-c', 'import libtorrent; print(libtorrent.__version__)'], { encoding: 'utf8' }).stdout.trim();
}
