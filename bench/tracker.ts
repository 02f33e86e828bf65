/**
 * Tracker announces per second on loopback: the Shoal bootstrap server's `/announce` against
 * the `bittorrent-tracker` npm package's HTTP server, in the same run, with the exact same
 * requests. Each server runs in a child process of its own, and the load generator
 * (autocannon) in another, so neither shares an event loop with the thing it measures;
 * with `taskset` present the server gets one core and the load generator the other.
 *
 * The requests: each connection plays one client machine in the same 1000 torrents: its own
 * loopback source address (127.0.0.11, .12, ...), one random peer id and one port, announcing
 * each of the 1000 infohashes in its own shuffled order, round and round (compact=1,
 * numwant=50, event=started, left>0: a leecher, which is sent every other peer; a seeder
 * would be sent no seeders by Shoal, and that would be timing less work). So every swarm holds one peer per connection, every answer lists
 * the other connections' peers, and both servers get the very same requests. Why one address
 * per connection: the Shoal tracker holds at most 1000 peers per source address (so that one
 * host cannot fill its memory); from a single address it would refuse most of a larger set
 * with a cheap 503, and we would be timing the refusal.
 *
 *   npm run bench:tracker                                # 10 connections, 2 s warm-up, 10 s, 3 rounds
 *   TRACKER_SECONDS=5 TRACKER_CONNECTIONS=50 TRACKER_ROUNDS=2 npm run bench:tracker
 *   TRACKER_NO_RESULTS=1 npm run bench:tracker           # do not append to bench/RESULTS.md
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import bencode from 'bencode';
import { teardown, usageOrExit } from './procs.js';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(SELF), '..', '..');
const SECONDS = Number(process.env.TRACKER_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.TRACKER_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.TRACKER_CONNECTIONS ?? 10);
const ROUNDS = Number(process.env.TRACKER_ROUNDS ?? 3);
const INFOHASHES = 1000;

type Kind = 'shoal' | 'bittorrent-tracker';
const KINDS: readonly Kind[] = ['shoal', 'bittorrent-tracker'];

/** What the load child reports: autocannon's figures we print. */
interface LoadResult {
  requestsPerSecond: number;
  total: number;
  /** Latency percentiles in ms (autocannon records whole milliseconds). */
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

// ---- the untyped packages, typed here for the parts we use ------------------------------

interface AutocannonRequest {
  method?: string;
  path?: string;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  pipelining: number;
  duration: number;
  requests: AutocannonRequest[];
  setupClient?: (client: AutocannonClient) => void;
}
/** One autocannon connection (lib/httpClient.js). */
interface AutocannonClient {
  setRequests(requests: AutocannonRequest[]): void;
  _connect(): void;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (opts: AutocannonOptions) => Promise<AutocannonResult>;

interface ListeningServer {
  listen(port: number, host: string, cb: () => void): void;
  http: { address(): { port: number } } | null;
  on(event: 'warning' | 'error', cb: (err: Error) => void): void;
}
type ReferenceTrackerModule = { Server: new (opts: { udp: boolean; ws: boolean; http: boolean; stats: boolean }) => ListeningServer };

/** `import()` of a module without type declarations, typed by the caller. */
const importUntyped = <T>(specifier: string): Promise<T> => import(specifier) as Promise<T>;

// ---- child: one server ------------------------------------------------------------------

/** Start one server on 127.0.0.1 and print `{"url": ...}`; runs until killed. */
async function serve(kind: Kind, dataDir: string): Promise<void> {
  if (kind === 'shoal') {
    // Imported here, not at the top: the reference server's process never loads it.
    const { BootstrapServer } = await import('../bootstrap/server.js');
    const { createLogger } = await import('../network/util/log.js');
    const server = new BootstrapServer({ port: 0, host: '127.0.0.1', dataDir, logger: createLogger({ level: 'error' }) });
    await server.start();
    process.stdout.write(`${JSON.stringify({ url: server.url.replace(/\/+$/, '') })}\n`);
  } else {
    const { Server } = await importUntyped<ReferenceTrackerModule>('bittorrent-tracker');
    const server = new Server({ udp: false, ws: false, http: true, stats: false });
    server.on('warning', () => {}); // bad requests are the client's problem, as in Shoal
    server.on('error', (err) => {
      process.stderr.write(`bittorrent-tracker: ${err.message}\n`);
      process.exit(1);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.http!.address().port}` })}\n`);
  }
}

// ---- child: the load generator ------------------------------------------------------------

/** Source address of connection `i`: one loopback address per simulated client machine. */
const sourceAddress = (i: number) => `127.0.0.${11 + i}`;

async function load(url: string, pathsFile: string): Promise<void> {
  const perClient = JSON.parse(await fsp.readFile(pathsFile, 'utf8')) as string[][];
  const autocannon = (await importUntyped<{ default: Autocannon }>('autocannon')).default;
  // autocannon has no option for the local address, and calls net.connect(port, host) from
  // inside each connection's _connect(): each connection sets `from` around that call.
  let from: string | undefined;
  const plainConnect = net.connect;
  (net as { connect: unknown }).connect = (port: number, host: string) => plainConnect({ port, host, localAddress: from });
  const run = async (seconds: number): Promise<AutocannonResult> => {
    let next = 0;
    return autocannon({
      url,
      connections: CONNECTIONS,
      pipelining: 1,
      duration: seconds,
      requests: [{ method: 'GET', path: perClient[0]![0]! }],
      setupClient: (client) => {
        const i = next++ % perClient.length;
        client.setRequests(perClient[i]!.map((p) => ({ method: 'GET', path: p })));
        const connect = client._connect;
        client._connect = function (this: AutocannonClient) {
          from = sourceAddress(i);
          try {
            connect.call(this);
          } finally {
            from = undefined;
          }
        };
      },
    });
  };
  if (WARMUP_SECONDS > 0) await run(WARMUP_SECONDS);
  const r = await run(SECONDS);
  const result: LoadResult = {
    requestsPerSecond: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// ---- parent: the harness -------------------------------------------------------------------

const pct = (b: Buffer) => [...b].map((x) => `%${x.toString(16).padStart(2, '0')}`).join('');

/** The request set: per connection (client), its announce of each of the 1000 torrents, shuffled. */
function announcePaths(): string[][] {
  const hashes = Array.from({ length: INFOHASHES }, () => pct(randomBytes(20)));
  return Array.from({ length: CONNECTIONS }, (_, c) => {
    const peerId = pct(Buffer.concat([Buffer.from('-BN0001-'), randomBytes(12)]));
    const port = 6881 + c;
    const paths = hashes.map((h) => `/announce?info_hash=${h}&peer_id=${peerId}&port=${port}&uploaded=0&downloaded=0&left=1048576&compact=1&numwant=50&event=started`);
    for (let i = paths.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [paths[i], paths[j]] = [paths[j]!, paths[i]!];
    }
    return paths;
  });
}

/** Pin to one CPU when we can, so server and load generator do not fight over both. */
function pinned(cpu: number, args: string[]): [string, string[]] {
  const haveTaskset = os.cpus().length >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  return haveTaskset ? ['taskset', ['-c', String(cpu), ...args]] : [args[0]!, args.slice(1)];
}

function startChild(cpu: number, args: string[]): ChildProcess {
  const [cmd, rest] = pinned(cpu, [process.execPath, SELF, ...args]);
  // taskset execs node in place, so the pid we hold is the node process itself.
  // Tracked: killed on the way out, Ctrl-C and SIGTERM included.
  return teardown.track(spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHOAL_LOG: 'error' } }));
}

/** The first JSON line a child prints, or its stderr as the error. */
function firstJsonLine<T>(child: ChildProcess, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setTimeout(() => reject(new Error(`no answer from child within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    readline.createInterface({ input: child.stdout! }).once('line', (l) => {
      clearTimeout(timer);
      resolve(JSON.parse(l) as T);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited (${code}): ${stderr.trim()}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** One real announce: the answer must be a bencoded dictionary with interval and peers; returns how many peers it lists. */
async function checkAnswer(url: string, p: string): Promise<number> {
  const body = await new Promise<Buffer>((resolve, reject) => {
    http.get(url + p, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    }).on('error', reject);
  });
  const d = bencode.decode(body) as Record<string, unknown>;
  if (d['failure reason'] !== undefined) throw new Error(`${url}: failure reason ${Buffer.from(d['failure reason'] as Uint8Array).toString()}`);
  if (typeof d.interval !== 'number' || !(d.peers instanceof Uint8Array)) throw new Error(`${url}: not a compact announce answer: ${body.toString('latin1').slice(0, 200)}`);
  return d.peers.length / 6;
}

async function measure(kind: Kind, pathsFile: string, sample: string, dir: string): Promise<LoadResult> {
  const server = startChild(1, ['serve', kind, path.join(dir, `data-${kind}`)]);
  try {
    const { url } = await firstJsonLine<{ url: string }>(server, 30_000);
    await checkAnswer(url, sample);
    const loader = startChild(0, ['load', url, pathsFile]);
    try {
      const result = await firstJsonLine<LoadResult>(loader, (WARMUP_SECONDS + SECONDS + 60) * 1000);
      if (server.exitCode !== null) throw new Error(`${kind} server died during the run`);
      // The work was real: the swarm of the sample torrent now holds every connection's peer.
      const listed = await checkAnswer(url, sample);
      if (listed < CONNECTIONS) throw new Error(`${kind}: after the run the sample swarm lists ${listed} peers, expected ${CONNECTIONS}`);
      return result;
    } finally {
      await stopChild(loader);
    }
  } finally {
    await stopChild(server);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (r: LoadResult) => `${r.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  (${r.total} requests, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts)`;

async function main(): Promise<void> {
  teardown.onSignals();
  const dir = teardown.dir(await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-tracker-')));
  try {
    const paths = announcePaths();
    const pathsFile = path.join(dir, 'paths.json');
    await fsp.writeFile(pathsFile, JSON.stringify(paths));
    console.log(`${CONNECTIONS} connections (one loopback address, peer id and port each) x ${INFOHASHES} infohashes = ${CONNECTIONS * INFOHASHES} distinct announces, pipelining 1, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per server, ${ROUNDS} round(s)`);
    const results: Record<Kind, LoadResult[]> = { shoal: [], 'bittorrent-tracker': [] };
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate which goes first, so neither always gets the cooler machine.
      for (const kind of round % 2 === 1 ? KINDS : [...KINDS].reverse()) {
        const r = await measure(kind, pathsFile, paths[0]![0]!, dir);
        results[kind].push(r);
        console.log(`round ${round}: ${kind.padEnd(18)} ${fmt(r)}`);
      }
    }
    const med = (kind: Kind, key: keyof LoadResult) => median(results[kind].map((r) => r[key]));
    const ratio = med('shoal', 'requestsPerSecond') / med('bittorrent-tracker', 'requestsPerSecond');
    console.log(`\nmedian of ${ROUNDS}:`);
    for (const kind of KINDS) console.log(`  ${kind.padEnd(18)} ${med(kind, 'requestsPerSecond').toFixed(0)} req/s, latency p50 ${med(kind, 'p50')} ms, p99 ${med(kind, 'p99')} ms`);
    console.log(`  ratio: Shoal serves ${ratio.toFixed(2)}x bittorrent-tracker's announces per second`);
    for (const kind of KINDS) if (results[kind].some((r) => r.non2xx + r.errors + r.timeouts > 0)) console.log(`  warning: ${kind} had non-2xx answers, errors or timeouts`);

    if (!process.env.TRACKER_NO_RESULTS) {
      const row = (kind: Kind) => `| ${kind} | ${med(kind, 'requestsPerSecond').toFixed(0)} | ${med(kind, 'p50')} ms | ${med(kind, 'p99')} ms | ${results[kind].map((r) => r.requestsPerSecond.toFixed(0)).join(' / ')} |`;
      const section = [
        '',
        `## Tracker: announces per second (\`npm run bench:tracker\`), ${new Date().toISOString().slice(0, 10)}`,
        '',
        `\`bench/tracker.ts\`: the bootstrap server's \`/announce\` against the \`bittorrent-tracker\` npm package's HTTP server`,
        `(v10, udp/ws/stats off), each in its own process pinned to one core, autocannon in another pinned to the other core;`,
        `${CONNECTIONS} connections, pipelining 1, ${WARMUP_SECONDS} s warm-up then ${SECONDS} s. Each connection is one client: its own loopback`,
        `address, peer id and port, announcing the same ${INFOHASHES} infohashes round and round (compact=1, numwant=50), so each swarm`,
        `has ${CONNECTIONS} peers; both servers get the very same requests. Median of ${ROUNDS} round(s); autocannon records whole`,
        `milliseconds, so a p50 of 0 ms means under 1 ms (by Little's law, ${CONNECTIONS} connections / req/s is the mean time per request).`,
        '',
        '| server | req/s | latency p50 | latency p99 | rounds (req/s) |',
        '| --- | --- | --- | --- | --- |',
        row('shoal'),
        row('bittorrent-tracker'),
        `| **ratio** | **Shoal ${ratio.toFixed(2)}x bittorrent-tracker** | | | |`,
        '',
      ].join('\n');
      await fsp.appendFile(path.join(ROOT, 'bench', 'RESULTS.md'), section);
      console.log('\nappended to bench/RESULTS.md');
    }
  } finally {
    await teardown.run();
  }
}

const USAGE = `
bench/tracker: announces per second on loopback, the Shoal bootstrap server's /announce against
the bittorrent-tracker package's server, each in a child process of its own with autocannon in
another. Ctrl-C or SIGTERM stops it and removes everything.

usage: npm run bench:tracker    (node dist/bench/tracker.js after npm run build)

settings, from the environment:
  TRACKER_CONNECTIONS  connections, one simulated client each (default 10)
  TRACKER_SECONDS      seconds measured per server and round (default 10)
  TRACKER_WARMUP       seconds of warm-up first (default 2)
  TRACKER_ROUNDS       rounds, the median is printed (default 3)
  TRACKER_NO_RESULTS   set: do not append to bench/RESULTS.md
`;

const [mode, a1, a2] = process.argv.slice(2);
// The children run this file too, as "serve KIND DIR" and "load URL FILE".
if (mode !== 'serve' && mode !== 'load') usageOrExit(USAGE);
const entry = mode === 'serve' ? serve(a1 as Kind, a2!) : mode === 'load' ? load(a1!, a2!) : main();
entry.catch(async (err: Error) => {
  console.error(err.message);
  await teardown.run();
  process.exit(1);
});
