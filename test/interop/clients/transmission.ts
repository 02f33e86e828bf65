/**
 * Transmission in the interop suite: one `transmission-daemon` per test file in the client's
 * namespace, driven by `transmission-remote` from inside that namespace (its RPC listens on
 * the namespace's loopback only). Torrents are made with transmission-create, as its users
 * do (it writes `private=0` into the info dictionary).
 *
 * Settings per case, changed on the running session: `defaults` is Transmission as it ships
 * (uTP on, encryption preferred), `plain` is uTP off and encryption tolerated (it prefers
 * plain connections), `encrypted` is uTP on and encryption required. DHT, LPD, PEX and port
 * mapping are off throughout: only the tracker names peers.
 */
import { execFile, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { findExecutable } from '../../opentracker.js';
import type { Lan, LanHost } from '../../netns.js';
import type { Settings } from '../cases.js';
import type { InteropClient } from '../client.js';
import { pollUntil } from '../lan.js';

const PEER_PORT = 51413;
const RPC = '127.0.0.1:9091';

interface Daemon {
  lan: Lan;
  host: LanHost;
  child: ChildProcess;
  log: string;
  settings?: Settings;
}

let daemon: Daemon | undefined;

async function remote(...args: string[]): Promise<string> {
  const d = daemon!;
  const r = await d.lan.run(d.host, ['transmission-remote', RPC, ...args], 15_000);
  if (r.code !== 0) throw new Error(`transmission-remote ${args.join(' ')}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** The fields of `transmission-remote -t H -i` that the suite reads. */
async function info(infohash: string): Promise<{ percent: number; state: string; error: string; text: string }> {
  const text = await remote('-t', infohash, '-i');
  const field = (name: string) => new RegExp(`^\\s*${name}: (.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { percent: parseFloat(field('Percent Done')) || 0, state: field('State'), error: field('Error'), text };
}

async function peers(infohash: string): Promise<string> {
  return remote('-t', infohash, '-ip').then((t) => t.trim().split('\n').slice(0, 5).join('; '), (e: Error) => e.message);
}

async function apply(settings: Settings): Promise<void> {
  if (daemon!.settings === settings) return;
  const utp = settings === 'plain' ? '--no-utp' : '--utp';
  const enc = { defaults: '--encryption-preferred', plain: '--encryption-tolerated', encrypted: '--encryption-required' }[settings];
  await remote(utp, enc);
  daemon!.settings = settings;
}

async function describe(infohash: string): Promise<string> {
  const i = await info(infohash).catch((e: Error) => ({ percent: 0, state: '?', error: e.message, text: '' }));
  return `Transmission: ${i.percent}% ${i.state}${i.error ? `, error ${i.error}` : ''}; peers: ${await peers(infohash)}; log: ${daemon!.log.slice(-400)}`;
}

async function remove(infohash: string): Promise<void> {
  await remote('-t', infohash, '-r').catch(() => '');
}

export const transmission: InteropClient = {
  name: 'transmission',
  missing: async () => {
    const absent = ['transmission-daemon', 'transmission-remote', 'transmission-create'].filter((t) => !findExecutable(t));
    return absent.length > 0 ? `${absent.join(', ')} not installed (apt-get install transmission-daemon transmission-cli)` : null;
  },
  version: async () => {
    const r = spawnSync('transmission-daemon', ['--version'], { encoding: 'utf8' });
    return /(\d+\.\d+\S* \(\w+\))/.exec(`${r.stdout} ${r.stderr}`)?.[1] ?? 'unknown';
  },
  concurrent: true,
  createsEmptyFiles: false,
  setUp: async (l, host) => {
    const config = path.join(l.dir, 'transmission');
    await fsp.mkdir(config, { recursive: true });
    const settings = {
      'bind-address-ipv4': host.ip,
      'peer-port': PEER_PORT,
      'peer-port-random-on-start': false,
      'port-forwarding-enabled': false,
      'dht-enabled': false,
      'lpd-enabled': false,
      'pex-enabled': false,
      'rpc-enabled': true,
      'rpc-bind-address': '127.0.0.1',
      'rpc-port': 9091,
      'rpc-authentication-required': false,
      'rpc-whitelist-enabled': true,
      'rpc-whitelist': '127.0.0.1',
      'rpc-host-whitelist-enabled': false,
      'download-dir': path.join(l.dir, 'transmission-downloads'),
      'incomplete-dir-enabled': false,
      'start-added-torrents': true,
      'ratio-limit-enabled': false,
      'idle-seeding-limit-enabled': false,
      'download-queue-enabled': false,
      'seed-queue-enabled': false,
      'queue-stalled-enabled': false,
      'blocklist-enabled': false,
      'message-level': 1,
    };
    await fsp.writeFile(path.join(config, 'settings.json'), JSON.stringify(settings, null, 2));
    // SHOAL_INTEROP_TRANSMISSION_LOG=FILE keeps Transmission's debug log there, with its
    // "deep" log of every peer message (TR_DEBUG_FD, written to its stderr).
    const logTo = process.env.SHOAL_INTEROP_TRANSMISSION_LOG;
    const log = logTo ? ['--log-debug'] : ['--log-error'];
    const env = logTo ? { ...process.env, TR_DEBUG_FD: '2' } : process.env;
    const child = l.lan.exec(host, ['transmission-daemon', '-f', '-g', config, ...log], { stdio: ['ignore', 'pipe', 'pipe'], env });
    if (logTo) child.stderr!.pipe(createWriteStream(logTo));
    const d: Daemon = { lan: l.lan, host, child, log: '' };
    daemon = d;
    const keep = (b: Buffer) => (d.log = (d.log + b.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await pollUntil(async () => {
      if (child.exitCode !== null) throw new Error(`transmission-daemon exited with ${child.exitCode}: ${d.log}`);
      return (await l.lan.run(host, ['transmission-remote', RPC, '-si'], 5000)).code === 0;
    }, 30_000, 'transmission-daemon to answer RPC');
  },
  tearDown: async () => {
    const d = daemon;
    daemon = undefined;
    if (d && d.child.exitCode === null && d.child.signalCode === null) {
      d.child.kill('SIGTERM');
      const killer = setTimeout(() => d.child.kill('SIGKILL'), 5000);
      await new Promise((r) => d.child.once('exit', r));
      clearTimeout(killer);
    }
  },
  makeTorrent: (what, out, pieceLength, tracker) =>
    new Promise((resolve, reject) =>
      execFile('transmission-create', ['-s', String(pieceLength / 1024), '-t', tracker, '-o', out, what], { timeout: 60_000 }, (err, _o, stderr) =>
        err ? reject(new Error(`transmission-create failed: ${err.message} ${stderr}`)) : resolve(),
      ),
    ),
  seed: async (_l, _host, ref, dataDir, settings) => {
    await apply(settings);
    await remote('-a', ref.torrent!, '-w', dataDir);
    // Transmission checks the data it finds on disk, then seeds it.
    await pollUntil(async () => {
      const i = await info(ref.infohash);
      if (i.error) throw new Error(`Transmission: ${i.error}`);
      return i.percent === 100 && /Seeding|Idle/.test(i.state);
    }, 30_000, 'Transmission to check the data and seed').catch(async (err: Error) => {
      throw new Error(`${err.message}; ${await describe(ref.infohash)}`);
    });
    return { stop: () => remove(ref.infohash), describe: () => `(see the peers Transmission lists) ${daemon!.log.slice(-300)}` };
  },
  fetch: async (_l, _host, ref, into, settings, ms) => {
    await apply(settings);
    await remote('-a', ref.torrent ?? ref.magnet!, '-w', into);
    try {
      await pollUntil(async () => {
        const i = await info(ref.infohash);
        if (i.error) throw new Error(`Transmission: ${i.error}`);
        return i.percent === 100;
      }, ms, 'Transmission to finish the download').catch(async (err: Error) => {
        throw new Error(`${err.message}; ${await describe(ref.infohash)}`);
      });
    } finally {
      // Removing the torrent closes its files: everything is on disk before the bytes are compared.
      await remove(ref.infohash);
    }
  },
};
