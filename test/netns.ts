/**
 * A LAN of network namespaces for tests, demos and benchmarks: one namespace per host, each
 * with a veth `eth0` cabled to a bridge that lives in a namespace of its own (the switch),
 * so nothing is ever created in, or sent from, the namespace this process started in.
 *
 *   <prefix>-<pid>-<rand>-sw   br0 + h1..hN (the switch side of each cable)
 *   <prefix>-<pid>-<rand>-hN   lo, eth0 = 10.77.0.N/24, route 224.0.0.0/4 dev eth0
 *
 * Every link is created from inside the switch namespace straight into its host namespace
 * (`ip -n SW link add hN type veth peer name eth0 netns HOST`), so even for an instant no
 * interface appears in our own namespace. The creator's pid is part of every name: a later
 * run removes the namespaces of a run whose process is gone (crash, kill -9), never those
 * of a live one. Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import readline from 'node:readline';
import { CLI, type CliChild } from './helpers.js';

export interface LanHost {
  /** 1-based, as in the namespace name `...-hN`. */
  index: number;
  /** Network namespace name (for `ip netns exec`). */
  ns: string;
  /** The host's address on the LAN. */
  ip: string;
  /** Its LAN interface inside `ns`. */
  iface: string;
}

export interface LanInit {
  /** Namespace name prefix: letters, digits and dashes; default `shoal`. */
  prefix?: string;
  hosts: number;
  /** IPv4 subnet in CIDR form; hosts get .1, .2, ... of it. Default 10.77.0.0/24. */
  subnet?: string;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Lan {
  hosts: LanHost[];
  /** The switch namespace (holds the bridge). */
  switchNs: string;
  prefixLength: number;
  /** Start `cmd` inside `host`'s namespace; the process is killed by `destroy()`. */
  exec(host: LanHost, cmd: string[], opts?: SpawnOptions): ChildProcess;
  /** Run `cmd` inside `host`'s namespace to completion (for ping, ip addr ...). */
  run(host: LanHost, cmd: string[], timeoutMs?: number): Promise<RunResult>;
  /** Kill every process started in the LAN and delete every namespace. Safe to call twice. */
  destroy(): Promise<void>;
  /** The same, synchronously: for `process.on('exit')`, where nothing async runs any more. */
  destroySync(): void;
}

export const DEFAULT_SUBNET = '10.77.0.0/24';
const IFACE = 'eth0';
const BRIDGE = 'br0';

let probed: { ok: boolean; reason: string } | undefined;

/**
 * Whether this process can build a LAN (root, iproute2, and the kernel lets us add a
 * namespace: a container without CAP_SYS_ADMIN cannot). Probed once, for real.
 */
export function canCreateNetns(): boolean {
  return netnsSupport().ok;
}

/** `canCreateNetns()` with the reason when not, for skip messages. */
export function netnsSupport(): { ok: boolean; reason: string } {
  if (probed) return probed;
  if (process.getuid?.() !== 0) return (probed = { ok: false, reason: 'needs root (ip netns)' });
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return (probed = { ok: false, reason: 'needs ip (iproute2)' });
  const name = `shoal-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  // Root in a user namespace (unshare -r, as `npm test` does for other users) lands here.
  probed = add.status === 0 ? { ok: true, reason: '' } : { ok: false, reason: `needs real root: ip netns add failed (${add.stderr.trim()})` };
  return probed;
}

/** Parse `a.b.c.d/len` into the base address (as a number) and the prefix length. */
export function parseSubnet(cidr: string): { base: number; prefixLength: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw new Error(`subnet must look like 10.77.0.0/24, got ${cidr}`);
  const octets = m.slice(1, 5).map(Number);
  const prefixLength = Number(m[5]);
  if (octets.some((o) => o > 255) || prefixLength < 8 || prefixLength > 30) throw new Error(`bad subnet ${cidr}`);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  const base = (octets.reduce((a, o) => a * 256 + o, 0) & mask) >>> 0;
  return { base, prefixLength };
}

const ipText = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || r.error?.message || `status ${r.status}`).trim()}`);
}

function listNamespaces(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean) : [];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kill whatever still runs inside `ns` (grandchildren included), then delete it. */
function deleteNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const pid of (pids.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/**
 * Remove the namespaces a crashed earlier run left behind: those named by this module
 * with `prefix` whose creator pid no longer runs. A live run's namespaces are left alone.
 */
export function removeLeftovers(prefix: string): string[] {
  const pattern = new RegExp(`^${prefix}-(\\d+)-[0-9a-f]+-(sw|h\\d+)$`);
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = pattern.exec(ns);
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    deleteNamespace(ns);
    removed.push(ns);
  }
  return removed;
}

/** Build the LAN. On any failure everything made so far is removed before the error is thrown. */
export async function createLan(init: LanInit): Promise<Lan> {
  const prefix = init.prefix ?? 'shoal';
  if (!/^[a-z][a-z0-9-]{0,15}$/i.test(prefix)) throw new Error(`prefix must be letters, digits and dashes (at most 16), got ${prefix}`);
  const { base, prefixLength } = parseSubnet(init.subnet ?? DEFAULT_SUBNET);
  if (!(init.hosts >= 1 && init.hosts <= Math.min(250, 2 ** (32 - prefixLength) - 2))) throw new Error(`hosts must be from 1 to the subnet's size, got ${init.hosts}`);
  if (!canCreateNetns()) throw new Error(`cannot create network namespaces: ${netnsSupport().reason}`);
  removeLeftovers(prefix);

  const run = `${prefix}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const switchNs = `${run}-sw`;
  const created: string[] = [];
  const children = new Set<ChildProcess>();
  const hosts: LanHost[] = [];
  let destroyed = false;

  const destroySync = (): void => {
    if (destroyed) return;
    destroyed = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // Hosts first: deleting a host namespace takes its cable with it; then the switch.
    for (const ns of [...created].reverse()) deleteNamespace(ns);
  };

  try {
    ip(['netns', 'add', switchNs]);
    created.push(switchNs);
    ip(['-n', switchNs, 'link', 'set', 'lo', 'up']);
    ip(['-n', switchNs, 'link', 'add', BRIDGE, 'type', 'bridge']);
    // No IGMP snooping: there is no querier on this LAN, and with snooping on, the bridge
    // would forget the group members after a few minutes and drop beacons from then on.
    ip(['-n', switchNs, 'link', 'set', BRIDGE, 'type', 'bridge', 'mcast_snooping', '0']);
    ip(['-n', switchNs, 'link', 'set', BRIDGE, 'up']);
    for (let i = 1; i <= init.hosts; i++) {
      const ns = `${run}-h${i}`;
      const host: LanHost = { index: i, ns, ip: ipText(base + i), iface: IFACE };
      ip(['netns', 'add', ns]);
      created.push(ns);
      ip(['-n', switchNs, 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', IFACE, 'netns', ns]);
      ip(['-n', switchNs, 'link', 'set', `h${i}`, 'master', BRIDGE]);
      ip(['-n', switchNs, 'link', 'set', `h${i}`, 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${host.ip}/${prefixLength}`, 'dev', IFACE]);
      ip(['-n', ns, 'link', 'set', IFACE, 'up']);
      // No default route in here: multicast needs a route to leave by, and this is it.
      ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', IFACE]);
      hosts.push(host);
    }
  } catch (err) {
    destroySync();
    throw err;
  }

  const exec = (host: LanHost, cmd: string[], opts: SpawnOptions = {}): ChildProcess => {
    if (destroyed) throw new Error('the LAN is destroyed');
    // `ip netns exec` execs the command itself, so this pid is the command's pid.
    const child = spawn('ip', ['netns', 'exec', host.ns, ...cmd], opts);
    children.add(child);
    child.once('exit', () => children.delete(child));
    child.once('error', () => children.delete(child));
    return child;
  };

  return {
    hosts,
    switchNs,
    prefixLength,
    exec,
    run: async (host, cmd, timeoutMs = 10_000) => {
      const child = exec(host, cmd, { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const [code] = (await once(child, 'exit')) as [number | null];
      clearTimeout(timer);
      return { code, stdout, stderr };
    },
    destroy: async () => {
      const waiting = [...children].filter((c) => c.exitCode === null && c.signalCode === null).map((c) => once(c, 'exit'));
      destroySync();
      await Promise.race([Promise.all(waiting), new Promise((r) => setTimeout(r, 5000))]);
    },
    destroySync,
  };
}

/** Names of this run's namespaces that still exist (for tests of `destroy()`). */
export function existingNamespaces(lan: Pick<Lan, 'hosts' | 'switchNs'>): string[] {
  const all = new Set(listNamespaces());
  return [lan.switchNs, ...lan.hosts.map((h) => h.ns)].filter((ns) => all.has(ns));
}

/** The LAN address a namespace's `eth0` really has (a check that the plumbing is as built). */
export function addressOf(host: LanHost): string | undefined {
  const out = execFileSync('ip', ['-n', host.ns, '-4', '-o', 'addr', 'show', 'dev', host.iface], { encoding: 'utf8' });
  return /inet (\S+)\//.exec(out)?.[1];
}

/**
 * Run `node-cli ... --json` inside `host`'s namespace, with the same handle as `spawnCli`
 * (events, stderr, waitEvent, exited). `destroy()` kills it with the LAN.
 */
export interface LanCliChild extends CliChild {
  /** When each of `events` was read (Date.now()), for timings. */
  times: number[];
}

export function spawnCliIn(lan: Lan, host: LanHost, args: string[], cwd: string, env: Record<string, string> = {}): LanCliChild {
  const proc = lan.exec(host, [process.execPath, CLI, ...args, '--json'], { cwd, env: { ...process.env, SHOAL_LOG: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Array<Record<string, unknown>> = [];
  const times: number[] = [];
  const stderr: string[] = [];
  readline.createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Record<string, unknown>);
      times.push(Date.now());
    } catch {
      /* not an event line */
    }
  });
  readline.createInterface({ input: proc.stderr! }).on('line', (l) => stderr.push(l));
  let failed = false; // spawn itself failed (no such cwd...): there will be no 'exit'
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
    proc.on('error', (err) => {
      failed = true;
      stderr.push(`cannot start node-cli in ${host.ns}: ${err.message}`);
      resolve({ code: null, signal: null });
    });
  });
  return {
    proc,
    events,
    times,
    stderr,
    exited,
    // Like waitFor, but gives up at once when the node has exited, and shows its last stderr lines.
    waitEvent: async (name, ms = 20_000, pred = () => true) => {
      const end = Date.now() + ms;
      for (;;) {
        const found = events.find((e) => e.event === name && pred(e));
        if (found) return found;
        const gone = failed || proc.exitCode !== null || proc.signalCode !== null;
        if (gone || Date.now() > end) {
          const why = gone ? `node-cli exited (${proc.exitCode ?? proc.signalCode ?? 'not started'})` : `timed out after ${ms} ms`;
          throw new Error(`${why} waiting for event ${name} in ${host.ns} (stderr: ${stderr.slice(-5).join(' | ')})`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}
