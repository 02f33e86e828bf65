/**
 * A real WebTorrent peer for the interop tests, run as its own process (in a client's
 * namespace), driven by arguments like test/lt_peer.py:
 *
 *   webtorrent-peer.js version
 *   webtorrent-peer.js create --path FILE_OR_DIR --out F.torrent --piece-length N --tracker URL
 *   webtorrent-peer.js seed   --torrent F.torrent --dir DIR --port N [--no-utp] [--secure]
 *   webtorrent-peer.js fetch  (--torrent F.torrent | --magnet URI) --dir DIR --port N [--no-utp] [--secure]
 *
 * WebTorrent is the npm package (TCP, and uTP where utp-native loads; WebRTC is never used
 * here). It is loaded with a dynamic import of `SHOAL_WEBTORRENT` (a module name or a file
 * path; default `webtorrent`), so a machine without it says so instead of failing to load.
 * DHT, LSD, PEX, UPnP and NAT-PMP are off; only the tracker in the torrent names peers.
 *
 * One JSON object per line on stdout, each with "t" (seconds): {"event": "listening"},
 * {"event": "seeding"}, {"event": "connected", "peer": ...} (the first wire only),
 * {"event": "metadata"}, {"event": "first-payload"}, {"event": "progress", ...},
 * {"event": "done"}, {"event": "error", "message": ...}, {"event": "created", "infohash": H}.
 * `version` prints the version and exits 0, or the reason and exits 2.
 */
import { promises as fsp } from 'node:fs';
import { register } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface Wire {
  remoteAddress?: string;
  remotePort?: number;
  type?: string;
}
interface WtTorrent {
  infoHash: string;
  torrentFile: Uint8Array;
  progress: number;
  numPeers: number;
  done: boolean;
  on(event: 'wire', cb: (wire: Wire, addr?: string) => void): void;
  on(event: 'download' | 'upload', cb: (bytes: number) => void): void;
  on(event: 'done' | 'metadata' | 'ready', cb: () => void): void;
  on(event: 'error' | 'warning', cb: (err: Error | string) => void): void;
}
interface WtClient {
  add(id: Uint8Array | string, opts: Record<string, unknown>, cb?: (t: WtTorrent) => void): WtTorrent;
  seed(input: string, opts: Record<string, unknown>, cb?: (t: WtTorrent) => void): WtTorrent;
  destroy(cb?: (err?: Error) => void): void;
  on(event: 'error', cb: (err: Error | string) => void): void;
  on(event: 'listening', cb: () => void): void;
}
type WtConstructor = (new (opts: Record<string, unknown>) => WtClient) & { VERSION: string; UTP_SUPPORT?: boolean };

function say(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, t: Date.now() / 1000, ...fields }) + '\n');
}

/**
 * Two module-resolution hooks make Debian's Node 20 run WebTorrent 2.8 (its 3.x wants Node 22)
 * as the lockfile installs it, changing nothing but this process:
 *
 * - `webrtc-polyfill` loads node-datachannel's native addon at once, whose install script
 *   downloads a prebuilt binary (package.json's allowScripts denies it: CI cannot). WebRTC
 *   is never used here, so the import resolves to a module with no WebRTC in it, as the
 *   package's browser build has where none exists: simple-peer then reports no WebRTC support.
 * - uint8-util 2.3 (what the lockfile resolves) throws when `arr2hex` is handed a hex string,
 *   which WebTorrent 2.8 does with every infohash it parses (2.2 let it through): `arr2hex`
 *   returns such a string as it is, everything else is uint8-util's own.
 */
const NO_WEBRTC = ['RTCPeerConnection', 'RTCSessionDescription', 'RTCIceCandidate'].map((n) => `export const ${n} = undefined;`).join('\n');
const HOOKS = `
const data = (code) => 'data:text/javascript,' + encodeURIComponent(code);
export async function resolve(specifier, context, next) {
  if (specifier === 'webrtc-polyfill') return { url: data(${JSON.stringify(NO_WEBRTC)}), shortCircuit: true };
  if (specifier === 'uint8-util') {
    const real = (await next(specifier, context)).url;
    const wrapper = 'import * as real from ' + JSON.stringify(real) + '; export * from ' + JSON.stringify(real) + ';'
      + ' export const arr2hex = (d) => (typeof d === "string" ? d : real.arr2hex(d));';
    return { url: data(wrapper), shortCircuit: true };
  }
  return next(specifier, context);
}`;

export async function loadWebTorrent(): Promise<WtConstructor> {
  register(`data:text/javascript,${encodeURIComponent(HOOKS)}`);
  const spec = process.env.SHOAL_WEBTORRENT ?? 'webtorrent';
  const mod = (await import(path.isAbsolute(spec) ? pathToFileURL(spec).href : spec)) as { default: WtConstructor };
  return mod.default;
}

async function main(): Promise<number> {
  const mode = process.argv[2];
  const { values: a } = parseArgs({
    args: process.argv.slice(3),
    options: {
      torrent: { type: 'string' },
      magnet: { type: 'string' },
      dir: { type: 'string' },
      port: { type: 'string' },
      'no-utp': { type: 'boolean' },
      secure: { type: 'boolean' },
      path: { type: 'string' },
      out: { type: 'string' },
      'piece-length': { type: 'string' },
      tracker: { type: 'string', multiple: true },
    },
  });
  let WebTorrent: WtConstructor;
  try {
    WebTorrent = await loadWebTorrent();
  } catch (err) {
    if (mode === 'version') {
      console.log(`cannot load WebTorrent (${process.env.SHOAL_WEBTORRENT ?? 'webtorrent'}): ${(err as Error).message.split('\n')[0]}`);
      return 2;
    }
    throw err;
  }
  if (mode === 'version') {
    console.log(`${WebTorrent.VERSION}${WebTorrent.UTP_SUPPORT ? ' (uTP available)' : ' (no uTP: utp-native does not load)'}`);
    return 0;
  }
  const client = new WebTorrent({
    dht: false,
    lsd: false,
    utPex: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    torrentPort: Number(a.port ?? 0),
    ...(a['no-utp'] ? { utp: false } : {}),
    ...(a.secure ? { secure: true } : {}),
    ...(mode === 'create' ? { tracker: false } : {}),
  });
  client.on('error', (err) => {
    say('error', { message: String(err) });
    process.exit(1);
  });

  if (mode === 'create') {
    // seed() makes the torrent as WebTorrent's users get it; with the tracker off it announces nowhere.
    const t = await new Promise<WtTorrent>((resolve) =>
      client.seed(a.path!, { announce: a.tracker ?? [], pieceLength: Number(a['piece-length']), createdBy: `WebTorrent/${WebTorrent.VERSION}` }, resolve),
    );
    await fsp.writeFile(a.out!, t.torrentFile);
    say('created', { infohash: t.infoHash });
    await new Promise<void>((r) => client.destroy(() => r()));
    return 0;
  }

  const input = a.torrent ? await fsp.readFile(a.torrent) : a.magnet!;
  const torrent = client.add(input, { path: a.dir, announce: [] });
  say('listening');
  let connected = false;
  let payload = false;
  torrent.on('wire', (wire, addr) => {
    if (connected) return;
    connected = true;
    say('connected', { peer: addr ?? `${wire.remoteAddress}:${wire.remotePort}`, type: wire.type });
  });
  const first = (direction: string) => () => {
    if (payload) return;
    payload = true;
    say('first-payload', { direction });
  };
  torrent.on(mode === 'seed' ? 'upload' : 'download', first(mode === 'seed' ? 'up' : 'down'));
  torrent.on('metadata', () => say('metadata', { infohash: torrent.infoHash }));
  torrent.on('warning', (w) => say('warning', { message: String(w) }));
  torrent.on('error', (err) => {
    say('error', { message: String(err) });
    process.exit(1);
  });
  const progress = setInterval(() => say('progress', { progress: torrent.progress, peers: torrent.numPeers, done: torrent.done }), 500);
  await new Promise<void>((resolve) => (torrent.done ? resolve() : torrent.on('done', resolve)));
  if (mode === 'seed') {
    say('seeding');
    return new Promise<number>(() => {}); // until killed
  }
  clearInterval(progress);
  // Destroying the client closes the files: everything is on disk once it has.
  await new Promise<void>((r) => client.destroy(() => r()));
  say('done', { infohash: torrent.infoHash });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    say('error', { message: err.stack ?? String(err) });
    process.exit(1);
  },
);
