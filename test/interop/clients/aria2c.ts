/**
 * aria2c in the interop suite. It makes no torrents: its users use mktorrent (which cannot
 * go below 32 KiB pieces; transmission-create makes those). It has no uTP; `defaults` is
 * aria2c as it ships, `encrypted` adds --bt-require-crypto with RC4 (arc4) at least.
 */
import { execFile, spawnSync } from 'node:child_process';
import { ARIA_NET } from '../../aria2.js';
import { findExecutable } from '../../opentracker.js';
import type { LanHost } from '../../netns.js';
import type { Settings } from '../cases.js';
import type { InteropClient } from '../client.js';
import { shoalCreate } from '../shoal.js';

const PORT = 6882;

/** aria2c's network flags with its own address instead of 127.0.0.1. */
export function ariaNet(host: LanHost): string[] {
  return [...ARIA_NET.filter((a) => !a.startsWith('--interface=')), `--interface=${host.ip}`];
}

function crypto(settings: Settings): string[] {
  return settings === 'encrypted' ? ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'] : [];
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 60_000 }, (err, _o, stderr) => (err ? reject(new Error(`${cmd} failed: ${err.message} ${stderr}`)) : resolve())),
  );
}

/** mktorrent for 32 KiB pieces and up; below, transmission-create (or node-cli create where that is missing). */
export async function mktorrent(what: string, out: string, pieceLength: number, tracker: string): Promise<void> {
  const log2 = Math.log2(pieceLength);
  if (log2 >= 15) return run('mktorrent', ['-l', String(log2), '-a', tracker, '-o', out, what]);
  if (findExecutable('transmission-create')) return run('transmission-create', ['-s', String(pieceLength / 1024), '-t', tracker, '-o', out, what]);
  return shoalCreate(what, out, pieceLength, tracker);
}

export const aria2c: InteropClient = {
  name: 'aria2c',
  missing: async () => {
    const absent = ['aria2c', 'mktorrent'].filter((t) => !findExecutable(t));
    return absent.length > 0 ? `${absent.join(', ')} not installed (apt-get install aria2 mktorrent)` : null;
  },
  version: async () => /aria2 version (\S+)/.exec(spawnSync('aria2c', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 'unknown',
  makeTorrent: mktorrent,
  seed: async (l, host, ref, dataDir, settings) => {
    const args = [...ariaNet(host), ...crypto(settings), '--seed-ratio=0.0', '--bt-seed-unverified=true', '--check-integrity=false', `--listen-port=${PORT}`, '-d', dataDir, ref.torrent!];
    const child = l.lan.exec(host, ['aria2c', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return {
      describe: () => `aria2c seed ${child.exitCode !== null ? `exited with ${child.exitCode}` : 'running'}: ${output.slice(-500)}`,
      stop: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      },
    };
  },
  fetch: async (l, host, ref, into, settings, ms) => {
    const target = ref.torrent ?? ref.magnet!;
    const r = await l.lan.run(host, ['aria2c', ...ariaNet(host), ...crypto(settings), '--seed-time=0', `--listen-port=${PORT}`, '--file-allocation=none', '-d', into, target], ms);
    if (r.code !== 0) throw new Error(`aria2c ${r.code === null ? `did not finish in ${ms / 1000} s` : `exited with ${r.code}`}: ${(r.stdout + r.stderr).slice(-800)}`);
  },
};
