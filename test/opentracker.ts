import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { promises as fsp, accessSync, constants as fsConstants } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './helpers.js';

export interface Opentracker {
  url: string;
  stop(): Promise<void>;
}

export function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return null;
}

/**
 * Start Debian's opentracker on 127.0.0.1 for the given infohashes. Debian builds it with
 * a whitelist, so only listed infohashes are tracked; as root it chroots into its -d
 * directory and drops to nobody, so the list must be world-readable and named relative
 * to that directory. Resolves once it accepts connections.
 */
export async function startOpentracker(infohashes: string[], opts: { track?: (child: ChildProcess, dir: string) => void } = {}): Promise<Opentracker> {
  const bin = findExecutable('opentracker');
  if (!bin) throw new Error('opentracker is not installed (apt-get install opentracker)');
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-opentracker-'));
  await fsp.chmod(dir, 0o755);
  await fsp.writeFile(path.join(dir, 'whitelist'), infohashes.map((h) => `${h}\n`).join(''), { mode: 0o644 });
  const whitelist = process.getuid?.() === 0 ? '/whitelist' : path.join(dir, 'whitelist');
  const port = await freePort('tcp');
  const udp = await freePort('udp');
  const child: ChildProcess = spawn(bin, ['-i', '127.0.0.1', '-p', String(port), '-P', String(udp), '-d', dir, '-w', whitelist], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // A benchmark stopped by a signal while this waits for the tracker must still find it to kill.
  opts.track?.(child, dir);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    await fsp.rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`opentracker exited with ${child.exitCode}: ${stderr}`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`opentracker never became ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // The whitelist is read a moment after the listener opens.
  await new Promise((r) => setTimeout(r, 300));
  return { url: `http://127.0.0.1:${port}/announce`, stop };
}
