/**
 * libtorrent-rasterbar (Debian's python3-libtorrent) as a real peer of the interop tests:
 * test/lt_peer.py runs a seed or a fetch on 127.0.0.1 with DHT, LSD, UPnP and NAT-PMP off
 * (uTP and encryption as asked) and reports JSON lines; this starts it and waits for what it says.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT, freePort, type Children } from './helpers.js';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(ROOT, 'test', 'lt_peer.py');

/** Why libtorrent cannot run here, or null when it can. */
export function libtorrentMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import libtorrent'], { encoding: 'utf8' });
  if (probe.error) return `no ${PYTHON}: ${probe.error.message}`;
  return probe.status === 0 ? null : 'python3-libtorrent is not installed (apt-get install python3-libtorrent)';
}

export interface LtEvent {
  event: string;
  [field: string]: unknown;
}

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
  /** Prefer RC4 to plaintext when both ends allow either (libtorrent's prefer_rc4). */
  rc4?: boolean;
  /** uTP: off (the default), on (TCP and uTP, uTP tried first), only (no TCP at all). */
  utp?: 'off' | 'on' | 'only';
  /** Upload slots (libtorrent's unchoke_slots_limit): 0 chokes every peer for good, optimistic unchokes included. */
  unchokeSlots?: number;
  /** Pieces in the allowed-fast set it grants each peer (allowed_fast_set_size; libtorrent's default is 5). */
  allowedFast?: number;
}

export async function startLibtorrent(children: Children, mode: 'seed' | 'fetch', o: LtOptions): Promise<LtPeer> {
  const port = await freePort();
  const args = [SCRIPT, mode, '--dir', o.dir, '--port', String(port)];
  if (o.torrent) args.push('--torrent', o.torrent);
  if (o.magnet) args.push('--magnet', o.magnet);
  if (o.encryption) args.push('--encryption', o.encryption);
  if (o.rc4) args.push('--rc4');
  if (o.utp) args.push('--utp', o.utp);
  if (o.unchokeSlots !== undefined) args.push('--unchoke-slots', String(o.unchokeSlots));
  if (o.allowedFast !== undefined) args.push('--allowed-fast', String(o.allowedFast));
  for (const p of o.peers ?? []) args.push('--peer', `${p.host}:${p.port}`);
  const child = children.track(spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const events: LtEvent[] = [];
  const waiters = new Set<() => void>();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      events.push(JSON.parse(line) as LtEvent);
    } catch {
      return;
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    resolve(code);
    for (const w of [...waiters]) w();
  }));
  const waitFor = (pred: (e: LtEvent) => boolean, ms: number, what: string): Promise<LtEvent> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        const hit = events.find(pred);
        if (hit) {
          finish();
          resolve(hit);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`libtorrent exited (${child.exitCode ?? child.signalCode}) before ${what}: ${stderr || JSON.stringify(events.slice(-3))}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`libtorrent: no ${what} within ${ms} ms (last: ${JSON.stringify(events.slice(-2))}) ${stderr}`));
      }, ms);
      const finish = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
      };
      waiters.add(done);
      done();
    });
  const peer: LtPeer = { child, port, events, waitFor, exited };
  await waitFor((e) => e.event === 'listening', 15_000, 'listening');
  // A seed turns connections away until its torrent is ready.
  if (mode === 'seed') await waitFor((e) => e.event === 'progress' && String(e.state).includes('seeding') && e.paused === false, 15_000, 'seeding');
  return peer;
}
