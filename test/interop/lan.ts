/**
 * The network of one interop test file: a LAN of namespaces (test/netns.ts) where host 1 runs
 * the Shoal nodes and a real opentracker, and the other hosts run real clients, each on its
 * own address. Transmission never dials 127.x peers and tracks peers by address, so the
 * clients cannot share loopback with Shoal; a bridge between namespaces is what a LAN is.
 *
 * The tracker is Debian's opentracker with its whitelist: `allow(infohash)` adds a torrent
 * (the list is re-read on SIGHUP), `seeders(infohash)` scrapes it from inside the LAN.
 */
import type { ChildProcess } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { tempDir, cleanup } from '../helpers.js';
import { createLan, netnsSupport, type Lan, type LanHost } from '../netns.js';
import { findExecutable } from '../opentracker.js';

export const TRACKER_PORT = 6969;

export interface LanTracker {
  url: string;
  /** Track `infohash` too (opentracker ignores torrents off its whitelist). */
  allow(infohash: string): Promise<void>;
  /** Seeders and leechers the tracker lists for `infohash` (a scrape from host 1). */
  scrape(infohash: string): Promise<{ complete: number; incomplete: number }>;
  /** Wait until the tracker lists at least `n` seeders of `infohash`. */
  waitSeeders(infohash: string, n?: number, ms?: number): Promise<void>;
}

export interface InteropLan {
  lan: Lan;
  /** Host 1: the Shoal nodes and the tracker. */
  shoal: LanHost;
  /** Hosts for Shoal nodes, host 1 first: a client that tells peers apart by address sees each as another peer. */
  shoals: LanHost[];
  /** Host 2 and on: the real clients. */
  clients: LanHost[];
  tracker: LanTracker;
  /** A temp folder the whole file uses; removed by destroy(). */
  dir: string;
  destroy(): Promise<void>;
}

/** Why the LAN cannot be built here (no root, no iproute2, no opentracker), or null. */
export function lanMissing(): string | null {
  const ns = netnsSupport();
  if (!ns.ok) return ns.reason;
  for (const tool of ['opentracker', 'curl']) if (!findExecutable(tool)) return `${tool} is not installed`;
  return null;
}

/**
 * `waitFor` for conditions that start a process each time they are asked (curl,
 * transmission-remote): asked every `everyMs`, not every 25 ms, on a two-core machine.
 */
export async function pollUntil(pred: () => Promise<boolean>, ms: number, what: string, everyMs = 200): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Percent-encoded bytes of a hex infohash, as a tracker query wants them. */
export const urlInfoHash = (hex: string): string => hex.replace(/../g, (b) => `%${b}`);

async function startTracker(lan: Lan, host: LanHost, dir: string): Promise<{ tracker: LanTracker; child: ChildProcess }> {
  // As root, opentracker chroots into -d and drops to nobody: the list is named inside it.
  await fsp.mkdir(dir, { recursive: true, mode: 0o755 });
  await fsp.chmod(dir, 0o755);
  const list = path.join(dir, 'whitelist');
  await fsp.writeFile(list, '', { mode: 0o644 });
  const child = lan.exec(host, ['opentracker', '-i', host.ip, '-p', String(TRACKER_PORT), '-P', String(TRACKER_PORT), '-d', dir, '-w', '/whitelist'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const base = `http://${host.ip}:${TRACKER_PORT}`;
  const curl = async (url: string) => {
    const r = await lan.run(host, ['curl', '-s', '--max-time', '3', url], 5000);
    return r.code === 0 ? r.stdout : '';
  };
  await pollUntil(async () => {
    if (child.exitCode !== null) throw new Error(`opentracker exited with ${child.exitCode}: ${stderr}`);
    return (await lan.run(host, ['curl', '-s', '-o', '/dev/null', '--max-time', '2', `${base}/stats`], 4000)).code === 0;
  }, 15_000, 'opentracker to listen', 100);
  const allowed = new Set<string>();
  const scrape = async (infohash: string) => {
    const body = await curl(`${base}/scrape?info_hash=${urlInfoHash(infohash)}`);
    const num = (k: string) => Number(new RegExp(`${k.length}:${k}i(\\d+)e`).exec(body)?.[1] ?? 0);
    return { complete: num('complete'), incomplete: num('incomplete') };
  };
  const tracker: LanTracker = {
    url: `${base}/announce`,
    allow: async (infohash) => {
      if (allowed.has(infohash)) return;
      allowed.add(infohash);
      await fsp.writeFile(list, [...allowed].map((h) => `${h}\n`).join(''), { mode: 0o644 });
      child.kill('SIGHUP');
      // The list is re-read by a thread woken by the signal: wait until a scrape knows it.
      await new Promise((r) => setTimeout(r, 300));
    },
    scrape,
    waitSeeders: async (infohash, n = 1, ms = 30_000) => {
      await pollUntil(async () => (await scrape(infohash)).complete >= n, ms, `the tracker to list ${n} seeder(s) of ${infohash}`, 100);
    },
  };
  return { tracker, child };
}

/**
 * Build the LAN: `shoalHosts` hosts for Shoal nodes (the first also runs the tracker), then
 * `clients` client hosts, addressed .1, .2, ... of `subnet` in that order; start the tracker.
 */
export async function createInteropLan(prefix: string, clients: number, subnet: string, shoalHosts = 1): Promise<InteropLan> {
  const dir = await tempDir(`shoal-${prefix}-`);
  const lan = await createLan({ prefix, hosts: shoalHosts + clients, subnet });
  try {
    const shoal = lan.hosts[0]!;
    const { tracker } = await startTracker(lan, shoal, path.join(dir, 'tracker'));
    return {
      lan,
      shoal,
      shoals: lan.hosts.slice(0, shoalHosts),
      clients: lan.hosts.slice(shoalHosts),
      tracker,
      dir,
      destroy: async () => {
        await lan.destroy();
        if (process.env.SHOAL_INTEROP_KEEP === '1') console.log(`      (kept ${dir}: SHOAL_INTEROP_KEEP=1)`);
        else await cleanup(dir);
      },
    };
  } catch (err) {
    await lan.destroy();
    await cleanup(dir);
    throw err;
  }
}
