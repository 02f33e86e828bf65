/**
 * `npm run demo:lan` (root): four machines on one LAN, played by four network namespaces
 * cabled to a bridge (test/netns.ts). A Shoal node runs in each, with no bootstrap server
 * and no --peer: they find each other by multicast beacons alone. Then a short-lived fifth
 * node on the fourth machine searches the LAN for a file three machines share, downloads it
 * from all three at once, and the SHA-1 of the result is checked against the original.
 *
 * The scenario (`runDemo`) is shared with demo/local.ts, which plays the same story with
 * every node on 127.0.0.1 inside a private network namespace, for users without root.
 * Everything (processes, namespaces, temp files) is removed at the end, on failure and on
 * Ctrl-C.
 */
import path from 'node:path';
import { promises as fsp, rmSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CLI, ROOT, randomFile, sha1File, tempDir, waitFor, type CliChild } from '../test/helpers.js';
import { createLan, netnsSupport, spawnCliIn, type Lan, type RunResult } from '../test/netns.js';

/** One machine of the story: where a node runs and how to start things there. */
export interface DemoSite {
  label: string;
  /** The address other nodes reach this one at. */
  ip: string;
  port: number;
  /** Shown to the reader: a namespace, or host:port. */
  where: string;
  /** Start node-cli here; `args` are the options after [ip] port (--json is added). */
  startNode(args: string[], cwd: string): CliChild;
  /** Run a small ES module (`node --input-type=module -e code`) here. */
  script(code: string, env: Record<string, string>): Promise<RunResult>;
}

const BEACON_INTERVAL_S = 1;
/** Each seed's upload cap: makes the use of several sources plain to see. */
const SEED_RATE = 2 * 1024 * 1024;
const BIG = { name: 'big.iso', size: 24 * 1024 * 1024 };
const MiB = 1024 * 1024;

const t0 = Date.now();
const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (line = '') => process.stdout.write(`${line}\n`);
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

/**
 * Ask, from `site`, the node listening there for the peers it learnt, then search each of
 * them for `query` over the control protocol: exactly what `--get NAME` does inside.
 */
const SEARCH_SCRIPT = `
const { controlRequest } = await import(process.env.CLIENT);
const { host, port, query } = JSON.parse(process.env.ARGS);
const known = await controlRequest(host, port, { type: 'peers' });
const out = [];
for (const p of known.peers) {
  try {
    const r = await controlRequest(p.host, p.port, { type: 'search', filename: query });
    out.push({ name: p.name, host: p.host, port: p.port, files: r.files });
  } catch (err) {
    out.push({ name: p.name, host: p.host, port: p.port, error: err.message });
  }
}
console.log(JSON.stringify(out));
`;

/** Print each node's peer-up and peer-down as they come, with its peer list so far. */
function followPeers(nodes: Array<{ site: DemoSite; child: CliChild }>, showListening: boolean): { stop(): void; known(label: string): Set<string> } {
  const cursors = new Map<CliChild, number>();
  const lists = new Map<string, Set<string>>();
  const timer = setInterval(() => {
    for (const { site, child } of nodes) {
      const from = cursors.get(child) ?? 0;
      cursors.set(child, child.events.length);
      const list = lists.get(site.label) ?? new Set<string>();
      lists.set(site.label, list);
      for (const e of child.events.slice(from)) {
        if (e.event === 'listening' && showListening) {
          say(`  ${stamp()}  ${site.label.padEnd(6)} listening on ${site.where}, id ${String(e.id).slice(0, 12)}, ${String(e.files)} file(s), discovery: ${(e.discovery as string[]).join(', ')}`);
        }
        if (e.event !== 'peer-up' && e.event !== 'peer-down') continue;
        const name = String(e.name ?? e.id);
        if (e.event === 'peer-up') list.add(name);
        else list.delete(name);
        const how = e.event === 'peer-up' ? `sees ${name} at ${String(e.host)}:${String(e.port)} (${(e.sources as string[]).join(',')})` : `lost ${name}`;
        say(`  ${stamp()}  ${site.label.padEnd(6)} ${how.padEnd(46)} knows: ${[...list].sort().join(', ') || '-'}`);
      }
    }
  }, 20);
  return { stop: () => clearInterval(timer), known: (label) => lists.get(label) ?? new Set() };
}

/** The story. Returns true when every step worked and the downloaded file is verified. */
export async function runDemo(sites: DemoSite[], getterSite: DemoSite, dir: string): Promise<boolean> {
  const children: Array<CliChild & { label?: string }> = [];
  const ok: string[] = [];
  try {
    // ---- files ------------------------------------------------------------------------
    say('\n[2/5] shared folders');
    const original = path.join(dir, BIG.name);
    await randomFile(original, BIG.size);
    const shares: Record<string, Array<{ name: string; size: number }>> = {};
    const share = async (site: DemoSite, name: string, size: number, from?: string) => {
      const target = path.join(dir, site.label, 'shared', name);
      await fsp.mkdir(path.dirname(target), { recursive: true });
      if (from) await fsp.copyFile(from, target);
      else await randomFile(target, size);
      (shares[site.label] ??= []).push({ name, size });
    };
    const [h1, h2, h3, h4] = sites as [DemoSite, DemoSite, DemoSite, DemoSite];
    await share(h1, `notes-${h1.label}.txt`, 200 * 1024);
    await share(h2, `photos-${h2.label}.zip`, 3 * MiB);
    for (const s of [h1, h2, h3]) await share(s, BIG.name, BIG.size, original);
    await fsp.mkdir(path.join(dir, h4.label, 'shared'), { recursive: true });
    for (const s of sites) say(`  ${s.label.padEnd(6)} ${(shares[s.label] ?? []).map((f) => `${f.name} (${mib(f.size)})`).join(', ') || '(nothing)'}`);
    say(`  ${BIG.name} is the same ${mib(BIG.size)} on ${h1.label}, ${h2.label} and ${h3.label}`);

    // ---- discovery -----------------------------------------------------------------------
    say(`\n[3/5] a node on each of ${sites.map((s) => s.label).join(', ')}: multicast beacons every ${BEACON_INTERVAL_S} s, no bootstrap server, no --peer`);
    const nodes = sites.map((site) => {
      const child = site.startNode(['--shared', 'shared', '--downloads', 'downloads', '--name', site.label, '--beacon-interval', String(BEACON_INTERVAL_S),
        '--no-folder-watch', '--max-upload-rate', String(SEED_RATE), '--log-level', 'warn'], path.join(dir, site.label));
      children.push(Object.assign(child, { label: site.label }));
      return { site, child };
    });
    // Follow from the start: the first beacons are answered within a fraction of a second.
    const follower = followPeers(nodes, true);
    await Promise.all(nodes.map(({ child }) => child.waitEvent('listening', 60_000)));
    const discoveryStart = Date.now();
    const everyoneKnowsEveryone = () => sites.every((s) => sites.every((o) => o === s || follower.known(s.label).has(o.label)));
    await waitFor(everyoneKnowsEveryone, 30_000, 'every node to know every other');
    const discoverySeconds = (Date.now() - discoveryStart) / 1000;
    say(`  every node knows the ${sites.length - 1} others, ${discoverySeconds.toFixed(1)} s after the last one was listening`);
    ok.push(`discovery: ${sites.length} nodes found each other in ${discoverySeconds.toFixed(1)} s, with no bootstrap server and no --peer (multicast beacons, and peers naming the peers they know)`);

    // ---- search ----------------------------------------------------------------------------
    say(`\n[4/5] search "big" from ${h4.label}: ask its node which peers it knows, then search each (control protocol)`);
    const run = await h4.script(SEARCH_SCRIPT, {
      CLIENT: pathToFileURL(path.join(ROOT, 'dist', 'network', 'control', 'control-client.js')).href,
      ARGS: JSON.stringify({ host: h4.ip, port: h4.port, query: 'big' }),
    });
    if (run.code !== 0) throw new Error(`search failed: ${run.stderr.trim()}`);
    const answers = JSON.parse(run.stdout) as Array<{ name?: string; host: string; port: number; files?: Array<{ name: string; size: number; infohash: string }>; error?: string }>;
    const holders: string[] = [];
    for (const a of answers) {
      const found = a.files && a.files.length > 0 ? a.files.map((f) => `FOUND ${f.name} ${mib(f.size)} infohash ${f.infohash.slice(0, 12)}...`).join('; ') : a.error ? `error: ${a.error}` : 'NOT_FOUND';
      if (a.files?.some((f) => f.name === BIG.name)) holders.push(a.name ?? a.host);
      say(`  ${(a.name ?? '?').padEnd(6)} ${`${a.host}:${a.port}`.padEnd(18)} ${found}`);
    }
    ok.push(`search "big" from ${h4.label}: ${BIG.name} found on ${holders.sort().join(', ') || 'no node'}`);

    // ---- multi-source download --------------------------------------------------------------
    say(`\n[5/5] a short-lived fifth node, ${getterSite.label} at ${getterSite.where}: node-cli ... --get ${BIG.name} --exit-when-done`);
    say(`      (each seed uploads at most ${mib(SEED_RATE)}/s, so one seed alone would need ${(BIG.size / SEED_RATE).toFixed(1)} s)`);
    await fsp.mkdir(path.join(dir, getterSite.label, 'shared'), { recursive: true });
    const getStart = Date.now();
    const getter = getterSite.startNode(['--shared', 'shared', '--downloads', 'downloads', '--name', getterSite.label, '--beacon-interval', String(BEACON_INTERVAL_S),
      '--no-folder-watch', '--get', BIG.name, '--exit-when-done', '--log-level', process.env.DEMO_LOG ?? 'warn'], path.join(dir, getterSite.label));
    children.push(Object.assign(getter, { label: getterSite.label }));
    let shown = 0;
    let maxPeers = 0;
    await waitFor(() => {
      for (const e of getter.events.slice(shown)) {
        if (e.event === 'progress') {
          maxPeers = Math.max(maxPeers, Number(e.peers));
          const pct = (100 * Number(e.verified)) / Math.max(1, Number(e.pieces));
          say(`  ${stamp()}  ${getterSite.label.padEnd(6)} ${pct.toFixed(0).padStart(3)}%  ${(Number(e.rate) / MiB).toFixed(1).padStart(5)} MiB/s  from ${String(e.peers)} peer(s)`);
        } else if (e.event === 'failed') {
          throw new Error(`download failed: ${String(e.error)}`);
        }
      }
      shown = getter.events.length;
      const finished = getter.events.some((e) => e.event === 'done');
      if (!finished && (getter.proc.exitCode !== null || getter.proc.signalCode !== null)) throw new Error(`the downloader exited (${getter.proc.exitCode ?? getter.proc.signalCode}) without finishing`);
      return finished;
    }, 120_000, 'the download').catch((err: Error) => {
      throw new Error(`${err.message}; the downloader's last log lines: ${getter.stderr.slice(-8).join(' | ')}`);
    });
    const done = getter.events.find((e) => e.event === 'done')!;
    const seconds = (Date.now() - getStart) / 1000;
    const exit = await getter.exited;
    say(`  ${stamp()}  ${getterSite.label.padEnd(6)} done: ${String(done.path)}, exit status ${String(exit.code)}`);
    const got = await sha1File(String(done.path));
    const want = await sha1File(original);
    say(`  SHA-1 of the download ${got}\n  SHA-1 of the original ${want}  ${got === want ? 'match' : 'DIFFER'}`);
    ok.push(`download: ${BIG.name} (${mib(BIG.size)}) in ${seconds.toFixed(1)} s from up to ${maxPeers} peers at once (one capped seed alone: ${(BIG.size / SEED_RATE).toFixed(1)} s), exit ${String(exit.code)}`);
    ok.push(`verify: SHA-1 ${got === want ? 'matches the original' : 'DIFFERS from the original'}`);

    // Let the others report the short-lived node's GOODBYE before we tear down.
    await waitFor(() => nodes.every(({ site }) => !follower.known(site.label).has(getterSite.label)), 5000, 'the GOODBYE').catch(() => {});
    follower.stop();
    const passed = got === want && exit.code === 0 && maxPeers >= 2 && holders.length === 3;
    say('\nSummary');
    for (const line of ok) say(`  ${line}`);
    say(`  result: ${passed ? 'OK' : 'FAILED'}`);
    return passed;
  } catch (err) {
    // A node that died on its own is the likeliest cause: show what it said.
    for (const c of children) {
      if (c.proc.exitCode === null && c.proc.signalCode === null) continue;
      if (c.proc.exitCode === 0 && c.events.some((e) => e.event === 'done')) continue;
      say(`  ${c.label ?? '?'} exited (${c.proc.exitCode ?? c.proc.signalCode}): ${c.stderr.slice(-6).join(' | ') || 'no output on stderr'}`);
    }
    throw err;
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }
}

/** Remove `dir` and call `teardown` exactly once, whatever way we leave (end, error, Ctrl-C). */
export function onAnyExit(teardown: () => void, dir: string): void {
  let done = false;
  const once = () => {
    if (done) return;
    done = true;
    teardown();
    // Synchronous: after a signal we exit at once, and on 'exit' nothing async runs any more.
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', once);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      say(`\n${sig}: cleaning up`);
      once();
      process.exit(130);
    });
  }
}

async function main(): Promise<void> {
  const support = netnsSupport();
  if (!support.ok) {
    say(`demo:lan builds network namespaces and ${support.reason}. Run it as root, or try \`npm run demo:local\` (no root needed).`);
    process.exit(1);
  }
  await fsp.access(CLI).catch(() => {
    throw new Error('dist/cli/main.js is missing: run `npm run build` first');
  });
  say('Shoal LAN demo: 4 machines (network namespaces) on one bridge, discovery by multicast only');
  const dir = await tempDir('shoal-demo-lan-');
  let lan: Lan | undefined;
  onAnyExit(() => lan?.destroySync(), dir);

  say('\n[1/5] building the LAN (nothing touches the host\'s own interfaces)');
  lan = await createLan({ prefix: 'shoal-demo', hosts: 4 });
  for (const h of lan.hosts) say(`  h${h.index}     ${h.ip.padEnd(12)} namespace ${h.ns}, ${h.iface} -> bridge in ${lan.switchNs}`);
  const l = lan;
  const site = (h: (typeof l.hosts)[number], port: number, label: string): DemoSite => ({
    label,
    ip: h.ip,
    port,
    where: `${h.ip}:${port} (${h.ns})`,
    startNode: (args, cwd) => spawnCliIn(l, h, [h.ip, String(port), ...args], cwd),
    script: (code, env) => l.run(h, ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, '--input-type=module', '-e', code], 30_000),
  });
  const sites = l.hosts.map((h) => site(h, 9000, `h${h.index}`));
  const getter = site(l.hosts[3]!, 9001, 'h4-get');
  let passed = false;
  try {
    passed = await runDemo(sites, getter, dir);
  } finally {
    await l.destroy();
    await fsp.rm(dir, { recursive: true, force: true });
    say(`\ncleaned up: nodes stopped, namespaces deleted, ${dir} removed`);
  }
  process.exit(passed ? 0 : 1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: Error) => {
    console.error(`demo:lan: ${err.message}`);
    process.exit(1);
  });
}
