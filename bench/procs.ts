import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import net from 'node:net';

/**
 * What a benchmark must undo however it ends, Ctrl-C and SIGTERM included: the processes it
 * started (killed), the steps it registered (run, each for a few seconds at most), and the
 * folders it made (removed, the 1 GiB files in /dev/shm with them). `timed` and `background`
 * register their children here by themselves.
 */
export class Teardown {
  private readonly children = new Set<ChildProcess>();
  private readonly steps: Array<() => unknown> = [];
  private readonly dirs: string[] = [];
  private running: Promise<void> | null = null;

  track<T extends ChildProcess>(child: T): T {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** A folder removed at the end, whatever it holds. */
  dir(path: string): string {
    this.dirs.push(path);
    return path;
  }

  /** Something to stop at the end (a tracker, a server), last registered first. */
  step(stop: () => unknown): void {
    this.steps.unshift(stop);
  }

  /** Kill, stop and remove everything registered. Idempotent. */
  run(): Promise<void> {
    this.running ??= (async () => {
      const exits = [...this.children].map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))));
      for (const c of this.children) c.kill('SIGKILL');
      await Promise.race([Promise.all(exits), sleep(5000)]);
      for (const stop of this.steps) await Promise.race([Promise.resolve().then(stop).catch(() => {}), sleep(5000)]);
      for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
    })();
    return this.running;
  }

  /** On SIGINT or SIGTERM: undo everything, then exit 130 or 143. A second signal does not cut the cleanup short. */
  onSignals(): void {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        const code = 128 + os.constants.signals[signal];
        setTimeout(() => process.exit(code), 20_000).unref();
        void this.run().finally(() => process.exit(code));
      });
    }
  }
}

/** The one teardown of this benchmark process. */
export const teardown = new Teardown();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * `--help` (or `-h`): print `usage` and exit 0 before anything runs; any other argument is a
 * usage error (the benchmarks take their settings from the environment, as `usage` says).
 */
export function usageOrExit(usage: string, argv = process.argv.slice(2)): void {
  if (argv.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${usage.trim()}\n`);
    process.exit(0);
  }
  if (argv.length > 0) {
    process.stderr.write(`${argv[0]}: unknown argument (see --help; settings come from environment variables)\n`);
    process.exit(2);
  }
}

/** Peak resident set (VmHWM) of a running process in bytes, or 0 once it has exited. */
export function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface Timed {
  seconds: number;
  peakRss: number;
  code: number | null;
  stderr: string;
}

/** Run a command to completion, timing it and sampling its peak RSS every 10 ms. */
export function timed(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = teardown.track(spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'ignore', 'pipe'] }));
    let peak = 0;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const sampler = setInterval(() => (peak = Math.max(peak, peakRss(child.pid!))), 10);
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(sampler);
      clearTimeout(killer);
      resolve({ seconds, peakRss: peak, code, stderr });
    });
  });
}

/** Start a long-running process; `stop` kills it and waits. */
export function background(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { child: ChildProcess; stop(): Promise<void>; output(): string } {
  const child = teardown.track(spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function waitUntil(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
