/**
 * `npm run demo:local`: the LAN demo (demo/lan.ts) on one machine and without root. Four
 * nodes on 127.0.0.1 (ports 9101-9104) find each other by multicast beacons on `lo`, then a
 * short-lived fifth (9105) searches for a file three of them share, downloads it from all
 * three at once and checks its SHA-1.
 *
 * Multicast is only ever sent inside a private network namespace: the demo re-runs itself
 * under `unshare -rn` (a user namespace, for ordinary users) or `unshare -n` (root), brings
 * `lo` up in there, and runs the nodes. The namespace, with everything in it, disappears
 * when the demo exits.
 */
import os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLI, spawnCli, tempDir, type CliChild } from '../test/helpers.js';
import type { RunResult } from '../test/netns.js';
import { runDemo, onAnyExit, type DemoSite } from './lan.js';

const SELF = fileURLToPath(import.meta.url);
/** Set in the re-run inside the namespace. */
const INSIDE = 'SHOAL_DEMO_NETNS';
const FIRST_PORT = 9101;

const say = (line = '') => process.stdout.write(`${line}\n`);

/** Why no private network namespace can be made here (tried for real), or undefined. */
function cannotUnshare(flag: string): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux, this is ${process.platform}`;
  const probe = spawnSync('unshare', [flag, 'true'], { encoding: 'utf8' });
  if (probe.error) return `cannot run unshare (util-linux): ${probe.error.message}`;
  if (probe.status !== 0) return probe.stderr.trim().split('\n').pop() || `unshare ${flag} exited with ${String(probe.status)}`;
  return undefined;
}

/** Outside: re-run this file under unshare and pass its exit status on. */
async function outside(): Promise<number> {
  const flag = process.getuid?.() === 0 ? '-n' : '-rn';
  const why = cannotUnshare(flag);
  if (why !== undefined) {
    say(`demo:local runs its nodes in a private network namespace, so that no beacon reaches your network,`);
    say(`and cannot make one here: ${why}.`);
    say('It needs Linux with unshare (util-linux) and user namespaces enabled (sysctl kernel.unprivileged_userns_clone=1), or root.');
    return 1;
  }
  // unshare execs node in place: this child is the demo itself, and it cleans up on SIGINT.
  const child = spawn('unshare', [flag, process.execPath, SELF, ...process.argv.slice(2)], { stdio: 'inherit', env: { ...process.env, [INSIDE]: '1' } });
  const forward = (signal: NodeJS.Signals) => void child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.on('error', (err) => {
      say(`demo:local: cannot run unshare: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

/** Inside the namespace: lo up, four sites on 127.0.0.1, the story. */
async function inside(): Promise<number> {
  const up = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (up.status !== 0) {
    say(`demo:local: cannot bring lo up in the private namespace: ${up.error?.message ?? up.stderr.trim()} (needs ip, from iproute2)`);
    return 1;
  }
  await fsp.access(CLI).catch(() => {
    throw new Error('dist/cli/main.js is missing: run `npm run build` first');
  });
  say('Shoal local demo: 4 nodes on 127.0.0.1 in a private network namespace, discovery by multicast on lo only');
  const dir = await tempDir('shoal-demo-local-');
  const children = new Set<CliChild>();
  onAnyExit(() => {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  }, dir);

  const site = (port: number, label: string): DemoSite => ({
    label,
    ip: '127.0.0.1',
    port,
    where: `127.0.0.1:${port}`,
    startNode: (args, cwd) => {
      const c = spawnCli(['127.0.0.1', String(port), '--interface', 'lo', ...args], cwd);
      children.add(c);
      return c;
    },
    script: (code, env) =>
      new Promise<RunResult>((resolve) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('error', (err) => resolve({ code: null, stdout, stderr: err.message }));
        p.on('exit', (code) => resolve({ code, stdout, stderr }));
      }),
  });

  say('\n[1/5] a private network namespace with only lo in it (nothing reaches your network)');
  const sites = [0, 1, 2, 3].map((i) => site(FIRST_PORT + i, `h${i + 1}`));
  for (const s of sites) say(`  ${s.label.padEnd(6)} 127.0.0.1:${s.port}`);
  let passed = false;
  try {
    passed = await runDemo(sites, site(FIRST_PORT + 4, 'h4-get'), dir);
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await fsp.rm(dir, { recursive: true, force: true });
    say(`\ncleaned up: nodes stopped, ${dir} removed (the namespace goes with this process)`);
  }
  return passed ? 0 : 1;
}

(process.env[INSIDE] === '1' ? inside() : outside()).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`demo:local: ${err.message}`);
    process.exit(1);
  },
);
