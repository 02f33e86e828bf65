/**
 * WebTorrent (the npm package, run by test/webtorrent-peer.ts as its own process in the
 * client's namespace) in the interop suite. It makes its own torrents (create-torrent, as
 * `client.seed` does). `defaults` is WebTorrent as it ships in Node (uTP first where
 * utp-native loads, no encryption), `plain` turns uTP off, `encrypted` adds `secure: true`:
 * WebTorrent has no setting that requires encryption, only one that tries it first.
 *
 * It is not a dependency of Shoal yet: loaded by a dynamic import of `SHOAL_WEBTORRENT` (a
 * module name or path, default `webtorrent`), and every case skips, saying so, when absent.
 */
import { execFile, spawnSync } from 'node:child_process';
import path from 'node:path';
import { Children, ROOT } from '../../helpers.js';
import { jsonLines, type JsonLinesChild } from '../../json-lines.js';
import type { Lan, LanHost } from '../../netns.js';
import type { Settings } from '../cases.js';
import type { InteropClient, TorrentRef } from '../client.js';

const DRIVER = path.join(ROOT, 'dist', 'test', 'webtorrent-peer.js');
const PORT = 6884;
const children = new Children();

let probed: { version?: string; missing?: string } | undefined;

function probe(): { version?: string; missing?: string } {
  if (probed) return probed;
  const r = spawnSync(process.execPath, [DRIVER, 'version'], { encoding: 'utf8', timeout: 30_000 });
  const out = (r.stdout || r.stderr || '').trim();
  probed = r.status === 0 ? { version: out } : { missing: `WebTorrent is not installed (npm package webtorrent, or SHOAL_WEBTORRENT=path): ${out.slice(0, 200)}` };
  return probed;
}

function settingsArgs(settings: Settings): string[] {
  return settings === 'plain' ? ['--no-utp'] : settings === 'encrypted' ? ['--secure'] : [];
}

function start(lan: Lan, host: LanHost, mode: 'seed' | 'fetch', ref: TorrentRef, dir: string, settings: Settings): JsonLinesChild {
  const source = ref.torrent ? ['--torrent', ref.torrent] : ['--magnet', ref.magnet!];
  const args = [DRIVER, mode, ...source, '--dir', dir, '--port', String(PORT), ...settingsArgs(settings)];
  return jsonLines(children.track(lan.exec(host, [process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })), 'webtorrent');
}

async function stop(p: JsonLinesChild): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

const last = (p: JsonLinesChild) => JSON.stringify(p.events.filter((e) => e.event !== 'progress').slice(-3).concat(p.events.filter((e) => e.event === 'progress').slice(-1)));

export const webtorrent: InteropClient = {
  name: 'webtorrent',
  missing: async () => probe().missing ?? null,
  version: async () => probe().version ?? 'missing',
  remark: (c, d) =>
    c.settings !== 'encrypted'
      ? undefined
      : d === 'to-shoal'
        ? 'WebTorrent cannot require encryption (`secure` only tries MSE first), and its MSE handshake stalls when the initiator sends a PadA (as the spec allows and libtorrent, Transmission and Shoal do): Shoal gives up on MSE after 10 s and connects without it'
        : 'WebTorrent cannot require encryption (`secure` only tries MSE first)',
  makeTorrent: (what, out, pieceLength, tracker) =>
    new Promise((resolve, reject) =>
      execFile(process.execPath, [DRIVER, 'create', '--path', what, '--out', out, '--piece-length', String(pieceLength), '--tracker', tracker], { timeout: 60_000 }, (err, _o, stderr) =>
        err ? reject(new Error(`webtorrent create failed: ${err.message} ${stderr}`)) : resolve(),
      ),
    ),
  seed: async (l, host, ref, dataDir, settings) => {
    const p = start(l.lan, host, 'seed', ref, dataDir, settings);
    await p.waitFor((e) => e.event === 'seeding', 30_000, 'seeding');
    return { stop: () => stop(p), describe: () => `webtorrent seed: ${last(p)} ${p.stderr().slice(-300)}` };
  },
  fetch: async (l, host, ref, into, settings, ms) => {
    const p = start(l.lan, host, 'fetch', ref, into, settings);
    try {
      await p.waitFor((e) => e.event === 'done', ms, 'the whole download');
    } finally {
      await stop(p);
    }
  },
  tearDown: () => children.killAll(),
};
