/**
 * aria2c as the real BitTorrent client of the interop tests: the flags that keep it on
 * 127.0.0.1, running it to completion, and asking a tracker whether it lists a peer.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { announce } from '../network/tracker/announce.js';
import type { Node } from '../network/index.js';
import { freePort, sha1File, type Children } from './helpers.js';

/** Flags that keep aria2c on 127.0.0.1 and quiet: no DHT, no LPD multicast, no PEX, no IPv6, no user config. */
export const ARIA_NET = [
  '--no-conf=true',
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--disable-ipv6=true',
  '--interface=127.0.0.1',
  '--console-log-level=warn',
  '--summary-interval=0',
];

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last 8000 characters of stdout and stderr together. */
  output: string;
}

/** Run a command to completion, tracked by `children`; SIGKILL it after `timeoutMs`. */
export function run(children: Children, cmd: string, args: string[], timeoutMs: number, cwd?: string): Promise<Finished> {
  const child = children.track(spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (d: Buffer) => (output = (output + d.toString()).slice(-8000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, output });
    });
  });
}

/**
 * Whether the tracker lists 127.0.0.1:`port` for `infohash`. Asks as a passing observer on a
 * closed port and leaves again at once, so the swarm is not left with a peer nobody runs.
 */
export async function trackerLists(url: string, infohash: string, port: number): Promise<boolean> {
  const observer = { url, infoHash: Buffer.from(infohash, 'hex'), peerId: Buffer.from('-OB0001-observer0000'), port: 9, uploaded: 0, downloaded: 0, left: 1 };
  try {
    const res = await announce({ ...observer, timeoutMs: 2000 });
    return res.peers.some((p) => p.host === '127.0.0.1' && p.port === port);
  } finally {
    await announce({ ...observer, event: 'stopped', timeoutMs: 2000 }).catch(() => {});
  }
}

/**
 * aria2c fetches `torrentFile` into `into` (40 s at most): it must exit 0 with the bytes of
 * `original`, and `node`, which shares that file as `infohash`, must count the upload.
 */
export async function ariaDownloads(children: Children, node: Node, f: { torrentFile: string; original: string; infohash: string; into: string }): Promise<void> {
  const res = await run(children, 'aria2c', [...ARIA_NET, '--seed-time=0', `--listen-port=${await freePort()}`, '--file-allocation=none', '-d', f.into, f.torrentFile], 40_000);
  expect(res.code, `aria2c ${res.signal === 'SIGKILL' ? 'did not finish in 40 s' : `exited with ${res.code}`}: ${res.output}`).to.equal(0);
  expect(await sha1File(path.join(f.into, path.basename(f.original)))).to.equal(await sha1File(f.original));
  const stats = node.status().torrents.find((t) => t.infohash === f.infohash);
  expect(stats, 'the Shoal node has a torrent for the file').to.not.equal(undefined);
  expect(stats!.uploaded).to.be.at.least((await fsp.stat(f.original)).size);
}
