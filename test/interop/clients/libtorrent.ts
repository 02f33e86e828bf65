/**
 * libtorrent-rasterbar (python3-libtorrent, driven by test/lt_peer.py) in the interop suite.
 * It makes its own torrents (v1: libtorrent 2.0 makes v1+v2 hybrids unless told, and
 * hybrids are issue 15's item 9). `defaults` is libtorrent as it ships (uTP on, encryption
 * enabled but not required), `plain` has uTP and encryption off, `encrypted` forces
 * encryption both ways (in_enc_policy and out_enc_policy "forced") and allows RC4 alone
 * (allowed_enc_level "rc4": an MSE handshake with a plaintext payload would do otherwise).
 */
import { Children } from '../../helpers.js';
import { libtorrentMissing, libtorrentVersion, ltCreate, startLibtorrent, type LtOptions, type LtPeer } from '../../libtorrent.js';
import type { Lan, LanHost } from '../../netns.js';
import type { Settings } from '../cases.js';
import type { InteropClient } from '../client.js';

const PORT = 6883;
const children = new Children();

function options(lan: Lan, host: LanHost, settings: Settings): Pick<LtOptions, 'host' | 'port' | 'spawn' | 'defaults' | 'encryption' | 'rc4Only'> {
  return {
    host: host.ip,
    port: PORT,
    spawn: (cmd, args) => lan.exec(host, [cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }),
    defaults: settings !== 'plain',
    ...(settings === 'encrypted' ? { encryption: 'forced' as const, rc4Only: true } : {}),
  };
}

const last = (p: LtPeer) => JSON.stringify(p.events.filter((e) => e.event !== 'progress').slice(-3).concat(p.events.filter((e) => e.event === 'progress').slice(-1)));

/** From the first connection to the first byte of piece data, as libtorrent saw it. */
function startDelay(p: LtPeer): string | undefined {
  const connected = p.events.find((e) => e.event === 'connected');
  const payload = p.events.find((e) => e.event === 'first-payload');
  if (!connected || !payload) return undefined;
  return `first piece data ${Math.round((Number(payload.t) - Number(connected.t)) * 1000)} ms after connecting`;
}

async function stop(p: LtPeer): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

export const libtorrent: InteropClient = {
  name: 'libtorrent',
  missing: async () => libtorrentMissing(),
  version: async () => `${libtorrentVersion()} (python3-libtorrent)`,
  makeTorrent: (what, out, pieceLength, tracker) => ltCreate(what, out, pieceLength, [tracker]),
  seed: async (l, host, ref, dataDir, settings) => {
    const p = await startLibtorrent(children, 'seed', { ...options(l.lan, host, settings), torrent: ref.torrent!, dir: dataDir });
    return { stop: () => stop(p), describe: () => `libtorrent seed: ${last(p)}`, note: () => startDelay(p) };
  },
  fetch: async (l, host, ref, into, settings, ms) => {
    const p = await startLibtorrent(children, 'fetch', { ...options(l.lan, host, settings), dir: into, ...(ref.torrent ? { torrent: ref.torrent } : { magnet: ref.magnet! }) });
    try {
      await p.waitFor((e) => e.event === 'done', ms, 'the whole download');
      return startDelay(p);
    } finally {
      await stop(p);
    }
  },
  tearDown: () => children.killAll(),
};
