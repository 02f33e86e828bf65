import { promises as fsp, createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Node, type NodeInit } from '../network/index.js';
import { createLogger, type Logger } from '../network/util/log.js';
import { pieceHash, pieceSize, type Metainfo } from '../network/metainfo/metainfo.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** A temp directory removed by `cleanup()`. */
export async function tempDir(prefix = 'shoal-test-'): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Write `size` random bytes to `file` in 1 MiB chunks (never the whole file in memory). */
export async function randomFile(file: string, size: number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(file, 'w');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(1 << 20, size - done);
      await fh.write(randomBytes(n));
      done += n;
    }
  } finally {
    await fh.close();
  }
}

export async function sha1File(file: string): Promise<string> {
  const h = createHash('sha1');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Poll until `pred` is truthy or fail after `ms`. */
export async function waitFor<T>(pred: () => T | Promise<T>, ms = 10_000, what = 'condition'): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port on 127.0.0.1 that was free a moment ago (for a child that needs one named, or a closed port to dial). */
export async function freePort(kind: 'tcp' | 'udp' = 'tcp'): Promise<number> {
  if (kind === 'udp') {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** One line a `captureLog` logger wrote: pino's level number (30 info, 40 warn), the message, its fields. */
export interface LogRecord {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A pino logger writing into memory, so a test can count what was logged; `warnings()` are the warn-level messages. */
export function captureLog(level = 'debug'): { logger: Logger; records: LogRecord[]; warnings(): string[] } {
  const records: LogRecord[] = [];
  const logger = pino({ level }, { write: (line: string) => void records.push(JSON.parse(line) as LogRecord) });
  return { logger, records, warnings: () => records.filter((r) => r.level === 40).map((r) => r.msg) };
}

/** A node on 127.0.0.1 with its own folders under `dir`; quiet unless SHOAL_LOG is set. */
export async function startNode(dir: string, init: Partial<NodeInit> = {}): Promise<Node> {
  const node = new Node({
    port: 0,
    listenHost: '127.0.0.1',
    announceHost: '127.0.0.1',
    sharedDir: path.join(dir, 'shared'),
    downloadDir: path.join(dir, 'downloads'),
    hashWorkers: 1,
    watch: false,
    multicast: false,
    gossipIntervalMs: 0,
    logger: createLogger({ level: 'silent' }),
    ...init,
  });
  await fsp.mkdir(node.sharedDir, { recursive: true });
  await node.start();
  return node;
}

export interface CliChild {
  proc: ChildProcess;
  /** Every JSON event line printed so far. */
  events: Array<Record<string, unknown>>;
  stderr: string[];
  waitEvent(name: string, ms?: number, pred?: (e: Record<string, unknown>) => boolean): Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Run `node-cli ... --json` as a real child process. */
export function spawnCli(args: string[], cwd: string, env: Record<string, string> = {}): CliChild {
  const proc = spawn(process.execPath, [CLI, ...args, '--json'], { cwd, env: { ...process.env, SHOAL_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      /* not an event line */
    }
  });
  readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    events,
    stderr,
    exited,
    waitEvent: (name, ms = 20_000, pred = () => true) =>
      waitFor(() => events.find((e) => e.event === name && pred(e)), ms, `event ${name} (stderr: ${stderr.slice(-5).join(' | ')})`),
  };
}

export async function cleanup(...dirs: string[]): Promise<void> {
  await Promise.all(dirs.map((d) => fsp.rm(d, { recursive: true, force: true })));
}

/** The error `p` rejects with; throws if `p` fulfils instead. */
export async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

/** Wait for a child (`spawnCli` or the like) to exit, SIGKILLing it if it is still running after `ms`. */
export async function exitWithin<T>(child: { proc: ChildProcess; exited: Promise<T> }, ms: number): Promise<T> {
  const killer = setTimeout(() => child.proc.kill('SIGKILL'), ms);
  try {
    return await child.exited;
  } finally {
    clearTimeout(killer);
  }
}

/**
 * Mocha hooks for the enclosing describe block: before each test a fresh temp folder (read it
 * as `.dir`); after each, `teardown` (stop what the test started), then the folder removed.
 */
export function tempDirPerTest(prefix = 'shoal-test-', teardown: () => Promise<void> = async () => {}): { readonly dir: string } {
  let dir = '';
  beforeEach(async function () {
    dir = await tempDir(prefix);
  });
  afterEach(async function () {
    await teardown();
    if (dir) await cleanup(dir);
    dir = '';
  });
  return {
    get dir() {
      return dir;
    },
  };
}

/**
 * `tempDirPerTest` for tests of nodes on loopback: a test pushes every node it starts onto
 * `nodes` and every fake peer onto `fakes`; after each test all are stopped, then the folder removed.
 */
export function nodesPerTest(): { readonly dir: string; nodes: Node[]; fakes: Array<{ close(): Promise<void> }> } {
  const nodes: Node[] = [];
  const fakes: Array<{ close(): Promise<void> }> = [];
  const folder = tempDirPerTest(undefined, async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
    await Promise.all(fakes.splice(0).map((f) => f.close()));
  });
  return {
    get dir() {
      return folder.dir;
    },
    nodes,
    fakes,
  };
}

/**
 * A node called `name`, in `dir/<name>`, whose shared folder first gets `files` (relative path →
 * a size in bytes for a random file, or the path of a file to copy); started with `init` and
 * pushed onto `nodes` (so the afterEach stops it).
 */
export async function startSharing(
  dir: string,
  nodes: Node[],
  name: string,
  files: Record<string, number | string> = {},
  init: Partial<NodeInit> = {},
): Promise<Node> {
  const d = path.join(dir, name);
  for (const [f, v] of Object.entries(files)) {
    const target = path.join(d, 'shared', f);
    if (typeof v === 'number') await randomFile(target, v);
    else {
      await fsp.mkdir(path.dirname(target), { recursive: true });
      await fsp.copyFile(v, target);
    }
  }
  const n = await startNode(d, { name, ...init });
  nodes.push(n);
  return n;
}

/**
 * `count` nodes that each share a copy of one random file of `size` bytes called `name`: the
 * original is written to `dir/original/<name>`, node i runs in `dir/seed<i>` with `init`, and
 * each node is pushed onto `nodes` as soon as it starts (so the afterEach stops it).
 */
export async function startSeeds(
  dir: string,
  nodes: Node[],
  count: number,
  size: number,
  name = 'movie.bin',
  init: Partial<NodeInit> = {},
): Promise<{ seeds: Node[]; file: string; digest: string }> {
  const file = path.join(dir, 'original', name);
  await randomFile(file, size);
  const list: Node[] = [];
  for (let i = 0; i < count; i++) {
    const d = path.join(dir, `seed${i}`);
    await fsp.mkdir(path.join(d, 'shared'), { recursive: true });
    await fsp.copyFile(file, path.join(d, 'shared', name));
    const n = await startNode(d, init);
    nodes.push(n);
    list.push(n);
  }
  return { seeds: list, file, digest: await sha1File(file) };
}

/** Child processes started by a test, all killed (SIGKILL) by `killAll` in afterEach whatever happened. */
export class Children {
  private readonly live = new Set<ChildProcess>();

  track<T extends ChildProcess>(child: T): T {
    this.live.add(child);
    child.once('exit', () => this.live.delete(child));
    return child;
  }

  async killAll(): Promise<void> {
    await Promise.all(
      [...this.live].map(async (c) => {
        if (c.exitCode === null && c.signalCode === null) {
          const exited = once(c, 'exit');
          c.kill('SIGKILL');
          await exited;
        }
        this.live.delete(c);
      }),
    );
  }
}

/** The pieces of `m` whose bytes in the file `part` (at torrent offsets) match their hash. */
export async function verifiedOnDisk(part: string, m: Metainfo): Promise<Set<number>> {
  const fh = await fsp.open(part, 'r');
  const ok = new Set<number>();
  try {
    const buf = Buffer.alloc(m.pieceLength);
    for (let i = 0; i < m.pieceCount; i++) {
      const size = pieceSize(m, i);
      await fh.read(buf, 0, size, i * m.pieceLength);
      if (createHash('sha1').update(buf.subarray(0, size)).digest().equals(pieceHash(m, i))) ok.add(i);
    }
  } finally {
    await fh.close();
  }
  return ok;
}
