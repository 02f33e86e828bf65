/**
 * How fast multicast discovery is on a LAN: 8 network namespaces on one bridge (see
 * test/netns.ts), one node-cli in each, no bootstrap server and no --peer. Needs root.
 *
 * Each run: start 7 nodes and wait until every one lists the 6 others; then start the 8th
 * and measure, from the moment its process is spawned (node startup, ~0.2 s, included:
 * its first beacon goes out just before it prints `listening`),
 *   - joined:  until all 7 report peer-up for it,
 *   - sees:    until it reports peer-up for all 7,
 * then kill -9 the 8th (no GOODBYE) and measure until all 7 report peer-down for it
 * (expiry: about three missed beacons), and finally SIGTERM the 7th and measure until the 6
 * others report peer-down for it (its GOODBYE). Times are taken when the parent reads each
 * event line. Repeated for each beacon interval; median, min and max are printed and
 * appended to bench/RESULTS.md under "Discovery".
 *
 *   npm run bench:discovery                          # intervals 1 s and 5 s, 3 runs each
 *   DISCOVERY_INTERVALS=1 DISCOVERY_RUNS=5 npm run bench:discovery
 *   DISCOVERY_NO_RESULTS=1 npm run bench:discovery   # do not touch bench/RESULTS.md
 */
import path from 'node:path';
import os from 'node:os';
import { promises as fsp, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { usageOrExit } from './procs.js';
import { createLan, netnsSupport, spawnCliIn, type Lan, type LanCliChild, type LanHost } from '../test/netns.js';

usageOrExit(`
bench/discovery: how fast multicast discovery is on a LAN of network namespaces (one node-cli in
each, no bootstrap, no --peer): a newcomer seen by all and seeing all, kill -9 expiry, GOODBYE.
Needs root. Ctrl-C or SIGTERM stops it and removes its processes, namespaces and files.

usage: sudo npm run bench:discovery    (node dist/bench/discovery.js after npm run build)

settings, from the environment:
  DISCOVERY_NODES       nodes, one namespace each (default 8)
  DISCOVERY_INTERVALS   beacon intervals in seconds, comma-separated (default 1,5)
  DISCOVERY_RUNS        runs per interval, the median is printed (default 3)
  DISCOVERY_NO_RESULTS  set: do not append to bench/RESULTS.md
`);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODES = Number(process.env.DISCOVERY_NODES ?? 8);
const INTERVALS = (process.env.DISCOVERY_INTERVALS ?? '1,5').split(',').map(Number);
const RUNS = Number(process.env.DISCOVERY_RUNS ?? 3);
const PORT = 9000;

interface RunFigures {
  /** Seconds: the 7 first nodes until each lists the 6 others (they start together). */
  mesh: number;
  /** Spawn to `listening` of the 8th (process start; it shares nothing, so hashes nothing). */
  startup: number;
  joined: number;
  sees: number;
  /** kill -9 to the last peer-down; NaN when some node never dropped it within the limit. */
  killed: number;
  killedDropped: number;
  /** SIGTERM to the last peer-down (GOODBYE); NaN likewise. */
  stopped: number;
  stoppedDropped: number;
}

type Node = LanCliChild & { id: string; host: LanHost };

/** When `c` first printed an event matching `pred`, or undefined. */
function firstAt(c: LanCliChild, pred: (e: Record<string, unknown>) => boolean): number | undefined {
  const i = c.events.findIndex(pred);
  return i < 0 ? undefined : c.times[i];
}

async function until<T>(f: () => T | undefined, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The latest time at which each of `watchers` reported `event` about `subject`, or undefined if one has not yet. */
function allReported(watchers: Node[], event: string, subject: Node): number | undefined {
  let last = 0;
  for (const w of watchers) {
    const t = firstAt(w, (e) => e.event === event && e.id === subject.id);
    if (t === undefined) return undefined;
    last = Math.max(last, t);
  }
  return last;
}

/** When `watcher` had reported peer-up for every one of `subjects`, or undefined if not yet. */
function sawAll(watcher: Node, subjects: Node[]): number | undefined {
  let last = 0;
  for (const s of subjects) {
    const t = firstAt(watcher, (e) => e.event === 'peer-up' && e.id === s.id);
    if (t === undefined) return undefined;
    last = Math.max(last, t);
  }
  return last;
}

const reportedCount = (watchers: Node[], event: string, subject: Node) => watchers.filter((w) => firstAt(w, (e) => e.event === event && e.id === subject.id) !== undefined).length;

async function oneRun(lan: Lan, intervalS: number, dir: string): Promise<RunFigures> {
  const nodes: Node[] = [];
  const start = async (host: LanHost): Promise<Node> => {
    const cwd = path.join(dir, `h${host.index}`);
    await fsp.mkdir(path.join(cwd, 's'), { recursive: true });
    const c = spawnCliIn(lan, host, [host.ip, String(PORT), '--shared', 's', '--downloads', 'd', '--name', `h${host.index}`, '--beacon-interval', String(intervalS), '--no-folder-watch'], cwd);
    const l = await c.waitEvent('listening', 60_000);
    const n = Object.assign(c, { id: l.id as string, host });
    nodes.push(n);
    return n;
  };
  try {
    const meshStart = Date.now();
    const first = await Promise.all(lan.hosts.slice(0, NODES - 1).map(start));
    const meshed = await until(() => {
      const ts = first.map((a) => sawAll(a, first.filter((b) => b !== a)));
      return ts.every((t) => t !== undefined) ? Math.max(...(ts as number[])) : undefined;
    }, 20 * intervalS * 1000 + 10_000);
    if (meshed === undefined) throw new Error(`the first ${NODES - 1} nodes did not all find each other`);

    // The newcomer.
    const spawnedAt = Date.now();
    const late = await start(lan.hosts[NODES - 1]!);
    const listeningAt = firstAt(late, (e) => e.event === 'listening')!;
    const limit = 10 * intervalS * 1000 + 5000;
    const joinedAt = await until(() => allReported(first, 'peer-up', late), limit);
    const seesAt = await until(() => sawAll(late, first), limit);
    if (joinedAt === undefined || seesAt === undefined) throw new Error('the 8th node and the 7 did not all find each other');

    // kill -9: no GOODBYE, the others must let it expire.
    const killedAt = Date.now();
    late.proc.kill('SIGKILL');
    const expireLimit = 6 * intervalS * 1000 + 5000;
    const droppedAt = await until(() => allReported(first, 'peer-down', late), expireLimit);

    // SIGTERM: a GOODBYE, the others should drop it at once.
    const leaving = first[first.length - 1]!;
    const rest = first.slice(0, -1);
    const stoppedAt = Date.now();
    leaving.proc.kill('SIGTERM');
    const goneAt = await until(() => allReported(rest, 'peer-down', leaving), 3 * intervalS * 1000 + 2000);

    return {
      mesh: (meshed - meshStart) / 1000,
      startup: (listeningAt - spawnedAt) / 1000,
      joined: (joinedAt - spawnedAt) / 1000,
      sees: (seesAt - spawnedAt) / 1000,
      killed: droppedAt === undefined ? NaN : (droppedAt - killedAt) / 1000,
      killedDropped: reportedCount(first, 'peer-down', late),
      stopped: goneAt === undefined ? NaN : (goneAt - stoppedAt) / 1000,
      stoppedDropped: reportedCount(rest, 'peer-down', leaving),
    };
  } finally {
    for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL');
    await Promise.all(nodes.map((n) => n.exited));
  }
}

const finite = (xs: number[]) => xs.filter(Number.isFinite);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
/** "median (min-max)", over the runs that completed; "n/a" when none did. */
function stats(xs: number[]): string {
  const ok = finite(xs);
  if (ok.length === 0) return 'n/a';
  const s = `${median(ok).toFixed(2)} s (${Math.min(...ok).toFixed(2)}-${Math.max(...ok).toFixed(2)})`;
  return ok.length < xs.length ? `${s}, ${xs.length - ok.length} run(s) incomplete` : s;
}
const fmt = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)} s` : 'not all');

async function main(): Promise<void> {
  const support = netnsSupport();
  if (!support.ok) {
    console.log(`bench:discovery builds a LAN of network namespaces and ${support.reason}: run it as root.`);
    process.exit(1);
  }
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'shoal-bench-discovery-'));
  let lan: Lan | undefined;
  const teardown = () => {
    lan?.destroySync();
    rmSync(dir, { recursive: true, force: true });
  };
  // Everything is undone synchronously on the way out, however the process exits; a signal
  // exits 130 or 143 through it (a second one while it runs does not cut it short).
  process.on('exit', teardown);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(128 + os.constants.signals[sig]));

  lan = await createLan({ prefix: 'shoal-bd', hosts: NODES });
  console.log(`Discovery on a LAN of ${NODES} network namespaces (one bridge, multicast only), ${RUNS} run(s) per beacon interval\n`);
  const all = new Map<number, RunFigures[]>();
  for (const interval of INTERVALS) {
    const runs: RunFigures[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const runDir = path.join(dir, `i${interval}-r${run}`);
      const f = await oneRun(lan, interval, runDir);
      await fsp.rm(runDir, { recursive: true, force: true });
      runs.push(f);
      console.log(`interval ${interval} s, run ${run}: ${NODES - 1} meshed in ${f.mesh.toFixed(2)} s; node ${NODES} up in ${f.startup.toFixed(2)} s, ` +
        `seen by all ${NODES - 1} in ${f.joined.toFixed(2)} s, sees all in ${f.sees.toFixed(2)} s; ` +
        `kill -9: dropped by ${f.killedDropped}/${NODES - 1} (${fmt(f.killed)}); SIGTERM: dropped by ${f.stoppedDropped}/${NODES - 2} (${fmt(f.stopped)})`);
    }
    all.set(interval, runs);
  }

  console.log(`\nmedian (min-max) over ${RUNS} run(s), from the newcomer's spawn / the signal:`);
  const rows: string[] = [];
  for (const [interval, runs] of all) {
    const col = (k: keyof RunFigures) => stats(runs.map((r) => r[k]));
    const dropped = (k: 'killedDropped' | 'stoppedDropped', of: number) => `${Math.min(...runs.map((r) => r[k]))}/${of}`;
    console.log(`  interval ${interval} s: seen by all ${col('joined')}; sees all ${col('sees')}; kill -9 dropped by all ${col('killed')} (at worst ${dropped('killedDropped', NODES - 1)}); SIGTERM dropped by all ${col('stopped')} (at worst ${dropped('stoppedDropped', NODES - 2)})`);
    rows.push(`| ${interval} s | ${col('joined')} | ${col('sees')} | ${col('startup')} | ${col('killed')} | ${dropped('killedDropped', NODES - 1)} | ${col('stopped')} | ${dropped('stoppedDropped', NODES - 2)} | ${col('mesh')} |`);
  }
  if (!process.env.DISCOVERY_NO_RESULTS) {
    const section = [
      '',
      `## Discovery: multicast on a LAN of ${NODES} namespaces (\`npm run bench:discovery\`), ${new Date().toISOString().slice(0, 10)}`,
      '',
      `\`bench/discovery.ts\`: ${NODES} network namespaces on one bridge, one node-cli each, no bootstrap, no --peer.`,
      `${NODES - 1} nodes start together; once they all list each other the ${NODES}th starts. The clock runs from spawning its`,
      `process until all ${NODES - 1} report peer-up for it (seen by all) and until it reports all ${NODES - 1} (sees all); its own`,
      `startup (spawn to \`listening\`) is included and shown apart. Then it is killed with SIGKILL (no GOODBYE) and the`,
      `clock runs until all ${NODES - 1} report peer-down; then the ${NODES - 1}th is stopped with SIGTERM (GOODBYE) and the clock runs`,
      `until the other ${NODES - 2} report peer-down. Median (min-max) of ${RUNS} runs; "dropped" is the fewest nodes that reported`,
      `the peer-down within the limit (6 intervals + 5 s after kill -9, 3 intervals + 2 s after SIGTERM) in any run.`,
      '',
      `| beacon interval | seen by all | sees all | of which startup | kill -9: dropped by all | dropped | SIGTERM: dropped by all | dropped | first ${NODES - 1} meshed |`,
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
      '',
    ].join('\n');
    await fsp.appendFile(path.join(ROOT, 'bench', 'RESULTS.md'), section);
    console.log('\nappended to bench/RESULTS.md');
  }
  await lan.destroy();
}

main().catch((err: Error) => {
  console.error(`bench:discovery: ${err.message}`);
  process.exit(1);
});
